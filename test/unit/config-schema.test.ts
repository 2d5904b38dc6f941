// The rules of src/config/schema.ts, seen as a user sees them: the messages parseConfigText reports.
// test/config.test.ts covers the shipped example, a hostile file's shape errors and the
// defaultEnvironment / address cross-checks; this covers the release policy and the other rules.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RELEASE_POLICY,
  Duration,
  mergePolicy,
  releasePolicy,
  writtenInEnvironment,
} from '../../src/config/schema.js';
import { problemsOf, type RawConfig, unitConfig } from './helpers.js';

describe('a release policy per environment', () => {
  it('accepts the unit config as it is', () => {
    expect(problemsOf(() => {})).toEqual([]);
  });

  it('reports a bad override at the environment’s own path', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.production.release = { steps: [50, 10, 100] };
      }),
    ).toEqual(['environments.production.release.steps: must increase']);
    expect(
      problemsOf((raw) => {
        raw.environments.staging.release = { soak: ['1m', 'forever', '1m'] };
      }),
    ).toEqual(['environments.staging.release.soak.1: must be a duration like 500ms, 30s, 5m, 1h or 2d']);
    expect(
      problemsOf((raw) => {
        raw.environments.staging.release = { healthCheck: { attempts: 0 } };
      }),
    ).toEqual([expect.stringMatching(/^environments\.staging\.release\.healthCheck\.attempts: .*>=1/)]);
  });

  it('reports a mistake in the top-level policy at release.…', () => {
    const problems = problemsOf((raw) => {
      raw.release = { ...raw.release, steps: [10, 50] };
    });
    expect(problems.length).toBeGreaterThan(0);
    expect(new Set(problems)).toEqual(new Set(['release.steps: must end at 100']));
  });

  it('does not report a top-level mistake for an environment that overrides that key', () => {
    const problems = problemsOf((raw) => {
      raw.release = { ...raw.release, pollInterval: 'often' };
      raw.environments.staging.release = { pollInterval: '1s' };
    });
    expect(new Set(problems)).toEqual(
      new Set(['release.pollInterval: must be a duration like 500ms, 30s, 5m, 1h or 2d']),
    );
  });

  it('needs one soak per traffic step, counting both', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.staging.release = { steps: [50, 100], soak: ['1m'] };
      }),
    ).toEqual(['environments.staging.release.soak: needs one soak per traffic step (2 steps, 1 soaks)']);
  });

  it('takes an environment’s steps with its own soaks', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.production.release = { steps: [25, 100], soak: ['10m', '10m'] };
      }),
    ).toEqual([]);
  });

  it('needs prometheus once an environment has metric gates, naming it', () => {
    const gated = (raw: RawConfig) => {
      raw.environments.production.release = { gates: [{ name: 'errors', query: 'up', max: 1 }] };
    };
    expect(problemsOf(gated)).toEqual([
      'prometheus: is required because production has metric gates (or give environments.production.prometheus)',
    ]);
    expect(
      problemsOf((raw) => {
        gated(raw);
        raw.prometheus = { url: 'http://prometheus:9090' };
      }),
    ).toEqual([]);
  });

  it('needs a max or min on every gate', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.production.release = { gates: [{ name: 'errors', query: 'up' }] };
        raw.prometheus = { url: 'http://prometheus:9090' };
      }),
    ).toEqual(['environments.production.release.gates.0: needs max or min']);
  });

  it('names an unknown key in an environment’s policy', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.staging.release = { sok: ['1m'] };
      }),
    ).toEqual([
      'environments.staging.release: unknown key "sok" (check the spelling against docs/configuration.md)',
    ]);
  });

  // The merged policy is validated once per environment: a mistake in the top-level `release` is
  // still listed once, at release.…, however many environments inherit it.
  it('lists a top-level policy mistake once, however many environments inherit it', () => {
    expect(
      problemsOf((raw) => {
        raw.release = { ...raw.release, afterRelease: 'delete' };
      }),
    ).toHaveLength(1);
  });

  // The soak/steps count check reports where the user wrote them: here the top level, once.
  it('reports a soak count mistake at release.soak when that is where it was written', () => {
    const problems = problemsOf((raw) => {
      raw.release = { ...raw.release, soak: ['1h', '1h'] };
    });
    expect(problems).toEqual(['release.soak: needs one soak per traffic step (3 steps, 2 soaks)']);
  });

  it('blames a top-level healthCheck mistake on release, not on an environment overriding another key', () => {
    const problems = problemsOf((raw) => {
      raw.release = { ...raw.release, healthCheck: { attempts: 2, interval: 'soon', timeout: '1s' } };
      raw.environments.staging.release = { healthCheck: { attempts: 5 } };
    });
    expect(problems.filter((p) => p.startsWith('environments.'))).toEqual([]);
  });

  // Policy issues are re-raised with their own code, so formatIssues words them like every other
  // key: 'unknown key "attemps" (check the spelling …)', not zod's 'Unrecognized key: "attemps"'.
  it('words an unknown healthCheck key in an environment like every other unknown key', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.staging.release = { healthCheck: { attemps: 2 } };
      }),
    ).toEqual([
      'environments.staging.release.healthCheck: unknown key "attemps" (check the spelling against docs/configuration.md)',
    ]);
  });

  it('words a wrong top-level value like any other key, with what it got', () => {
    expect(
      problemsOf((raw) => {
        raw.release = { ...raw.release, afterRelease: 'delete' };
      }),
    ).toEqual(['release.afterRelease: Invalid option: expected one of "keep"|"scale-down", got "delete"']);
  });

  it('blames each unknown healthCheck key on the level that wrote it, once', () => {
    const problems = problemsOf((raw) => {
      raw.release = { ...raw.release, healthCheck: { attemps: 2, timeout: '1s' } };
      raw.environments.staging.release = { healthCheck: { attempts: 5, intervl: '1s' } };
    });
    expect(problems).toEqual([
      'environments.staging.release.healthCheck: unknown key "intervl" (check the spelling against docs/configuration.md)',
      'release.healthCheck: unknown key "attemps" (check the spelling against docs/configuration.md)',
    ]);
  });

  it('reports a soak count mistake at the environment when it wrote steps or soak itself', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.staging.release = { steps: [50, 100] };
      }),
    ).toEqual(['environments.staging.release.soak: needs one soak per traffic step (2 steps, 3 soaks)']);
    // Staging's own steps fit the top-level soaks; production inherits a mismatch written at the top.
    expect(
      problemsOf((raw) => {
        raw.release = { ...raw.release, soak: ['1h', '1h'] };
        raw.environments.staging.release = { steps: [50, 100] };
      }),
    ).toEqual(['release.soak: needs one soak per traffic step (3 steps, 2 soaks)']);
  });
});

describe('writtenInEnvironment', () => {
  it('is true for a key the environment’s release block has, replaced whole by mergePolicy', () => {
    expect(writtenInEnvironment({ steps: [50, 100] }, ['steps'])).toBe(true);
    expect(writtenInEnvironment({ soak: ['1m', 'x'] }, ['soak', 1])).toBe(true);
    expect(writtenInEnvironment({ gates: [{ name: 'g' }] }, ['gates', 3, 'query'])).toBe(true);
    expect(writtenInEnvironment({ steps: [50, 100] }, ['soak'])).toBe(false);
    expect(writtenInEnvironment({}, ['steps'])).toBe(false);
    expect(writtenInEnvironment(undefined, ['steps'])).toBe(false);
  });

  it('counts a healthCheck value as the environment’s only if it wrote that healthCheck key', () => {
    const env = { healthCheck: { attempts: 5 } };
    expect(writtenInEnvironment(env, ['healthCheck', 'attempts'])).toBe(true);
    expect(writtenInEnvironment(env, ['healthCheck', 'interval'])).toBe(false);
    expect(writtenInEnvironment(env, ['healthCheck'])).toBe(true);
    expect(writtenInEnvironment({ steps: [100] }, ['healthCheck', 'attempts'])).toBe(false);
  });

  it('does not take a key inherited from Object.prototype for one the environment wrote', () => {
    expect(writtenInEnvironment({}, ['constructor'])).toBe(false);
    expect(writtenInEnvironment({ healthCheck: {} }, ['healthCheck', 'toString'])).toBe(false);
  });
});

describe('other cross-key rules', () => {
  it('needs statusListen and IPv4 addresses with the lua driver', () => {
    expect(
      problemsOf((raw) => {
        raw.nginx = { ...raw.nginx, driver: 'lua' };
      }),
    ).toEqual(['nginx.statusListen: is required with driver: lua (flightdeck sets the weights through it)']);
    const problems = problemsOf((raw) => {
      raw.nginx = { ...raw.nginx, driver: 'lua', statusListen: '127.0.0.1:18089' };
      raw.environments.staging.services.api = {
        ...raw.environments.staging.services.api,
        blue: { swarmService: 'a-blue', address: 'api-blue:8001' },
      };
    });
    expect(problems).toEqual([
      'environments.staging.services.api.blue.address: must be an IPv4 address and port (e.g. 10.0.0.12:8001) with nginx.driver: lua',
    ]);
  });

  it('needs two different Swarm services for blue and green', () => {
    expect(
      problemsOf((raw) => {
        const api = raw.environments.staging.services.api;
        api.green.swarmService = api.blue.swarmService;
      }),
    ).toEqual([
      'environments.staging.services.api.green.swarmService: must differ from blue.swarmService (blue and green are two Swarm services)',
    ]);
  });

  it('needs at least one environment, and a service in each', () => {
    expect(
      problemsOf((raw) => {
        raw.environments = {};
        delete raw.defaultEnvironment;
      }),
    ).toEqual(['environments: needs at least one environment']);
    expect(
      problemsOf((raw) => {
        raw.environments.staging.services = {};
      }),
    ).toEqual(['environments.staging.services: needs at least one service']);
  });

  it('refuses a service name that is not lower-case with dashes', () => {
    expect(
      problemsOf((raw) => {
        const staging = raw.environments.staging;
        staging.services = { Api_V2: staging.services.api };
      }),
    ).toEqual([
      expect.stringMatching(/^environments\.staging\.services\.Api_V2: "Api_V2" is not a valid name/),
    ]);
  });

  it('checks alert routes and escalation targets', () => {
    const problems = problemsOf((raw) => {
      raw.alerts = {
        routes: [{ match: {}, channel: 'C0ONCALL' }],
        escalation: { notify: ['@oncall'] },
      };
    });
    expect(problems).toEqual([
      'alerts.routes.0.match: needs a label',
      'alerts.escalation.notify.0: must be a Slack user (U…) or user group (S…) ID, got "@oncall"',
    ]);
  });
});

describe('mergePolicy and releasePolicy', () => {
  it('starts from the seed’s defaults: 10/50/100 soaking 5, 10 and 5 minutes', () => {
    const p = releasePolicy(
      unitConfig((raw) => {
        delete raw.release;
      }),
      'staging',
    );
    expect(p).toMatchObject({
      steps: [10, 50, 100],
      soak: [300_000, 600_000, 300_000],
      convergeTimeout: 300_000,
      pollInterval: 2_000,
      healthCheck: { attempts: 3, interval: 2_000, timeout: 2_000 },
      smoke: [],
      gates: [],
      afterRelease: 'keep',
      parallel: true,
      approvalTimeout: 3_600_000,
      maxStepRetries: 3,
    });
  });

  it('lets the environment override the top level, key by key', () => {
    const merged = mergePolicy(
      { steps: [10, 100], soak: ['1m', '1m'], afterRelease: 'scale-down' },
      { soak: ['5s', '5s'] },
    );
    expect(merged).toMatchObject({
      steps: [10, 100],
      soak: ['5s', '5s'],
      afterRelease: 'scale-down',
      parallel: true,
    });
  });

  it('merges healthCheck field by field over both levels and the defaults', () => {
    const merged = mergePolicy({ healthCheck: { attempts: 5 } }, { healthCheck: { timeout: '9s' } });
    expect(merged.healthCheck).toEqual({ attempts: 5, interval: '2s', timeout: '9s' });
  });

  it('replaces lists (gates, smoke) instead of appending to them', () => {
    const merged = mergePolicy({ smoke: [{ path: '/a' }, { path: '/b' }] }, { smoke: [{ path: '/c' }] });
    expect(merged.smoke).toEqual([{ path: '/c' }]);
  });

  it('does not change the defaults it starts from', () => {
    mergePolicy({ healthCheck: { attempts: 9 } }, undefined);
    expect(DEFAULT_RELEASE_POLICY.healthCheck.attempts).toBe(3);
  });

  it('gives each environment its own effective policy, in milliseconds', () => {
    const config = unitConfig((raw) => {
      raw.environments.production.release = {
        soak: ['30m', '1h', '2h'],
        healthCheck: { attempts: 4 },
      };
    });
    expect(releasePolicy(config, 'production')).toMatchObject({
      soak: [1_800_000, 3_600_000, 7_200_000],
      healthCheck: { attempts: 4, interval: 300, timeout: 1_000 },
    });
    expect(releasePolicy(config, 'staging')).toMatchObject({
      soak: [3_600_000, 3_600_000, 3_600_000],
      healthCheck: { attempts: 2 },
    });
  });
});

describe('Duration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    [' 2m ', 120_000],
    [250, 250],
  ])('%j is %i ms', (input, ms) => {
    expect(Duration.parse(input)).toBe(ms);
  });

  it.each(['5', '5 m', '1w', 'm5', '-1s', ''])('refuses %j', (input) => {
    const r = Duration.safeParse(input);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('must be a duration like 500ms, 30s, 5m, 1h or 2d');
  });
});

describe('pipeline, promotion and freezes', () => {
  it('accepts a pipeline with a promotion rule and freezes of every kind', () => {
    expect(
      problemsOf((raw) => {
        const r = raw as Record<string, unknown>;
        r.pipeline = ['staging', 'production'];
        raw.environments.production.promotion = { minTimeLive: '2d', noCriticalAlerts: true };
        r.freezes = [
          { name: 'Fridays', days: ['fri'], from: '15:00', until: '24:00', environments: ['production'] },
          { name: 'Weekend', weekly: { from: 'fri 18:00', until: 'mon 08:00' } },
          { name: 'Holidays', from: '2026-12-21', until: '2027-01-04 09:00' },
        ];
      }),
    ).toEqual([]);
  });

  it('names the key of an unknown stage, a cycle, a rule without a stage before, an unknown frozen environment', () => {
    expect(
      problemsOf((raw) => {
        const r = raw as Record<string, unknown>;
        r.pipeline = ['staging', 'qa', 'production', 'staging'];
        raw.environments.staging.promotion = { minTimeLive: '1h' };
        r.freezes = [{ name: 'Nowhere', days: ['fri'], from: '15:00', until: '18:00', environments: ['qa'] }];
      }),
    ).toEqual([
      'pipeline.1: names an environment that is not defined (defined: staging, production)',
      'pipeline.3: staging is already stage 1: a pipeline that comes back to an environment is a cycle',
      "environments.staging.promotion: staging is the pipeline's first stage: there is no environment before it to promote from",
      'freezes.0.environments.0: names an environment that is not defined (defined: staging, production)',
    ]);
  });

  it('asks for a post-deployment checklist only where releases get one', () => {
    expect(
      problemsOf((raw) => {
        const r = raw as Record<string, unknown>;
        r.pipeline = ['staging', 'production'];
        raw.environments.production.promotion = { postChecklist: true };
      }),
    ).toEqual([
      'environments.production.promotion.postChecklist: needs staging in checklists.gateEnvironments: only releases there get a post-deployment checklist',
    ]);
  });

  it('names the key of a freeze that ends before it starts or has a bad day', () => {
    expect(
      problemsOf((raw) => {
        (raw as Record<string, unknown>).freezes = [
          { name: 'Backwards', from: '2026-12-21 18:00', until: '2026-12-21 09:00' },
          { name: 'Bad day', weekly: { from: 'caturday 15:00', until: 'mon 08:00' } },
        ];
      }),
    ).toEqual([
      'freezes.0.until: ends (2026-12-21 09:00) before it starts (2026-12-21 18:00)',
      'freezes.1.weekly.from: "caturday 15:00" is not a day and time like "fri 15:00"',
    ]);
  });
});
