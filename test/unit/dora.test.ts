import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError } from '../../src/commands/parse-command.js';
import { renderHome } from '../../src/home/render-home.js';
import {
  computeDora,
  type DoraEvent,
  doraFigures,
  doraLine,
  doraSamples,
  mergeSamples,
} from '../../src/releases/dora.js';
import { unitConfig } from './helpers.js';

const H = 3_600_000;
const D = 24 * H;
const TO = Date.parse('2026-12-01T00:00:00Z');
/** Day `n` before the end of the window, at `h` hours. */
const day = (n: number, h = 0) => TO - n * D + h * H;
const WINDOW = { from: TO - 30 * D, to: TO, failureWindowMs: 24 * H };

const deploy = (
  id: string,
  requestedAt: number,
  at: number,
  imageCreatedAt?: number,
  version = id,
): DoraEvent => ({
  kind: 'deploy',
  id: `deploy:${id}`,
  at,
  releaseId: id,
  version,
  requestedAt,
  ...(imageCreatedAt === undefined ? {} : { imageCreatedAt }),
});

/** A scripted month of api in staging: six changes, three of which failed. */
const api: DoraEvent[] = [
  // Before the window: not counted.
  deploy('r0', day(40), day(40, 1)),
  // r1: a good release; image built 2 h before it completed.
  deploy('r1', day(20, 10), day(20, 10.5), day(20, 8.5)),
  // r2: completed, a critical alert 3 h later, /rollback 30 min after the alert: failed, restored in 30 min.
  deploy('r2', day(15, 9), day(15, 9 + 1 / 3), day(16, 9 + 1 / 3)),
  { kind: 'critical', id: 'critical:a:1', at: day(15, 12 + 1 / 3), name: 'HighErrorRate' },
  { kind: 'rollback', id: 'rollback:1', at: day(15, 12 + 5 / 6), version: 'r2', by: 'U0DEV' },
  // r3: rolled back by its gate during the rollout: failed, restored 45 s after the rollback began.
  {
    kind: 'failed',
    id: 'failed:r3',
    at: day(10, 9) + 10 * 60_000 + 45_000,
    releaseId: 'r3',
    version: 'r3',
    requestedAt: day(10, 9),
    failedAt: day(10, 9) + 10 * 60_000,
  },
  // r4: no image time; /rollback 23 h after it went live (no alert): failed, down since it went live.
  deploy('r4', day(5, 9), day(5, 9.5)),
  { kind: 'rollback', id: 'rollback:2', at: day(4, 8.5), version: 'r4', by: 'U0DEV' },
  // r5: good; a critical alert after r6 was requested belongs to neither.
  deploy('r5', day(4, 10), day(4, 10 + 1 / 3), day(4, 10)),
  deploy('r6', day(4, 11), day(4, 11.5)),
  { kind: 'critical', id: 'critical:b:1', at: day(4, 11 + 1 / 6), name: 'ServiceDown' },
  // Two days after r6: outside its 24 h failure window.
  { kind: 'critical', id: 'critical:c:1', at: day(2), name: 'ContainerHighMemory' },
];

/** web: one release written twice (a re-run hook), and a /rollback of another version. */
const web: DoraEvent[] = [
  deploy('w1', day(3, 9), day(3, 9.25)),
  deploy('w1', day(3, 9), day(3, 9.25)),
  { kind: 'rollback', id: 'rollback:3', at: day(3, 10), version: 'w0', by: 'U0LEAD' },
];

describe('DORA figures from a scripted history', () => {
  it('counts deploys, failed changes, time to restore and lead time per service', () => {
    const f = computeDora(api, WINDOW);
    console.log(`api: ${doraLine(f)}`);
    expect(f).toEqual({
      deployments: 5,
      perDay: 5 / 30,
      changes: 6,
      failures: 3,
      changeFailureRate: 0.5,
      // Samples 45 s, 30 min, 23 h: the median is 30 min.
      timeToRestoreMs: 30 * 60_000,
      restored: 3,
      // Samples 20 min (r5), 2 h (r1), 24 h (r2): the median is 2 h.
      leadTimeMs: 2 * H,
      leadTimeSamples: 3,
    });
    expect(doraLine(f)).toBe('5 deploys (0.17/day) · CFR 50% (3/6) · restore 30 min (3) · lead 2.0 h (3)');
    const w = computeDora(web, WINDOW);
    console.log(`web: ${doraLine(w)}`);
    expect(w).toEqual({
      deployments: 1,
      perDay: 1 / 30,
      changes: 1,
      failures: 0,
      changeFailureRate: 0,
      restored: 0,
      leadTimeSamples: 0,
    });
  });

  it('merges services into the environment figures', () => {
    const total = doraFigures(mergeSamples([doraSamples(api, WINDOW), doraSamples(web, WINDOW)], 30));
    console.log(`staging: ${doraLine(total)}`);
    expect(total).toMatchObject({
      deployments: 6,
      changes: 7,
      failures: 3,
      changeFailureRate: 3 / 7,
      timeToRestoreMs: 30 * 60_000,
      leadTimeMs: 2 * H,
    });
    expect(doraLine(total)).toBe(
      '6 deploys (0.20/day) · CFR 43% (3/7) · restore 30 min (3) · lead 2.0 h (3)',
    );
  });

  it('a shorter window counts only what ended in it; a failure not yet restored has no restore time', () => {
    const week = computeDora(api, { ...WINDOW, from: TO - 7 * D });
    expect(week).toMatchObject({ deployments: 3, changes: 3, failures: 1, restored: 1 });
    expect(week.timeToRestoreMs).toBe(23 * H);
    const open = computeDora(
      [deploy('x', day(1), day(1, 1)), { kind: 'critical', id: 'c', at: day(1, 2), name: 'ServiceDown' }],
      WINDOW,
    );
    expect(open).toMatchObject({ deployments: 1, failures: 1, restored: 0 });
    expect(open.timeToRestoreMs).toBeUndefined();
    // The next release restores it.
    const fixed = computeDora(
      [
        deploy('x', day(1), day(1, 1)),
        { kind: 'critical', id: 'c', at: day(1, 2), name: 'ServiceDown' },
        deploy('y', day(1, 3), day(1, 4)),
      ],
      WINDOW,
    );
    expect(fixed).toMatchObject({ deployments: 2, failures: 1, restored: 1, timeToRestoreMs: 2 * H });
    expect(computeDora([], WINDOW)).toEqual({
      deployments: 0,
      perDay: 0,
      changes: 0,
      failures: 0,
      restored: 0,
      leadTimeSamples: 0,
    });
  });
});

describe('/deploy stats grammar', () => {
  const config = unitConfig();
  const parse = (text: string) => parseCommand('deploy', text, config);
  const envs = Object.keys(config.environments);
  const other = envs[envs.length - 1] as string;

  it('takes an optional environment and number of days, in either order', () => {
    expect(parse('stats')).toEqual({
      command: 'deploy',
      action: 'stats',
      environment: config.defaultEnvironment ?? envs[0],
      days: 30,
    });
    expect(parse(`stats ${other} 7`)).toMatchObject({ environment: other, days: 7 });
    expect(parse(`stats 365 ${other.toUpperCase()}`)).toMatchObject({ environment: other, days: 365 });
  });

  it('refuses bad days and unknown environments with a clear message', () => {
    for (const [text, re] of [
      ['stats abc', /Unknown environment `abc`.*\/deploy stats \[environment\] \[days\]/],
      ['stats 400', /`400` days: the window is 1 to 365 days/],
      ['stats 0', /the window is 1 to 365 days/],
      ['stats 1.5', /`1.5` is not a number of days/],
      ['stats -3', /`-3` is not a number of days/],
      [`stats ${other} 7 9`, /Too much after/],
      ['stats 7 7', /the window is 1 to 365 days/],
      [`stats ${other} ${other}`, /One environment at a time/],
      ['stats <!channel>', /Unknown environment `!channel`/],
    ] as const) {
      expect(() => parse(text), text).toThrow(UsageError);
      expect(() => parse(text), text).toThrow(re);
    }
  });
});

describe('App Home', () => {
  it('shows the DORA section when given, and nothing of it otherwise', () => {
    const base = { rolloutStatus: 'No rollout', inFlight: [], openAlerts: [], now: TO };
    const text = (v: ReturnType<typeof renderHome>) => JSON.stringify(v.blocks);
    expect(text(renderHome(base))).not.toContain('DORA');
    const home = renderHome({ ...base, dora: { days: 30, lines: ['*staging*: 6 deploys (0.20/day)'] } });
    expect(text(home)).toContain('*DORA, last 30 days*');
    expect(text(home)).toContain('*staging*: 6 deploys (0.20/day)');
  });
});
