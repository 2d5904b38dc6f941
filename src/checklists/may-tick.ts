import { type Decision, isDeployer, isLead } from '../commands/authorise.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { TemplateItem } from './schema.js';

/**
 * Who may tick or untick an item. The checklists decide deploys: `pre` opens the gated environments
 * (`checklists.gateEnvironments`), the phase checklists hold the rollout that leads there, and `post`
 * is the verification of a release into them. So every checklist follows one rule: a lead, or a
 * deployer of every gated environment (a tick opens them all at once); an item with an `owner` only
 * its owner or a lead. With no gated environment the checklists gate nothing and anyone may tick.
 */
export function mayTick(
  userId: string,
  checklist: { id: string; title: string },
  item: Pick<TemplateItem, 'text' | 'owner'>,
  config: FlightdeckConfig,
): Decision {
  if (isLead(userId, config)) return { allowed: true };
  if (item.owner) {
    return item.owner === userId
      ? { allowed: true }
      : {
          allowed: false,
          reason: `“${item.text}” belongs to <@${item.owner}>: only they or a lead can tick or untick it${leads(config)}.`,
        };
  }
  const gated = config.checklists.gateEnvironments;
  const missing = gated.filter((env) => !isDeployer(userId, env, config));
  if (missing.length === 0) return { allowed: true };
  const envs = gated.map((e) => `*${e}*`).join(', ');
  return {
    allowed: false,
    reason: `only leads and deployers of ${envs} can tick or untick items of the ${checklist.title}: the rollout's checklists decide when ${envs} deploys go ahead. Ask a lead to add you to ${missing.map((e) => `\`environments.${e}.deployers\``).join(' and ')}${leads(config)}.`,
  };
}

function leads(config: FlightdeckConfig): string {
  const l = config.access.leads;
  return l.length > 0 ? ` (leads: ${l.map((u) => `<@${u}>`).join(', ')})` : '';
}
