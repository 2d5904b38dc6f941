import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorise } from '../../src/commands/authorise.js';
import { parseCommand, UsageError } from '../../src/commands/parse-command.js';
import { parseConfigText } from '../../src/config/load-config.js';

const config = parseConfigText(
  readFileSync(join(import.meta.dirname, '../../examples/flightdeck.yml'), 'utf8'),
);

describe('command grammar', () => {
  it.each([
    [
      'deploy',
      'brain-gateway 1.4.2',
      { action: 'release', target: 'brain-gateway', version: '1.4.2', environment: 'staging' },
    ],
    [
      'deploy',
      'all v2.0.0-rc.1 to production',
      { action: 'release', target: 'all', version: 'v2.0.0-rc.1', environment: 'production' },
    ],
    [
      'deploy',
      'Brain-Gateway 1.4.2 TO Preproduction',
      { action: 'release', target: 'brain-gateway', environment: 'preproduction' },
    ],
    ['deploy', 'status', { action: 'status' }],
    [
      'deploy',
      'history brain-gateway in production',
      { action: 'history', service: 'brain-gateway', environment: 'production' },
    ],
    ['deploy', 'abort client-portal', { action: 'cancel', service: 'client-portal', environment: 'staging' }],
    ['deploy', 'promote brain-gateway', { action: 'promote', service: 'brain-gateway' }],
    [
      'traffic',
      'brain-gateway 10',
      { action: 'set', service: 'brain-gateway', percent: 10, environment: 'staging' },
    ],
    [
      'traffic',
      'brain-gateway 100% green to production',
      { action: 'set', percent: 100, colour: 'green', environment: 'production' },
    ],
    ['traffic', 'brain-gateway 0 blue', { action: 'set', percent: 0, colour: 'blue' }],
    ['traffic', 'status production', { action: 'status', environment: 'production' }],
    ['traffic', 'status', { action: 'status' }],
    [
      'rollback',
      'brain-gateway production',
      { action: 'rollback', target: 'brain-gateway', environment: 'production' },
    ],
    ['rollback', 'all', { action: 'rollback', target: 'all', environment: 'staging' }],
    ['checklist', '', { action: 'show', which: 'current' }],
    ['checklist', 'phase 3', { action: 'show', which: { phase: 3 } }],
    ['checklist', 'post', { action: 'show', which: 'post' }],
    ['checklist', 'start 2028-02-29', { action: 'start', date: '2028-02-29' }],
  ] as const)('/%s %s', (command, text, expected) => {
    expect(parseCommand(command, text, config)).toMatchObject({ command, ...expected });
  });

  it.each([
    ['deploy', 'client-portal 1.0.0 to preproduction', /Unknown service `client-portal` in preproduction/],
    ['deploy', `api ${'a'.repeat(129)}`, /Unknown service|not a valid image tag/],
    ['deploy', `brain-gateway ${'a'.repeat(129)}`, /not a valid image tag/],
    ['deploy', 'brain-gateway .hidden', /not a valid image tag/],
    ['deploy', 'brain-gateway 1.0 to', /`to` which environment/],
    ['deploy', 'brain-gateway 1.0 to staging now', /did not understand `now`/],
    ['deploy', 'status please', /takes nothing after it/],
    ['traffic', 'brain-gateway 1e2', /whole number from 0 to 100/],
    ['traffic', 'brain-gateway 0x10', /whole number from 0 to 100/],
    ['traffic', 'brain-gateway', /What percentage/],
    ['rollback', 'brain-gateway to', /`to` which environment/],
    ['checklist', 'phase', /number from 1 to 4/],
    ['checklist', 'start 2027-02-29', /not a date/],
    ['deploy', 'brain-gateway 1.0\u0000', /control characters/],
  ] as const)('/%s %s → usage error', (command, text, message) => {
    expect(() => parseCommand(command, text, config)).toThrow(UsageError);
    expect(() => parseCommand(command, text, config)).toThrow(message);
  });

  it('never treats an object prototype key as a service or environment', () => {
    expect(() => parseCommand('deploy', 'constructor 1.0', config)).toThrow(/Unknown service/);
    expect(() => parseCommand('deploy', 'brain-gateway 1.0 to __proto__', config)).toThrow(
      /Unknown environment/,
    );
  });
});

describe('authorisation rules', () => {
  const deploy = (env: string) => parseCommand('deploy', `brain-gateway 1.0 to ${env}`, config);

  it('lets anyone deploy to an environment whose deployers include *', () => {
    expect(authorise(deploy('staging'), 'U0ANYONE1', config)).toEqual({ allowed: true });
  });

  it('limits production to its deployers and the leads', () => {
    expect(authorise(deploy('production'), 'U0123DEVA', config).allowed).toBe(true);
    expect(authorise(deploy('production'), 'U0123LEADA', config).allowed).toBe(true);
    const refused = authorise(deploy('production'), 'U0123DEVB', config);
    expect(refused.allowed).toBe(false);
    expect(!refused.allowed && refused.reason).toMatch(/not a deployer for \*production\*/);
  });

  it('lets everyone read status and history', () => {
    expect(authorise(parseCommand('deploy', 'status', config), 'U0NOBODY1', config).allowed).toBe(true);
    expect(authorise(parseCommand('traffic', 'status production', config), 'U0NOBODY1', config).allowed).toBe(
      true,
    );
  });

  it('keeps the rollout start date for leads', () => {
    const cmd = parseCommand('checklist', 'start 2026-12-01', config);
    expect(authorise(cmd, 'U0123DEVA', config).allowed).toBe(false);
    expect(authorise(cmd, 'U0123LEADB', config).allowed).toBe(true);
  });
});

describe('override reasons reach the channel inert', () => {
  it('escapes < and > (no @channel ping or mention) but keeps Slack’s own &amp; as one ampersand', () => {
    // Slack sends a typed "&" as "&amp;" and a picked @channel as <!channel>.
    const parsed = parseCommand('checklist', 'override pre Ops &amp; QA agreed <!channel> <@U0LEAD>', config);
    expect(parsed).toMatchObject({
      action: 'override',
      reason: 'Ops &amp; QA agreed &lt;!channel&gt; &lt;@U0LEAD&gt;',
    });
  });
});
