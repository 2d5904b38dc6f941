import { describe, expect, it } from 'vitest';
import { mayTick } from '../../src/checklists/may-tick.js';
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
