import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadSecrets, parseConfigText } from '../src/config/load-config.js';
import { runToExit } from './helpers/flightdeck-process.js';

const fixture = (name: string) =>
  name === 'valid.yml'
    ? readFileSync(join(import.meta.dirname, '../examples/flightdeck.yml'), 'utf8') // the shipped example must stay valid
    : readFileSync(join(import.meta.dirname, 'fixtures/config', name), 'utf8');

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration file', () => {
  it('accepts the shipped example and fills defaults', () => {
    const cfg = parseConfigText(fixture('valid.yml'));
    expect(Object.keys(cfg.environments)).toEqual(['staging', 'preproduction', 'production']);
    expect(cfg.environments.production?.requireApproval).toBe(true);
    expect(cfg.environments.preproduction?.services['brain-gateway']?.healthPath).toBe('/health');
    expect(cfg.nginx.reloadCommand).toEqual(['nginx', '-s', 'reload']);
    expect(cfg.rollout.startDate).toBe('2026-11-02');
  });

  it('names every mistake in a hostile file by key, with what is wrong', () => {
    const problems = problemsOf(fixture('evil.yml'));
    const expected = [
      /^timezone: must be an IANA time zone/,
      /^server\.port: .*65535/,
      /^nginx\.upstreamFile: must be an absolute path/,
      /^nginx\.testCommand: .*array/,
      /^nginx\.probeUrl: must be an http\(s\) URL/,
      /^channels\.releases: must be a Slack channel ID like C012ABCDEF, got "#releases"/,
      /^access\.leads\.0: must be a Slack user ID/,
      /^environments\.Production!: "Production!" is not a valid name: must be lower-case letters/,
      /^environments\.staging\.deployers\.0: /,
      /^environments\.staging: unknown key "requireAproval"/,
      /^environments\.staging\.services\.api\.image: must be an image repository without a tag/,
      /^environments\.staging\.services\.api\.port: .*number/,
      /^environments\.staging\.services\.api\.healthPath: must start with \//,
      /^environments\.staging\.services\.api\.blue\.swarmService: must be a Docker Swarm service name, got "api blue"/,
      /^environments\.staging\.services\.api\.blue\.address: must be host:port/,
    ];
    for (const re of expected)
      expect(
        problems.some((p) => re.test(p)),
        `${re} in\n${problems.join('\n')}`,
      ).toBe(true);
  });

  it('checks cross-key rules once the shapes are right', () => {
    const text = fixture('valid.yml')
      .replace('defaultEnvironment: staging', 'defaultEnvironment: qa')
      .replace('address: prod-gateway-green:8001', 'address: prod-gateway-blue:8001');
    const problems = problemsOf(text);
    expect(problems).toContain(
      'defaultEnvironment: names an environment that is not defined (defined: staging, preproduction, production)',
    );
    expect(problems).toContain(
      'environments.production.services.brain-gateway.green.address: must differ from blue.address (nginx must reach each colour separately)',
    );
  });

  it('refuses two services whose nginx upstream names collide, naming both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-upstream-names-'));
    const service = (name: string, port: number) =>
      [
        `      ${name}:`,
        '        image: registry.example.com/api',
        '        port: 8080',
        `        blue: { swarmService: ${name}-${port}-blue, address: "10.0.0.1:${port}" }`,
        `        green: { swarmService: ${name}-${port}-green, address: "10.0.0.2:${port}" }`,
      ].join('\n');
    writeFileSync(
      join(dir, 'flightdeck.yml'),
      [
        'nginx:',
        '  upstreamFile: /etc/nginx/flightdeck/flightdeck-upstreams.conf',
        '  probeUrl: http://127.0.0.1:8088/',
        'channels: { releases: C0RELEASES }',
        'environments:',
        '  prod-eu:',
        '    services:',
        service('api', 8001),
        '  prod:',
        '    services:',
        service('eu-api', 8002),
      ].join('\n'),
    );
    let error: unknown;
    try {
      loadConfig({
        FLIGHTDECK_CONFIG: join(dir, 'flightdeck.yml'),
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_SIGNING_SECRET: 's3cret',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      "environments.prod.services.eu-api: its nginx upstream name flightdeck_prod_eu_api is the same as environments.prod-eu.services.api's; rename one",
    ]);
  });

  it('reports YAML syntax errors instead of a stack trace', () => {
    const problems = problemsOf(fixture('malformed.yml'));
    expect(problems[0]).toMatch(/^YAML syntax: /);
  });

  it('says which required sections are missing', () => {
    const problems = problemsOf('timezone: UTC\n');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^nginx: is required/),
        expect.stringMatching(/^channels: is required/),
        expect.stringMatching(/^environments: is required/),
      ]),
    );
  });

  it('tells a new user where the file should be', () => {
    expect(() => loadConfig({ FLIGHTDECK_CONFIG: '/nonexistent/flightdeck.yml' })).toThrow(
      /cannot read the file \(ENOENT\); set FLIGHTDECK_CONFIG or copy examples\/flightdeck.yml/,
    );
  });
});

describe('secrets from the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fd-secrets-'));

  it('reads *_FILE for Docker secrets and trims the newline', () => {
    writeFileSync(join(dir, 'token'), 'xoxb-from-file\n');
    const s = loadSecrets({ SLACK_BOT_TOKEN_FILE: join(dir, 'token'), SLACK_SIGNING_SECRET: 's3cret' });
    expect(s.slackBotToken).toBe('xoxb-from-file');
    expect(s.redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('refuses both NAME and NAME_FILE, unreadable files, and bad values, naming the variable', () => {
    expect(() =>
      loadSecrets({ SLACK_BOT_TOKEN: 'a', SLACK_BOT_TOKEN_FILE: '/x', SLACK_SIGNING_SECRET: 's' }),
    ).toThrow(/SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE are both set/);
    expect(() =>
      loadSecrets({ SLACK_BOT_TOKEN_FILE: join(dir, 'missing'), SLACK_SIGNING_SECRET: 's' }),
    ).toThrow(/SLACK_BOT_TOKEN_FILE: cannot read .*missing \(ENOENT\)/);
    expect(() =>
      loadSecrets({ SLACK_BOT_TOKEN: 'x', SLACK_SIGNING_SECRET: 's', REDIS_URL: 'http://nope' }),
    ).toThrow(/REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => loadSecrets({ SLACK_SIGNING_SECRET: 's' })).toThrow(/SLACK_BOT_TOKEN: is required/);
    expect(() => loadSecrets({ SLACK_BOT_TOKEN: 'x' })).toThrow(
      /SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN/,
    );
    expect(() => loadSecrets({ SLACK_BOT_TOKEN: 'x', SLACK_APP_TOKEN: 'xoxb-wrong' })).toThrow(
      /SLACK_APP_TOKEN: must be an app-level token/,
    );
  });

  it('Socket Mode needs no signing secret', () => {
    expect(loadSecrets({ SLACK_BOT_TOKEN: 'x', SLACK_APP_TOKEN: 'xapp-1-abc' }).slackAppToken).toBe(
      'xapp-1-abc',
    );
  });
});

describe('start-up with a bad config', () => {
  it('stops with exit code 78 and the named problems on stderr', async () => {
    const { code, output } = await runToExit(fixture('evil.yml'));
    expect(code).toBe(78);
    expect(output).toContain('Invalid flightdeck configuration');
    expect(output).toContain('environments.staging.services.api.port');
    expect(output).not.toMatch(/at .*\.ts:\d+/); // no stack trace for a config mistake
  });

  it('stops on a bad FLIGHTDECK_ROLE', async () => {
    const { code, output } = await runToExit(fixture('valid.yml'), { FLIGHTDECK_ROLE: 'janitor' });
    expect(code).toBe(78);
    expect(output).toContain('FLIGHTDECK_ROLE: must be one of all, web, worker, got "janitor"');
  });
});
