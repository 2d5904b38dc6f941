// What test/parse-command.test.ts (the grammar's main cases) does not already cover.
import { describe, expect, it } from 'vitest';
import { clip, parseCommand, tokenize, UsageError } from '../../src/commands/parse-command.js';
import type { CommandName } from '../../src/commands/schema.js';
import { unitConfig } from './helpers.js';

const config = unitConfig();
const parse = (command: CommandName, text: string) => parseCommand(command, text, config);
const usageError = (command: CommandName, text: string): string => {
  try {
    parse(command, text);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error(`/${command} ${text} parsed without an error`);
};

describe('help', () => {
  it.each([
    ['deploy', 'help'],
    ['deploy', '-h'],
    ['deploy', '--HELP'],
    ['traffic', 'help'],
    ['rollback', 'Help'],
    ['checklist', '--help'],
  ] as const)('/%s %s asks for help', (command, text) => {
    expect(parse(command, text)).toEqual({ command, action: 'help' });
  });
});

describe('/deploy', () => {
  it('accepts in, to and on before the environment, in any case', () => {
    for (const word of ['to', 'in', 'on', 'TO'])
      expect(parse('deploy', `api 1.0 ${word} production`)).toMatchObject({ environment: 'production' });
  });

  it('needs a word before the environment', () => {
    expect(usageError('deploy', 'api 1.0 production')).toBe(
      'I did not understand `production`; say `to <environment>`.',
    );
  });

  it('deploys everything with all, checked against the environment', () => {
    expect(parse('deploy', 'all 2.0.0 to production')).toEqual({
      command: 'deploy',
      action: 'release',
      target: 'all',
      version: '2.0.0',
      environment: 'production',
    });
  });

  it('asks for what is missing', () => {
    expect(usageError('deploy', '')).toBe('Tell me what to deploy.');
    expect(usageError('deploy', '   ')).toBe('Tell me what to deploy.');
    expect(usageError('deploy', 'api')).toBe('Which version of `api`? e.g. `/deploy api 1.4.2`');
    expect(usageError('deploy', 'promote')).toBe('Which service? e.g. `/deploy promote api`');
    expect(usageError('deploy', 'abort')).toBe('Which service? e.g. `/deploy cancel api`');
  });

  it('names the environments there are when one is unknown', () => {
    expect(usageError('deploy', 'api 1.0 to qa')).toBe(
      'Unknown environment `qa`. Environments: staging, production.',
    );
  });

  it('names the services there are when one is unknown', () => {
    expect(usageError('deploy', 'billing 1.0 to production')).toBe(
      'Unknown service `billing` in production. Services there: api, web.',
    );
  });

  it('checks the service in the environment named, not the default one', () => {
    const split = unitConfig((raw) => {
      delete raw.environments.production.services.web;
    });
    expect(parseCommand('deploy', 'web 1.0', split)).toMatchObject({ target: 'web', environment: 'staging' });
    expect(() => parseCommand('deploy', 'web 1.0 to production', split)).toThrow(
      'Unknown service `web` in production. Services there: api.',
    );
  });

  it('goes to defaultEnvironment when none is named', () => {
    const prodFirst = unitConfig((raw) => {
      raw.defaultEnvironment = 'production';
    });
    expect(parseCommand('deploy', 'api 1.0', prodFirst)).toMatchObject({ environment: 'production' });
  });

  it('takes cancel, promote and history with an environment after in', () => {
    expect(parse('deploy', 'cancel web in production')).toEqual({
      command: 'deploy',
      action: 'cancel',
      service: 'web',
      environment: 'production',
    });
    expect(parse('deploy', 'history api')).toMatchObject({ action: 'history', environment: 'staging' });
  });

  it('accepts image tags Docker accepts and refuses the rest', () => {
    expect(parse('deploy', 'api v1.2.3_rc-4')).toMatchObject({ version: 'v1.2.3_rc-4' });
    expect(parse('deploy', `api ${'a'.repeat(128)}`)).toMatchObject({ version: 'a'.repeat(128) });
    expect(usageError('deploy', 'api -rc1')).toMatch(/^`-rc1` is not a valid image tag/);
    expect(usageError('deploy', 'api 1.0:latest')).toMatch(/is not a valid image tag/);
    expect(usageError('deploy', 'api 1.0@sha256')).toMatch(/is not a valid image tag/);
  });
});

describe('/traffic', () => {
  it('sets a split without a colour, or for a named colour', () => {
    expect(parse('traffic', 'web 30%')).toEqual({
      command: 'traffic',
      action: 'set',
      service: 'web',
      percent: 30,
      environment: 'staging',
    });
    expect(parse('traffic', 'web 30 GREEN in production')).toMatchObject({
      colour: 'green',
      environment: 'production',
    });
  });

  it.each(['101', '-1', '50.5', '50%%', 'half', '1000'])('refuses %s as a percentage', (pct) => {
    expect(usageError('traffic', `api ${pct}`)).toMatch(
      /^The percentage must be a whole number from 0 to 100, got `/,
    );
  });

  it('refuses a word that is neither a colour nor an environment clause', () => {
    expect(usageError('traffic', 'api 50 purple')).toBe('`purple` is not a colour; say `blue` or `green`.');
  });

  it('asks for a service first', () => {
    expect(usageError('traffic', '')).toBe('Tell me which service and how much traffic.');
  });

  it('shows the status of one environment, named bare or after in/for', () => {
    for (const text of ['status production', 'status in production', 'status for production'])
      expect(parse('traffic', text)).toEqual({
        command: 'traffic',
        action: 'status',
        environment: 'production',
      });
    expect(usageError('traffic', 'status nowhere')).toMatch(/^Unknown environment `nowhere`/);
    expect(usageError('traffic', 'status staging production')).toMatch(/did not understand/);
  });
});

describe('/rollback', () => {
  it('folds the case of service and environment', () => {
    expect(parse('rollback', 'API PRODUCTION')).toEqual({
      command: 'rollback',
      action: 'rollback',
      target: 'api',
      environment: 'production',
    });
  });

  it('asks what to roll back and refuses trailing words', () => {
    expect(usageError('rollback', '')).toBe('Which service should I roll back? (or `all`)');
    expect(usageError('rollback', 'api in production now')).toBe('I did not understand `now` at the end.');
  });
});

describe('/checklist', () => {
  it('takes at most a rollout name after status, pre, post and phase N', () => {
    expect(parse('checklist', 'status')).toEqual({ command: 'checklist', action: 'status' });
    expect(parse('checklist', 'status teamflow-q1')).toEqual({
      command: 'checklist',
      action: 'status',
      rollout: 'teamflow-q1',
    });
    expect(parse('checklist', 'pre Web-Q2')).toMatchObject({ which: 'pre', rollout: 'web-q2' });
    expect(parse('checklist', 'phase 2 web-q2')).toMatchObject({ which: { phase: 2 }, rollout: 'web-q2' });
    expect(usageError('checklist', 'status now')).toBe(
      "`/checklist status` takes at most a rollout's name after it; got `now`.",
    );
    expect(usageError('checklist', 'pre please now')).toMatch(
      /^`\/checklist pre` takes at most a rollout's name/,
    );
    expect(usageError('checklist', 'phase 2 3')).toMatch(
      /^`\/checklist phase N` takes at most a rollout's name/,
    );
  });

  it('knows only phases 1 to 4', () => {
    expect(usageError('checklist', 'phase 5')).toBe('The phase is a number from 1 to 4.');
    expect(usageError('checklist', 'phase 0')).toBe('The phase is a number from 1 to 4.');
  });

  it.each(['2026-13-01', '2026-1-1', '01-12-2026', 'tomorrow', 'q1 2026-02-30', 'q1 friday'])(
    'refuses start %s as a date',
    (date) => {
      expect(usageError('checklist', `start ${date}`)).toMatch(/is not a date; use YYYY-MM-DD/);
    },
  );

  it('starts a named rollout with a date, a template and what it covers', () => {
    expect(usageError('checklist', 'start')).toMatch(/^Name the rollout/);
    expect(parse('checklist', 'start teamflow-q1')).toEqual({
      command: 'checklist',
      action: 'start',
      rollout: 'teamflow-q1',
    });
    expect(parse('checklist', 'start teamflow-q1 2026-12-01 teamflow for api,web in production')).toEqual({
      command: 'checklist',
      action: 'start',
      rollout: 'teamflow-q1',
      date: '2026-12-01',
      template: 'teamflow',
      services: ['api', 'web'],
      environments: ['production'],
    });
    // The single-rollout form: the first day of the rollout `default`.
    expect(parse('checklist', 'start 2026-12-01')).toEqual({
      command: 'checklist',
      action: 'start',
      rollout: 'default',
      date: '2026-12-01',
    });
    expect(usageError('checklist', 'start Q1_team')).toMatch(/is not a rollout name/);
    expect(usageError('checklist', 'start q1 for nosuch')).toMatch(/^Unknown service `nosuch`/);
    expect(usageError('checklist', 'start q1 in mars')).toMatch(/^Unknown environment `mars`/);
    expect(usageError('checklist', 'start q1 bizosaas extra')).toMatch(/^I don't understand `extra`/);
    expect(usageError('checklist', 'start rel-x')).toMatch(/is not a rollout name/);
  });

  it('lists, finishes, shows history, and names the rollout of an override', () => {
    expect(parse('checklist', 'list')).toEqual({ command: 'checklist', action: 'list' });
    expect(parse('checklist', 'finish')).toEqual({ command: 'checklist', action: 'finish' });
    expect(parse('checklist', 'history q1')).toEqual({
      command: 'checklist',
      action: 'history',
      rollout: 'q1',
    });
    expect(parse('checklist', 'q1')).toEqual({
      command: 'checklist',
      action: 'show',
      which: 'current',
      rollout: 'q1',
    });
    expect(parse('checklist', 'recheck phase 2 q1')).toMatchObject({ which: { phase: 2 }, rollout: 'q1' });
    expect(parse('checklist', 'override q1 pre agreed with QA')).toEqual({
      command: 'checklist',
      action: 'override',
      gate: 'pre',
      reason: 'agreed with QA',
      rollout: 'q1',
    });
    expect(parse('checklist', 'override pre q1 agreed')).toMatchObject({ reason: 'q1 agreed' });
  });

  it('rechecks the current checklist, pre, post or a phase', () => {
    expect(parse('checklist', 'recheck')).toEqual({
      command: 'checklist',
      action: 'recheck',
      which: 'current',
    });
    expect(parse('checklist', 'recheck PRE')).toMatchObject({ which: 'pre' });
    expect(parse('checklist', 'recheck phase 4')).toMatchObject({ which: { phase: 4 } });
    for (const bad of ['phase 9', 'pre post', 'phase', 'phase 2 now', 'current'])
      expect(usageError('checklist', `recheck ${bad}`)).toBe(
        'Which checklist? `pre`, `post` or `phase <1-4>`.',
      );
  });

  it('overrides a phase gate with a reason', () => {
    expect(parse('checklist', 'override phase 2 load tests ran in preprod')).toEqual({
      command: 'checklist',
      action: 'override',
      gate: { phase: 2 },
      reason: 'load tests ran in preprod',
    });
  });

  it('refuses an override of nothing, or without a real reason', () => {
    expect(usageError('checklist', 'override post fine by me')).toMatch(/^Override what\?/);
    expect(usageError('checklist', 'override phase 7 fine by me')).toMatch(/^Override what\?/);
    expect(usageError('checklist', 'override pre ok')).toMatch(/needs a reason \(at least 5 characters\)/);
    expect(usageError('checklist', 'override pre')).toMatch(/needs a reason/);
    expect(usageError('checklist', `override pre ${'x'.repeat(201)}`)).toBe(
      'Keep the reason under 200 characters.',
    );
  });

  it('counts the escaped length of a reason against its limit', () => {
    // 50 "<" become 50 "&lt;" (200 characters): the limit is on what is shown and stored.
    expect(usageError('checklist', `override pre ${'<'.repeat(51)}`)).toBe(
      'Keep the reason under 200 characters.',
    );
  });

  it('says which subcommand it does not know', () => {
    expect(usageError('checklist', 'frobnicate now')).toBe("I don't know `/checklist frobnicate`.");
    // One unknown word is taken for a rollout's name (the worker says when there is none).
    expect(parse('checklist', 'frobnicate')).toMatchObject({ action: 'show', rollout: 'frobnicate' });
  });
});

describe('tokenize and clip', () => {
  it('splits on any whitespace, tabs and newlines included', () => {
    expect(tokenize('  api\t1.0\n to   production ')).toEqual(['api', '1.0', 'to', 'production']);
    expect(parse('deploy', 'api\t1.0\nto production')).toMatchObject({ environment: 'production' });
  });

  it('refuses text over 300 characters, saying how long it was', () => {
    expect(() => tokenize('a'.repeat(300))).not.toThrow();
    expect(() => tokenize('a'.repeat(301))).toThrow('That is 301 characters; commands are at most 300.');
  });

  it.each(['\u0007', '\u001b[31m', '\u007f', '\u000b'])('refuses control character %j', (c) => {
    expect(() => tokenize(`api 1.0${c}`)).toThrow('The command contains control characters.');
  });

  it('echoes user text without characters that would break a code span or mention someone', () => {
    expect(clip('`<@U0LEAD>` & co')).toBe('@U0LEAD  co');
    expect(clip('x'.repeat(50))).toBe(`${'x'.repeat(40)}…`);
    expect(usageError('deploy', '`<!channel>` 1.0')).toBe(
      'Unknown service `!channel` in staging. Services there: api, web.',
    );
  });

  it('never takes an Object.prototype name for a service or environment', () => {
    expect(usageError('traffic', 'constructor 50')).toMatch(/^Unknown service `constructor`/);
    expect(usageError('traffic', 'status toString')).toMatch(/^Unknown environment `toString`/);
    expect(usageError('rollback', 'api __proto__')).toMatch(/^Unknown environment `__proto__`/);
    expect(usageError('deploy', 'history hasOwnProperty')).toMatch(/^Unknown service `hasOwnProperty`/);
  });
});

describe('/deploy … override <reason>', () => {
  it('takes a reason after the environment, escaped where it will be shown', () => {
    expect(parse('deploy', 'api 1.4.2 to production override hotfix for <!channel> outage')).toEqual({
      command: 'deploy',
      action: 'release',
      target: 'api',
      version: '1.4.2',
      environment: 'production',
      override: 'hotfix for &lt;!channel&gt; outage',
    });
    expect(parse('deploy', 'all 2.0.0 override freeze ok per CAB-12')).toMatchObject({
      target: 'all',
      override: 'freeze ok per CAB-12',
    });
  });

  it('needs a reason', () => {
    expect(usageError('deploy', 'api 1.4.2 to production override')).toContain('needs a reason');
    expect(usageError('deploy', 'api 1.4.2 to production OVERRIDE ok')).toContain('needs a reason');
  });
});
