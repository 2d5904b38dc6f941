import type { FlightdeckConfig } from '../config/schema.js';
import type { CommandName } from './schema.js';

/** Help text per command; environment and service names come from the config so users see real choices. */
export function usage(command: CommandName, config: FlightdeckConfig): string {
  const envs = Object.keys(config.environments);
  const def = defaultEnvironment(config);
  const services = [...new Set(Object.values(config.environments).flatMap((e) => Object.keys(e.services)))];
  const choices = `Environments: ${envs.join(', ')} (default ${def}). Services: ${services.join(', ')}.`;
  switch (command) {
    case 'deploy':
      return [
        '*/deploy* — blue/green release of a service (or `all`) to an environment',
        '• `/deploy <service|all> <version> [to <environment>]` — release an image tag, e.g. `/deploy api 1.4.2 to staging`',
        '• `/deploy status` — releases in flight and the last ones',
        '• `/deploy history <service> [in <environment>]` — past releases of a service',
        '• `/deploy promote <service> [in <environment>]` — skip the rest of the current soak',
        '• `/deploy cancel <service> [in <environment>]` — abort and roll back',
        '• `/deploy help` — this message',
        choices,
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
        '*/checklist* — the 28-day rollout checklists (4 phases of 7 days)',
        '• `/checklist` — the current phase’s checklist',
        '• `/checklist pre` / `/checklist post` — the pre- or post-deployment checklist',
        '• `/checklist phase <1-4>` — one phase’s checklist',
        '• `/checklist status` — the 28-day timeline and progress per phase',
        '• `/checklist start <YYYY-MM-DD>` — set the rollout start date (leads)',
        '• `/checklist recheck [pre|post|phase N]` — run the automatic checks again',
        '• `/checklist override pre <reason>` — open the production gate with an incomplete pre-deployment checklist (leads)',
        '• `/checklist override phase <1-4> <reason>` — let a phase advance with its checklist incomplete (leads)',
        '• `/checklist help` — this message',
      ].join('\n');
  }
}

export function defaultEnvironment(config: FlightdeckConfig): string {
  return config.defaultEnvironment ?? Object.keys(config.environments)[0] ?? '';
}
