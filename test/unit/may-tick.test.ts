import { describe, expect, it } from 'vitest';
import { mayTick, mayTickAll, tickRuleOf } from '../../src/checklists/may-tick.js';
import type { TickRule } from '../../src/checklists/schema.js';
import { slackUserGroups } from '../../src/checklists/user-groups.js';
import { unitConfig } from './helpers.js';

// The suites' config: lead U0LEAD; staging open to all ('*'); production to U0DEV only.
const pre = { id: 'pre', title: 'Pre-deployment checklist' };
const phase1 = { id: 'staging', title: 'Staging validation' };
const plain = { text: 'Rollback procedure tested' };
const owned = { text: 'Deployment runbook reviewed', owner: 'U0ONCALL' };

describe('mayTick', () => {
  const config = unitConfig(); // gateEnvironments: [production]

  it('lets leads and deployers of the gated environment tick the gate and the phase checklists', () => {
    for (const list of [pre, phase1]) {
      expect(mayTick('U0LEAD', list, plain, config)).toEqual({ allowed: true });
      expect(mayTick('U0DEV', list, plain, config)).toEqual({ allowed: true });
    }
  });

  it('refuses anyone else, saying who may and how to get the right', () => {
    for (const user of ['U0GUEST', 'U0ONCALL', 'W0OUTSIDER']) {
      const d = mayTick(user, pre, plain, config);
      expect(d.allowed).toBe(false);
      if (d.allowed) continue;
      expect(d.reason).toContain('only leads and deployers of *production*');
      expect(d.reason).toContain('Pre-deployment checklist');
      expect(d.reason).toContain('`environments.production.deployers`');
      expect(d.reason).toContain('<@U0LEAD>');
    }
  });

  it('an owned item: only its owner or a lead, even for a deployer', () => {
    expect(mayTick('U0ONCALL', pre, owned, config)).toEqual({ allowed: true });
    expect(mayTick('U0LEAD', pre, owned, config)).toEqual({ allowed: true });
    for (const user of ['U0DEV', 'U0GUEST']) {
      const d = mayTick(user, pre, owned, config);
      expect(d).toMatchObject({ allowed: false });
      expect(d.allowed ? '' : d.reason).toMatch(/belongs to <@U0ONCALL>: only they or a lead/);
    }
  });

  it('with several gated environments, a deployer of every one of them (one tick opens them all)', () => {
    const both = unitConfig((raw) => {
      Object.assign(raw, { checklists: { gateEnvironments: ['production', 'staging'] } });
    });
    expect(mayTick('U0DEV', pre, plain, both)).toEqual({ allowed: true });
    // Staging is open to everyone, production is not: a staging deployer cannot open production.
    const d = mayTick('U0GUEST', pre, plain, both);
    expect(d.allowed ? '' : d.reason).toContain('deployers of *production*, *staging*');
    expect(d.allowed ? '' : d.reason).toContain('`environments.production.deployers`');
    expect(d.allowed ? '' : d.reason).not.toContain('environments.staging.deployers');
    const narrow = unitConfig((raw) => {
      Object.assign(raw, { checklists: { gateEnvironments: ['production', 'staging'] } });
      Object.assign(raw.environments.staging as object, { deployers: ['U0QA'] });
    });
    expect(mayTick('U0DEV', pre, plain, narrow)).toMatchObject({ allowed: false });
    expect(mayTick('U0QA', pre, plain, narrow)).toMatchObject({ allowed: false });
    expect(mayTick('U0LEAD', pre, plain, narrow)).toEqual({ allowed: true });
  });

  it('with no gated environment the checklists gate nothing: anyone may tick (owners still hold theirs)', () => {
    const open = unitConfig((raw) => {
      Object.assign(raw, { checklists: { gateEnvironments: [] } });
    });
    expect(mayTick('U0GUEST', pre, plain, open)).toEqual({ allowed: true });
    expect(mayTick('U0GUEST', pre, owned, open)).toMatchObject({ allowed: false });
  });
});

describe('mayTick lists of a template (nearest wins)', () => {
  const config = unitConfig((raw) => {
    Object.assign(raw.environments.staging as object, { deployers: ['U0QA'] });
  });
  const checklist = { id: 'staging', title: 'Staging validation' };
  const item = { text: 'Wizard workflows pass' };

  it('an item’s list beats its section’s, a section’s beats the checklist’s; an owner beats both', () => {
    const cl = { mayTick: ['deployers:staging'] as TickRule[] };
    const section = { mayTick: ['U0ONCALL'] as TickRule[] };
    expect(tickRuleOf(cl, {}, {})).toEqual(['deployers:staging']);
    expect(tickRuleOf(cl, section, {})).toEqual(['U0ONCALL']);
    expect(tickRuleOf(cl, section, { mayTick: ['group:S0QA'] })).toEqual(['group:S0QA']);
    expect(tickRuleOf(cl, section, { owner: 'U0DEV' })).toEqual(['lead', 'owner']);
    expect(tickRuleOf({}, {}, {})).toEqual(['lead', 'gate-deployers']);
  });

  it('deployers of a named environment, a user, leads always', () => {
    const rule: TickRule[] = ['deployers:staging'];
    expect(mayTick('U0QA', checklist, item, config, rule)).toEqual({ allowed: true });
    expect(mayTick('U0LEAD', checklist, item, config, rule)).toEqual({ allowed: true });
    const d = mayTick('U0DEV', checklist, item, config, rule);
    expect(d.allowed).toBe(false);
    expect(d.allowed ? '' : d.reason).toBe(
      'only leads and deployers of *staging* can tick or untick “Wizard workflows pass” (Staging validation); a lead can add you to `environments.staging.deployers` (leads: <@U0LEAD>).',
    );
    expect(mayTick('U0GUEST', checklist, item, config, ['U0GUEST'])).toEqual({ allowed: true });
    expect(mayTick('U0DEV', checklist, item, config, ['U0GUEST'])).toMatchObject({ allowed: false });
  });

  it('members of a user group; a failed lookup says why', () => {
    const rule: TickRule[] = ['group:S0QA', 'owner'];
    const groups = new Map([['S0QA', new Set(['U0ONCALL'])]]);
    expect(mayTick('U0ONCALL', checklist, item, config, rule, groups)).toEqual({ allowed: true });
    const d = mayTick('U0GUEST', checklist, item, config, rule, groups);
    expect(d.allowed ? '' : d.reason).toContain(
      'only leads and members of <!subteam^S0QA> can tick or untick',
    );
    const failed = new Map([['S0QA', new Error('no_such_subteam')]]);
    const f = mayTick('U0ONCALL', checklist, item, config, rule, failed);
    expect(f.allowed ? '' : f.reason).toContain(
      'the members of <!subteam^S0QA> could not be read (no_such_subteam)',
    );
  });

  it('mayTickAll looks groups up once per click and refuses the whole click for one item', async () => {
    const cl = {
      title: 'Staging validation',
      mayTick: ['lead', 'gate-deployers'] as TickRule[],
      sections: [
        {
          title: 'QA',
          mayTick: ['group:S0QA'] as TickRule[],
          items: [
            { id: 'a', text: 'A' },
            { id: 'b', text: 'B' },
          ],
        },
        {
          title: 'Auto',
          items: [{ id: 'c', text: 'C', check: { kind: 'health' as const, environment: 'staging' } }],
        },
        { title: 'Gate', items: [{ id: 'd', text: 'D' }] },
      ],
    };
    const asked: string[] = [];
    const members = async (g: string) => {
      asked.push(g);
      return new Set(['U0ONCALL']);
    };
    const ch = (...ids: string[]) => ids.map((itemId) => ({ itemId }));
    expect(await mayTickAll('U0ONCALL', 'staging', cl, ch('a', 'b', 'c'), config, members)).toEqual({
      allowed: true,
    });
    expect(asked).toEqual(['S0QA']);
    // d follows the checklist's list (deployers of production): on-call is not one.
    const d = await mayTickAll('U0ONCALL', 'staging', cl, ch('a', 'd'), config, members);
    expect(d.allowed ? '' : d.reason).toContain('only leads and deployers of *production*');
    // No Slack client: the group entry fails closed.
    const none = await mayTickAll('U0ONCALL', 'staging', cl, ch('a'), config);
    expect(none.allowed ? '' : none.reason).toContain('could not be read (no Slack client to ask)');
  });
});

describe('slackUserGroups', () => {
  it('asks Slack once per group within the TTL, again after it, and not after a failure', async () => {
    let t = 0;
    const calls: string[] = [];
    let fail = false;
    const client = {
      usergroups: {
        users: {
          list: async ({ usergroup }: { usergroup: string }) => {
            calls.push(usergroup);
            if (fail) throw new Error('An API error occurred: no_such_subteam');
            return { ok: true, users: ['U0QA'] };
          },
        },
      },
    } as unknown as Parameters<typeof slackUserGroups>[0];
    const members = slackUserGroups(client, 60_000, () => t);
    expect([...(await members('S0QA'))]).toEqual(['U0QA']);
    await members('S0QA');
    expect(calls).toEqual(['S0QA']);
    t = 61_000;
    fail = true;
    await expect(members('S0QA')).rejects.toThrow(/no_such_subteam/);
    fail = false;
    expect([...(await members('S0QA'))]).toEqual(['U0QA']);
    expect(calls).toEqual(['S0QA', 'S0QA', 'S0QA']);
  });
});
