import { type Decision, isDeployer, isLead } from '../commands/authorise.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { TemplateChecklist, TemplateItem, TemplateSection, TickRule } from './schema.js';

/** The members of a Slack user group (usergroups.users.list, cached briefly: src/checklists/user-groups.ts). */
export type GroupMembers = (groupId: string) => Promise<ReadonlySet<string>>;

/** What a group lookup gave: its members, or why they could not be read. */
export type KnownGroups = ReadonlyMap<string, ReadonlySet<string> | Error>;

/** The rule when a template says nothing: a lead or a deployer of every gated environment. */
export const DEFAULT_RULE: readonly TickRule[] = ['lead', 'gate-deployers'];
/** An item with an owner and no `mayTick` of its own: its owner or a lead. */
export const OWNED_RULE: readonly TickRule[] = ['lead', 'owner'];

/**
 * Who may tick an item: the nearest `mayTick` (item, then section, then checklist), except that an
 * item's `owner` (on the item itself) comes before its section's and checklist's lists.
 */
export function tickRuleOf(
  checklist: Pick<TemplateChecklist, 'mayTick'>,
  section: Pick<TemplateSection, 'mayTick'>,
  item: Pick<TemplateItem, 'mayTick' | 'owner'>,
): readonly TickRule[] {
  if (item.mayTick) return item.mayTick;
  if (item.owner) return OWNED_RULE;
  return section.mayTick ?? checklist.mayTick ?? DEFAULT_RULE;
}

/** The user groups a rule names (their members must be looked up before `mayTick`). */
export function groupsOf(rule: readonly TickRule[]): string[] {
  return rule.filter((r) => r.startsWith('group:')).map((r) => r.slice('group:'.length));
}

/**
 * Who may tick or untick an item. The checklists decide deploys: `pre` opens the gated environments
 * (`checklists.gateEnvironments`), the phase checklists hold the rollout that leads there, and `post`
 * is the verification of a release into them. So by default every checklist follows one rule: a lead,
 * or a deployer of every gated environment (a tick opens them all at once); an item with an `owner`
 * only its owner or a lead. With no gated environment the default gates nothing and anyone may tick.
 * A template can name others per checklist, section or item (`rule`, from tickRuleOf); leads may
 * always tick (they can override any gate anyway).
 */
export function mayTick(
  userId: string,
  checklist: { id: string; title: string },
  item: Pick<TemplateItem, 'text' | 'owner'>,
  config: FlightdeckConfig,
  rule: readonly TickRule[] = item.owner ? OWNED_RULE : DEFAULT_RULE,
  groups: KnownGroups = new Map(),
): Decision {
  if (isLead(userId, config)) return { allowed: true };
  const gated = config.checklists.gateEnvironments;
  const matches = (r: TickRule): boolean => {
    if (r === 'lead') return false; // not a lead: checked above
    if (r === 'owner') return item.owner === userId;
    if (r === 'gate-deployers') return gated.every((env) => isDeployer(userId, env, config));
    if (r.startsWith('deployers:')) return isDeployer(userId, r.slice('deployers:'.length), config);
    if (r.startsWith('group:')) {
      const members = groups.get(r.slice('group:'.length));
      return members instanceof Set && members.has(userId);
    }
    return r === userId;
  };
  if (rule.some(matches)) return { allowed: true };

  // Today's two rules keep their own words.
  if (sameRule(rule, OWNED_RULE) && item.owner) {
    return {
      allowed: false,
      reason: `“${item.text}” belongs to <@${item.owner}>: only they or a lead can tick or untick it${leads(config)}.`,
    };
  }
  if (sameRule(rule, DEFAULT_RULE)) {
    const missing = gated.filter((env) => !isDeployer(userId, env, config));
    const envs = gated.map((e) => `*${e}*`).join(', ');
    return {
      allowed: false,
      reason: `only leads and deployers of ${envs} can tick or untick items of the ${checklist.title}: the rollout's checklists decide when ${envs} deploys go ahead. Ask a lead to add you to ${missing.map((e) => `\`environments.${e}.deployers\``).join(' and ')}${leads(config)}.`,
    };
  }

  const who = ['leads', ...rule.flatMap((r) => describe(r, item, gated))];
  const deployerKeys = rule.flatMap((r) => {
    if (r.startsWith('deployers:')) return [r.slice('deployers:'.length)];
    if (r === 'gate-deployers') return gated.filter((env) => !isDeployer(userId, env, config));
    return [];
  });
  const unreadable = groupsOf(rule).flatMap((g) => {
    const m = groups.get(g);
    return m instanceof Error ? [`the members of <!subteam^${g}> could not be read (${m.message})`] : [];
  });
  const hints = [
    ...unreadable,
    ...(deployerKeys.length > 0
      ? [
          `a lead can add you to ${[...new Set(deployerKeys)].map((e) => `\`environments.${e}.deployers\``).join(' or ')}`,
        ]
      : []),
  ];
  return {
    allowed: false,
    reason: `only ${joinAnd([...new Set(who)])} can tick or untick “${item.text}” (${checklist.title})${hints.length > 0 ? `; ${hints.join('; ')}` : ''}${leads(config)}.`,
  };
}

/**
 * Decides one click: every item it changes must be the clicker's to tick (one refused item refuses
 * the whole click). Unknown and automatic items are skipped (tick() changes nothing there). User
 * groups named by the rules are looked up first; a failed lookup only fails its own entry.
 */
export async function mayTickAll(
  userId: string,
  checklistId: string,
  checklist: TemplateChecklist | undefined,
  changes: ReadonlyArray<{ itemId: string }>,
  config: FlightdeckConfig,
  groupMembers?: GroupMembers,
): Promise<Decision> {
  if (!checklist || isLead(userId, config)) return { allowed: true };
  const where = new Map(
    checklist.sections.flatMap((s) => s.items.map((i) => [i.id, { section: s, item: i }] as const)),
  );
  const asked = changes.flatMap((c) => {
    const w = where.get(c.itemId);
    return w && !w.item.check ? [{ ...w, rule: tickRuleOf(checklist, w.section, w.item) }] : [];
  });
  const groups = new Map<string, ReadonlySet<string> | Error>();
  await Promise.all(
    [...new Set(asked.flatMap((a) => groupsOf(a.rule)))].map(async (g) => {
      try {
        if (!groupMembers) throw new Error('no Slack client to ask');
        groups.set(g, await groupMembers(g));
      } catch (err) {
        groups.set(g, err instanceof Error ? err : new Error(String(err)));
      }
    }),
  );
  for (const a of asked) {
    const d = mayTick(userId, { id: checklistId, title: checklist.title }, a.item, config, a.rule, groups);
    if (!d.allowed) return d;
  }
  return { allowed: true };
}

function describe(r: TickRule, item: Pick<TemplateItem, 'owner'>, gated: string[]): string[] {
  if (r === 'lead') return [];
  if (r === 'owner') return item.owner ? [`its owner <@${item.owner}>`] : [];
  if (r === 'gate-deployers')
    return gated.length > 0 ? [`deployers of ${gated.map((e) => `*${e}*`).join(' and ')}`] : [];
  if (r.startsWith('deployers:')) return [`deployers of *${r.slice('deployers:'.length)}*`];
  if (r.startsWith('group:')) return [`members of <!subteam^${r.slice('group:'.length)}>`];
  return [`<@${r}>`];
}

function joinAnd(parts: string[]): string {
  return parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : (parts[0] ?? '');
}

function sameRule(a: readonly TickRule[], b: readonly TickRule[]): boolean {
  return a.length === b.length && a.every((r) => b.includes(r));
}

function leads(config: FlightdeckConfig): string {
  const l = config.access.leads;
  return l.length > 0 ? ` (leads: ${l.map((u) => `<@${u}>`).join(', ')})` : '';
}
