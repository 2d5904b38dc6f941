// test/config.test.ts covers the example, a hostile file, missing sections, an unreadable file and
// the secrets; this covers the other wording rules and the environment overrides, with no process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { z } from 'zod';
import {
  ConfigError,
  formatIssues,
  loadConfig,
  parseConfigText,
  readSecret,
} from '../../src/config/load-config.js';
import { testConfig } from '../helpers/config.js';

const yaml = stringify(
  testConfig({
    upstreamFile: '/tmp/flightdeck-unit/upstreams.conf',
    testCommand: ['true'],
    reloadCommand: ['true'],
    probeUrl: 'http://127.0.0.1:9/',
    statusListen: '',
  }),
);

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'test.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfigText', () => {
  it('accepts the unit config and fills defaults', () => {
    const cfg = parseConfigText(yaml);
    expect(cfg.server).toEqual({ port: 3000, host: '0.0.0.0' });
    expect(cfg.nginx.driver).toBe('reload');
    expect(cfg.alerts.escalation).toMatchObject({ after: 600_000, maxTimes: 3, notify: [] });
    expect(cfg.checklists.gateEnvironments).toEqual(['production']);
  });

  it('refuses a file that is not a mapping, or empty', () => {
    for (const text of ['', '- a\n- b\n', 'just words\n', '42\n'])
      expect(problemsOf(text)).toEqual([
        'the file must be a YAML mapping with environments, nginx and channels',
      ]);
  });

  it('refuses a key given twice, saying where', () => {
    expect(problemsOf(`${yaml}timezone: UTC\n`)).toEqual([
      expect.stringMatching(/^YAML syntax: Map keys must be unique at line \d+, column 1/),
    ]);
  });

  it('names the source in the error and lists every problem', () => {
    try {
      parseConfigText('timezone: Mars/Olympus\n', 'flightdeck.prod.yml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.source).toBe('flightdeck.prod.yml');
      expect(e.message).toMatch(/^Invalid flightdeck configuration \(flightdeck\.prod\.yml\):\n {2}- /);
      expect(e.message.split('\n').length).toBe(e.problems.length + 1);
    }
  });

  it('shows the value it refused when it is a scalar', () => {
    const text = yaml.replace('port: 8080', 'port: "8080"');
    expect(problemsOf(text)).toContain(
      'environments.staging.services.api.port: Invalid input: expected number, received string, got "8080"',
    );
  });

  it('names several unknown keys at once', () => {
    expect(problemsOf(`${yaml}colour: blue\nflavour: mint\n`)).toContain(
      '(top level): unknown keys "colour", "flavour" (check the spelling against docs/configuration.md)',
    );
  });
});

describe('formatIssues', () => {
  const Schema = z.strictObject({
    a: z.strictObject({ n: z.number() }),
    names: z.record(z.string().regex(/^[a-z]+$/, 'lower-case only'), z.string()),
  });
  const issuesOf = (input: unknown) => {
    const r = Schema.safeParse(input);
    return formatIssues(r.error?.issues ?? [], input);
  };

  it('says a missing key is required and what it should be', () => {
    expect(issuesOf({ names: {} })).toEqual(['a: is required (object)']);
  });

  it('appends the scalar value that was refused, but never an object', () => {
    expect(issuesOf({ a: { n: 'x' }, names: {} })).toEqual([
      'a.n: Invalid input: expected number, received string, got "x"',
    ]);
    expect(issuesOf({ a: { n: { deep: 1 } }, names: {} })).toEqual([
      'a.n: Invalid input: expected number, received object',
    ]);
  });

  it('explains a bad key name', () => {
    expect(issuesOf({ a: { n: 1 }, names: { Bad: 'x' } })).toEqual([
      'names.Bad: "Bad" is not a valid name: lower-case only',
    ]);
  });

  it('names one unknown key in the singular', () => {
    expect(issuesOf({ a: { n: 1, m: 2 }, names: {} })).toEqual([
      'a: unknown key "m" (check the spelling against docs/configuration.md)',
    ]);
  });
});

describe('loadConfig from the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fd-unit-config-'));
  const file = join(dir, 'flightdeck.yml');
  writeFileSync(file, yaml);
  const env = (extra: Record<string, string> = {}) => ({
    FLIGHTDECK_CONFIG: file,
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: 'signing',
    ...extra,
  });

  it('reads the file named by FLIGHTDECK_CONFIG, with the role all by default', () => {
    const loaded = loadConfig(env());
    expect(loaded.configPath).toBe(file);
    expect(loaded.role).toBe('all');
    expect(loaded.config.defaultEnvironment).toBe('staging');
    expect(loaded.secrets.slackBotToken).toBe('xoxb-test');
  });

  it('lets PORT and SLACK_API_URL override the file', () => {
    const loaded = loadConfig(env({ PORT: '8081', SLACK_API_URL: 'http://127.0.0.1:9999/api/' }));
    expect(loaded.config.server.port).toBe(8081);
    expect(loaded.config.slack.apiUrl).toBe('http://127.0.0.1:9999/api/');
  });

  it.each(['0', '65536', '80a', '8.5'])('refuses PORT=%s', (port) => {
    expect(() => loadConfig(env({ PORT: port }))).toThrow('PORT: must be a port number');
  });

  it('takes FLIGHTDECK_ROLE web or worker', () => {
    expect(loadConfig(env({ FLIGHTDECK_ROLE: 'worker' })).role).toBe('worker');
    expect(loadConfig(env({ FLIGHTDECK_ROLE: 'web' })).role).toBe('web');
  });
});

describe('readSecret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fd-unit-secret-'));

  it('treats an empty variable as unset', () => {
    expect(readSecret({ TOKEN: '' }, 'TOKEN')).toBeUndefined();
  });

  it('reads NAME_FILE when NAME is set but empty', () => {
    writeFileSync(join(dir, 'token'), '  s3cret \n');
    expect(readSecret({ TOKEN: '', TOKEN_FILE: join(dir, 'token') }, 'TOKEN')).toBe('s3cret');
  });
});
