import type { FlightdeckConfig } from '../config/schema.js';
import type { ParsedCommand } from './schema.js';

export type Decision = { allowed: true } | { allowed: false; reason: string };

export function isLead(userId: string, config: FlightdeckConfig): boolean {
  return config.access.leads.includes(userId);
}

export function isDeployer(userId: string, environment: string, config: FlightdeckConfig): boolean {
  const deployers = config.environments[environment]?.deployers ?? [];
  return isLead(userId, config) || deployers.includes('*') || deployers.includes(userId);
}

/** Who may do what, from the config alone. Reading (help, status, history) is open to everyone. */
export function authorise(cmd: ParsedCommand, userId: string, config: FlightdeckConfig): Decision {
  const needsDeployer = (environment: string, what: string): Decision =>
    isDeployer(userId, environment, config)
      ? { allowed: true }
      : {
          allowed: false,
          reason: `you are not a deployer for *${environment}*, so you cannot ${what} there. Ask a lead to add you to \`environments.${environment}.deployers\`${leadList(config)}.`,
        };
  switch (cmd.command) {
    case 'deploy':
      if (cmd.action === 'release' && cmd.override !== undefined && !isLead(userId, config))
        return {
          allowed: false,
          reason: `only leads can override promotion rules, freezes and checklist gates${leadList(config)}; deploy without \`override\`, or ask a lead.`,
        };
      if (cmd.action === 'release') return needsDeployer(cmd.environment, 'deploy');
      if (cmd.action === 'cancel') return needsDeployer(cmd.environment, 'cancel a release');
      if (cmd.action === 'promote') return needsDeployer(cmd.environment, 'promote a release');
      return { allowed: true };
    case 'traffic':
      return cmd.action === 'set' ? needsDeployer(cmd.environment, 'change traffic') : { allowed: true };
    case 'rollback':
      return cmd.action === 'help' ? { allowed: true } : needsDeployer(cmd.environment, 'roll back');
    case 'alert':
      // Anyone in the channel may acknowledge or silence; the worker checks rights for a rollback.
      return { allowed: true };
    case 'release':
      // Buttons name a release; the worker checks the clicker against that release (lead, not requester…).
      return { allowed: true };
    case 'checklist':
      if (cmd.action === 'start' && !isLead(userId, config)) {
        return {
          allowed: false,
          reason: `only leads can start a rollout or set its start date${leadList(config)}.`,
        };
      }
      if (cmd.action === 'finish' && !isLead(userId, config)) {
        return { allowed: false, reason: `only leads can finish a rollout${leadList(config)}.` };
      }
      if (cmd.action === 'override' && !isLead(userId, config)) {
        return { allowed: false, reason: `only leads can override a checklist gate${leadList(config)}.` };
      }
      return { allowed: true };
  }
}

function leadList(config: FlightdeckConfig): string {
  const leads = config.access.leads;
  return leads.length > 0 ? ` (leads: ${leads.map((u) => `<@${u}>`).join(', ')})` : '';
}
