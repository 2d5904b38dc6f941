// test/parse-command.test.ts covers deploying to staging/production, reading status and the start
// date; this covers every other rule of who may do what.
import { describe, expect, it } from 'vitest';
import { authorise, isDeployer, isLead } from '../../src/commands/authorise.js';
import type { ParsedCommand } from '../../src/commands/schema.js';
import { unitConfig } from './helpers.js';

// unitConfig: staging deployers ['*'], production deployers ['U0DEV'], leads ['U0LEAD'].
const config = unitConfig();
const STRANGER = 'U0STRANGER';

const reasonOf = (cmd: ParsedCommand, user: string, cfg = config) => {
  const d = authorise(cmd, user, cfg);
  return d.allowed ? undefined : d.reason;
};

describe('changing things in an environment needs a deployer there (or a lead)', () => {
  const changes: Array<[string, ParsedCommand]> = [
    [
      'deploy',
      { command: 'deploy', action: 'release', target: 'api', version: '1.0', environment: 'production' },
    ],
    ['cancel a release', { command: 'deploy', action: 'cancel', service: 'api', environment: 'production' }],
    [
      'promote a release',
      { command: 'deploy', action: 'promote', service: 'api', environment: 'production' },
    ],
    [
      'change traffic',
      { command: 'traffic', action: 'set', service: 'api', percent: 50, environment: 'production' },
    ],
    ['roll back', { command: 'rollback', action: 'rollback', target: 'all', environment: 'production' }],
    ['roll back', { command: 'rollback', action: 'confirm', target: 'api', environment: 'production' }],
  ];

  it.each(changes)('refuses a stranger who would %s, saying where to be added', (what, cmd) => {
    expect(reasonOf(cmd, STRANGER)).toBe(
      `you are not a deployer for *production*, so you cannot ${what} there. Ask a lead to add you to \`environments.production.deployers\` (leads: <@U0LEAD>).`,
    );
  });

  it.each(changes)('lets a production deployer %s', (_what, cmd) => {
    expect(authorise(cmd, 'U0DEV', config)).toEqual({ allowed: true });
  });

  it.each(changes)('lets a lead %s', (_what, cmd) => {
    expect(authorise(cmd, 'U0LEAD', config)).toEqual({ allowed: true });
  });

  it('lets anyone change things where the deployers include *', () => {
    expect(
      authorise(
        { command: 'traffic', action: 'set', service: 'api', percent: 0, environment: 'staging' },
        STRANGER,
        config,
      ),
    ).toEqual({ allowed: true });
    expect(
      authorise(
        { command: 'rollback', action: 'rollback', target: 'api', environment: 'staging' },
        STRANGER,
        config,
      ),
    ).toEqual({ allowed: true });
  });

  it('refuses a non-lead in an environment that is not configured', () => {
    const cmd: ParsedCommand = { command: 'rollback', action: 'rollback', target: 'api', environment: 'qa' };
    expect(authorise(cmd, 'U0DEV', config).allowed).toBe(false);
    expect(authorise(cmd, 'U0LEAD', config).allowed).toBe(true);
  });

  it('leaves the lead list out of the reason when there are no leads', () => {
    const noLeads = unitConfig((raw) => {
      raw.access = { leads: [] };
    });
    const cmd: ParsedCommand = {
      command: 'deploy',
      action: 'cancel',
      service: 'api',
      environment: 'production',
    };
    expect(reasonOf(cmd, STRANGER, noLeads)).toMatch(/to `environments\.production\.deployers`\.$/);
  });
});

describe('open to everyone', () => {
  const open: ParsedCommand[] = [
    { command: 'deploy', action: 'help' },
    { command: 'deploy', action: 'history', service: 'api', environment: 'production' },
    { command: 'traffic', action: 'help' },
    { command: 'traffic', action: 'status' },
    { command: 'rollback', action: 'help' },
    { command: 'checklist', action: 'show', which: 'pre' },
    { command: 'checklist', action: 'status' },
    { command: 'checklist', action: 'recheck', which: 'current' },
    { command: 'checklist', action: 'tick', checklistId: 'pre', changes: [{ itemId: 'dns', ticked: true }] },
    // Buttons: the worker checks the clicker against the release or alert itself.
    { command: 'alert', action: 'ack', target: 'abc' },
    { command: 'alert', action: 'rollback', target: 'abc' },
    { command: 'release', action: 'approve', releaseId: 'rel-1' },
  ];
  it.each(open)('%o', (cmd) => {
    expect(authorise(cmd, STRANGER, config)).toEqual({ allowed: true });
  });
});

describe('checklist gates are for leads', () => {
  const override: ParsedCommand = {
    command: 'checklist',
    action: 'override',
    gate: 'pre',
    reason: 'agreed with QA',
  };

  it('refuses an override by anyone but a lead, naming the leads', () => {
    expect(reasonOf(override, 'U0DEV')).toBe('only leads can override a checklist gate (leads: <@U0LEAD>).');
    expect(authorise(override, 'U0LEAD', config)).toEqual({ allowed: true });
  });

  it('does not count a deployer of every environment as a lead', () => {
    const allDeployer = unitConfig((raw) => {
      for (const env of Object.values(raw.environments)) env.deployers = ['U0DEV'];
    });
    expect(authorise(override, 'U0DEV', allDeployer).allowed).toBe(false);
    expect(
      authorise(
        { command: 'checklist', action: 'start', rollout: 'default', date: '2026-12-01' },
        'U0DEV',
        allDeployer,
      ).allowed,
    ).toBe(false);
  });

  it('lets only leads start and finish rollouts', () => {
    const start: ParsedCommand = { command: 'checklist', action: 'start', rollout: 'teamflow-q1' };
    const finish: ParsedCommand = { command: 'checklist', action: 'finish', rollout: 'teamflow-q1' };
    expect(reasonOf(start, 'U0DEV')).toMatch(/^only leads can start a rollout/);
    expect(reasonOf(finish, 'U0DEV')).toMatch(/^only leads can finish a rollout/);
    expect(authorise(finish, 'U0LEAD', config)).toEqual({ allowed: true });
    for (const open of ['list', 'history'] as const)
      expect(authorise({ command: 'checklist', action: open }, 'U0GUEST', config)).toEqual({ allowed: true });
  });
});

describe('isLead and isDeployer', () => {
  it('match user ids exactly', () => {
    expect(isLead('U0LEAD', config)).toBe(true);
    expect(isLead('u0lead', config)).toBe(false);
    expect(isDeployer('U0DEV', 'production', config)).toBe(true);
    expect(isDeployer('U0DEVX', 'production', config)).toBe(false);
    expect(isDeployer('U0DEV', 'constructor', config)).toBe(false);
  });
});

describe('overriding a deploy’s rules is for leads', () => {
  const cmd = {
    command: 'deploy',
    action: 'release',
    target: 'api',
    version: '1.4.2',
    environment: 'staging',
    override: 'hotfix, CAB-12',
  } as const;
  it('refuses a deployer who is not a lead, and lets a lead', () => {
    const refused = authorise(cmd, 'U0DEV', config);
    expect(refused.allowed).toBe(false);
    expect(refused.allowed === false && refused.reason).toContain('only leads can override');
    expect(authorise(cmd, 'U0LEAD', config)).toEqual({ allowed: true });
    expect(authorise({ ...cmd, override: undefined }, 'U0DEV', config)).toEqual({ allowed: true });
  });
});
