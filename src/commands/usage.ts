import type { FlightdeckConfig } from '../config/schema.js';
import { freezeLines } from '../releases/freezes.js';
import type { CommandName } from './schema.js';

/** Help text per command; environment and service names come from the config so users see real choices. */
export function usage(command: CommandName, config: FlightdeckConfig, now = Date.now()): string {
  const envs = Object.keys(config.environments);
  const def = defaultEnvironment(config);
  const services = [...new Set(Object.values(config.environments).flatMap((e) => Object.keys(e.services)))];
  const choices = `Environments: ${envs.join(', ')} (default ${def}). Services: ${services.join(', ')}.`;
  switch (command) {
    case 'deploy':
      return [
        '*/deploy* — blue/green release of a service (or `all`) to an environment',
        '• `/deploy <service|all> <version> [to <environment>]` — release an image tag, e.g. `/deploy api 1.4.2 to staging`',
        ...(config.pipeline
          ? [
              `• Versions are promoted ${config.pipeline.join(' → ')}: each stage takes a version that completed in the one before`,
            ]
          : []),
        '• `/deploy <service|all> <version> to <environment> override <reason>` — deploy past promotion rules, a freeze or a checklist gate (leads; audited)',
        '• `/deploy status` — releases in flight and the last ones',
        '• `/deploy stats [environment] [days]` — DORA figures (deploys, change failure rate, time to restore, lead time) over the last days (default 30, at most 365)',
        '• `/deploy history <service> [in <environment>]` — past releases of a service',
        '• `/deploy promote <service> [in <environment>]` — skip the rest of the current soak',
        '• `/deploy cancel <service> [in <environment>]` — abort and roll back',
        '• `/deploy help` — this message',
        choices,
        ...freezeLines(config, now),
      ].join('\n');
    case 'traffic':
      return [
        '*/traffic* — the nginx split between the blue and green colours of a service',
        '• `/traffic <service> <percent> [blue|green] [to <environment>]` — send <percent>% to a colour (default: the idle one), the rest to the other',
        '• `/traffic status [environment]` — every service’s split',
        '• `/traffic help` — this message',
        choices,
      ].join('\n');
    case 'rollback':
      return [
        '*/rollback* — the fastest path back: all traffic to the last good colour, then roll the Swarm service back',
        '• `/rollback <service|all> [environment]` — e.g. `/rollback api production`',
        '• `/rollback help` — this message',
        choices,
      ].join('\n');
    case 'checklist':
      return [
        '*/checklist* — 28-day rollouts (4 phases of 7 days), several at once; `[name]` is a rollout, default this channel’s',
        '• `/checklist [name]` — the rollout’s current phase’s checklist',
        '• `/checklist pre [name]` / `/checklist post [name]` — the pre- or post-deployment checklist',
        '• `/checklist phase <1-4> [name]` — one phase’s checklist',
        '• `/checklist status [name]` — the 28-day timeline and progress per phase',
        '• `/checklist list` — every rollout, active and finished',
        '• `/checklist history [name]` — every tick and untick (who, when)',
        '• `/checklist start <name> [YYYY-MM-DD] [template] [for <service,…>] [in <environment,…>]` — start a rollout, nothing ticked (leads); on a running one, move its first day',
        '• `/checklist finish [name]` — end a rollout; it is kept with its ticks (leads)',
        '• `/checklist recheck [pre|post|phase N] [name]` — run the automatic checks again',
        '• `/checklist override [name] pre <reason>` — open the production gate with an incomplete pre-deployment checklist (leads)',
        '• `/checklist override [name] phase <1-4> <reason>` — let a phase pass with its checklist incomplete (leads)',
        '• `/checklist help` — this message',
      ].join('\n');
  }
}

export function defaultEnvironment(config: FlightdeckConfig): string {
  return config.defaultEnvironment ?? Object.keys(config.environments)[0] ?? '';
}
