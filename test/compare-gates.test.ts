import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Release } from '../src/releases/schema.js';
import { blocksError } from '../tools/slack-emulator/block-kit.js';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { waitFor } from './helpers/ports.js';
import { TestPrometheus } from './helpers/prometheus-server.js';
import { releaseIds, soakingAt, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait } from './helpers/swarm.js';

/**
 * Compare gates end to end: a real flightdeck process releasing real Swarm services through nginx,
 * gated by a real Prometheus scraping one metrics backend per colour that this test controls (request
 * and error counters, a latency histogram), so each colour can be made worse on purpose.
 */
const BASE = 35100;
const stack = new TestStack({ prefix: 'fdcmp', basePort: BASE });
const prom = new TestPrometheus();
const names: string[] = [];
const qa = {
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: 'fdcmp-qa-api-blue', address: `127.0.0.1:${BASE + 201}` },
  green: { swarmService: 'fdcmp-qa-api-green', address: `127.0.0.1:${BASE + 202}` },
};
const WINDOW_S = 20;
const sel = 'colour="{{colour}}",service="{{service}}",environment="{{environment}}"';

// ---- one metrics backend per colour: counters advanced by a ticker at a rate and shape we set ----
const LE = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
interface Profile {
  /** Requests per second. */
  rate: number;
  errorRatio: number;
  /** Latencies are exponential with this mean (seconds). */
  meanLatency: number;
}
class Backend {
  requests = 0;
  errors = 0;
  buckets = LE.map(() => 0);
  profile: Profile = { rate: 100, errorRatio: 0.005, meanLatency: 0.06 };
  server!: Server;
  tick(dt: number) {
    const n = this.profile.rate * dt;
    this.requests += n;
    this.errors += n * this.profile.errorRatio;
    // Deterministic: each bucket gets exactly its share of the exponential CDF.
    LE.forEach((le, i) => {
      this.buckets[i] = (this.buckets[i] as number) + n * (1 - Math.exp(-le / this.profile.meanLatency));
    });
  }
  text(): string {
    const lines = [
      '# TYPE app_requests_total counter',
      `app_requests_total{code="200"} ${this.requests - this.errors}`,
      `app_requests_total{code="500"} ${this.errors}`,
      '# TYPE app_latency_seconds histogram',
      ...LE.map((le, i) => `app_latency_seconds_bucket{le="${le}"} ${this.buckets[i]}`),
      `app_latency_seconds_bucket{le="+Inf"} ${this.requests}`,
      `app_latency_seconds_count ${this.requests}`,
    ];
    return `${lines.join('\n')}\n`;
  }
  async start(): Promise<string> {
    this.server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(this.text());
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
}
const backends = { blue: new Backend(), green: new Backend() };
let ticker: NodeJS.Timeout | undefined;

beforeAll(async () => {
  const targets = await Promise.all(
    (['blue', 'green'] as const).map(async (colour) => ({
      address: await backends[colour].start(),
      labels: { environment: 'qa', service: 'api', colour },
    })),
  );
  let last = Date.now();
  ticker = setInterval(() => {
    const now = Date.now();
    for (const b of Object.values(backends)) b.tick((now - last) / 1000);
    last = now;
  }, 100);
  await prom.start(targets);
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, { prometheus: { url: prom.url }, checklists: { gateEnvironments: [] } });
      cfg.environments.qa = {
        deployers: ['*'],
        services: { api: qa },
        release: {
          steps: [50, 100],
          soak: ['1h', '1h'],
          gates: [
            {
              name: 'error rate',
              compare: 'errors',
              requests: `sum(increase(app_requests_total{${sel}}[{{window}}]))`,
              errors: `sum(increase(app_requests_total{code="500",${sel}}[{{window}}]))`,
              window: `${WINDOW_S}s`,
              minRequests: 200,
              maxExtension: '12s',
            },
            {
              name: 'p95 latency',
              compare: 'latency',
              buckets: `sum by (le) (increase(app_latency_seconds_bucket{${sel}}[{{window}}]))`,
              window: `${WINDOW_S}s`,
              minRequests: 200,
              maxExtension: '12s',
            },
            {
              // The absolute gate the worse canary stays under.
              name: 'error rate (absolute)',
              query: `sum(increase(app_requests_total{code="500",${sel}}[${WINDOW_S}s])) / sum(increase(app_requests_total{${sel}}[${WINDOW_S}s]))`,
              max: 0.05,
            },
          ],
        },
      };
    },
  });
  names.push(...(await createColourServices([qa])));
}, 240_000);

afterAll(async () => {
  if (ticker) clearInterval(ticker);
  await stack.stop();
  await prom.destroy();
  for (const b of Object.values(backends)) b.server?.close();
  await removeServicesAndWait(names);
});

async function command(cmd: string, text: string, re: RegExp, user = 'U0DEV'): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.command(cmd, text, { user });
  return stack.answerTo(user, seen, re);
}

/**
 * Starts a release, gives its canary and stable colours their profiles, waits until the gate's
 * window holds only those, and promotes: the gate at 50% judges exactly what was set.
 */
async function releaseWith(version: string, canary: Partial<Profile>, stable: Partial<Profile> = {}) {
  const [id] = releaseIds(await command('/deploy', `api ${version} to qa`, /rel-|Not done/));
  if (!id) throw new Error('no release started');
  const r = await waitRelease(stack, id, soakingAt(50), 'soaking at 50%');
  const base: Profile = { rate: 100, errorRatio: 0.005, meanLatency: 0.06 };
  backends[r.toColour].profile = { ...base, ...canary };
  backends[r.fromColour].profile = { ...base, ...stable };
  await new Promise((res) => setTimeout(res, (WINDOW_S + 4) * 1000));
  await command('/deploy', 'promote api in qa', /Promoted/);
  return { id, canary: r.toColour, stable: r.fromColour };
}

const gateAt = (r: Release, percent: number) => r.gateHistory?.find((h) => h.percent === percent);
function show(r: Release, percent = 50) {
  for (const g of gateAt(r, percent)?.results ?? [])
    console.log(
      `${r.id} gate@${percent} ${g.name}: canary ${g.value} stable ${g.stable ?? '-'} n=${JSON.stringify(g.samples ?? {})} p=${g.pValue ?? '-'} → ${g.verdict}`,
    );
}

/** The release's thread replies holding charts, as the emulator stored (so accepted) them. */
function chartReplies(r: Release) {
  if (!r.message) return [];
  return stack.emulator
    .threadReplies(r.message.channel, r.message.ts)
    .filter((m) => (m.blocks ?? []).some((b) => (b as { type?: string }).type === 'data_visualization'));
}

describe('compare gates against a real Prometheus', () => {
  it('passes an equal canary, explains every gate, and charts it in the thread', async () => {
    const { id } = await releaseWith('1.1.0', {});
    const atHundred = await waitRelease(stack, id, soakingAt(100), 'soaking at 100% after the gate passed');
    show(atHundred);
    const g = gateAt(atHundred, 50);
    expect(g?.results.find((x) => x.name === 'error rate')?.verdict).toBe('pass');
    expect(g?.results.find((x) => x.name === 'p95 latency')?.verdict).toBe('pass');
    await command('/deploy', 'promote api in qa', /Promoted/);
    const done = await waitRelease(stack, id, (r) => r.status === 'completed', 'completed');
    show(done, 100);
    const text = await waitProgress(stack, id, /✅ Released/);
    expect(text).toMatch(
      /\*Gate at 50%\*\n✓ health of green: 1 \(= 1\) → pass\n✓ error rate: green 0\.\d+% of [\d,]+ vs blue 0\.\d+% of [\d,]+ · p=/,
    );
    expect(text).toContain('*Gate at 100%*');
    // At 100% the stable colour serves nothing: the compare gates are not judged there.
    expect(gateAt(done, 100)?.results.find((x) => x.name === 'error rate')?.verdict).toBe('skipped');
    const replies = await waitFor(() => (chartReplies(done).length > 0 ? chartReplies(done) : undefined), {
      what: 'a chart in the release thread',
    });
    const chart = replies[0];
    expect(blocksError(chart?.blocks ?? [])).toBeUndefined();
    const blocks = (chart?.blocks ?? []) as Array<Record<string, any>>;
    const viz = blocks.filter((b) => b.type === 'data_visualization');
    expect(viz.length).toBeLessThanOrEqual(2);
    expect(viz[0]?.title).toBe('error rate per step (%)');
    expect(viz[0]?.chart.series.map((s: { name: string }) => s.name)).toEqual([
      'green (canary)',
      'blue (stable)',
    ]);
    // The text fallback: the message's text and a section under the charts.
    expect(chart?.text).toMatch(/📊 Gates per step.*\n\*Gate at 50%\*/s);
    console.log(renderBlocks(chart?.blocks, chart?.text));
  }, 240_000);

  it('rolls back a canary significantly worse than stable while it is under the absolute threshold', async () => {
    const { id, canary } = await releaseWith('1.2.0', { errorRatio: 0.03 });
    const done = await waitRelease(stack, id, (r) => r.status === 'rolled_back', 'rolled back');
    show(done);
    const results = gateAt(done, 50)?.results ?? [];
    const cmp = results.find((x) => x.name === 'error rate');
    expect(cmp?.verdict).toBe('fail');
    expect(cmp?.pValue).toBeLessThan(0.05);
    expect(cmp?.value).toBeCloseTo(0.03, 2);
    // The absolute gate alone would have let it through.
    expect(results.find((x) => x.name === 'error rate (absolute)')?.ok).toBe(true);
    expect(done.outcome).toMatch(/gate failed: ✗ error rate 3\.\d+% vs stable 0\.\d+% \(fail/);
    const text = await waitProgress(stack, id, /↩️ Rolled back/);
    expect(text).toMatch(new RegExp(`✗ error rate: ${canary} 3\\.\\d+% of [\\d,]+ vs`));
    await waitFor(() => (chartReplies(done).length > 0 ? true : undefined), {
      what: 'the chart of a failed gate',
    });
  }, 240_000);

  it('rolls back a latency regression of the canary’s distribution', async () => {
    const { id } = await releaseWith('1.2.0', { meanLatency: 0.12 });
    const done = await waitRelease(stack, id, (r) => r.status === 'rolled_back', 'rolled back');
    show(done);
    const lat = gateAt(done, 50)?.results.find((x) => x.name === 'p95 latency');
    expect(lat?.verdict).toBe('fail');
    expect((lat?.value ?? 0) / (lat?.stable ?? 1)).toBeGreaterThan(1.2);
    expect(gateAt(done, 50)?.results.find((x) => x.name === 'error rate')?.verdict).toBe('pass');
  }, 240_000);

  it('passes noise within the tolerance and margin', async () => {
    // 0.55% vs 0.5% errors and a 5% slower mean: both within what the gates allow.
    const { id } = await releaseWith('1.2.0', { errorRatio: 0.0055, meanLatency: 0.063 });
    const r = await waitRelease(stack, id, soakingAt(100), 'past the gate at 50%');
    show(r);
    for (const g of gateAt(r, 50)?.results ?? []) expect(g.verdict).toBe('pass');
    await command('/deploy', 'promote api in qa', /Promoted/);
    await waitRelease(stack, id, (x) => x.status === 'completed', 'completed');
  }, 240_000);

  it('pauses on a marginal canary, and Resume accepts the verdict', async () => {
    // 0.85% vs 0.5% on about 2,000 requests each: beyond the margin, p ≈ 0.09 (between 0.05 and 0.2).
    const { id } = await releaseWith('2.0.0', { errorRatio: 0.0085 });
    const paused = await waitRelease(stack, id, (r) => r.status === 'paused', 'paused by the marginal gate');
    show(paused);
    expect(gateAt(paused, 50)?.results.find((g) => g.name === 'error rate')?.verdict).toBe('marginal');
    await waitProgress(stack, id, /⏸️ Paused[\s\S]*⚠️ Marginal gate at 50%[\s\S]*\[Resume\]/);
    const r = await waitRelease(stack, id, (x) => !!x.message, 'a message');
    const msg = stack.emulator.messages.find(
      (m) => m.channel === r.message?.channel && m.ts === r.message?.ts,
    );
    if (!msg) throw new Error('no release message');
    await stack.driver.click(msg, { action_id: 'release_resume', value: id }, { user: 'U0DEV' });
    const on = await waitRelease(stack, id, soakingAt(100), 'past the gate once resumed');
    expect(
      on.gateHistory?.find((h) => h.percent === 50)?.results.find((g) => g.name === 'error rate'),
    ).toMatchObject({
      verdict: 'marginal',
      accepted: true,
    });
    await command('/deploy', 'promote api in qa', /Promoted/);
    await waitRelease(stack, id, (x) => x.status === 'completed', 'completed');
  }, 240_000);

  it('extends the soak while the canary has too few requests, then counts it as no data', async () => {
    const { id } = await releaseWith('1.1.0', { rate: 2 });
    const waiting = await waitRelease(
      stack,
      id,
      (r) => r.steps[r.stepIndex]?.kind === 'gate' && r.steps[r.stepIndex]?.status === 'waiting',
      'the gate waiting for requests',
    );
    const step = waiting.steps[waiting.stepIndex];
    console.log(`${id}: ${step?.detail}`);
    expect(step?.detail).toMatch(
      /too few requests to judge error rate \((green|blue) \d+, (green|blue) \d+\)/,
    );
    expect(waiting.gateResults.find((g) => g.name === 'error rate')?.verdict).toBe('waiting');
    await waitProgress(stack, id, /⏳ Gate at 50% — too few requests/);
    const done = await waitRelease(
      stack,
      id,
      (r) => r.status === 'rolled_back',
      'rolled back after maxExtension',
    );
    show(done);
    expect(gateAt(done, 50)?.results.find((g) => g.name === 'error rate')?.verdict).toBe('noData');
    expect(done.outcome).toMatch(/noData/);
  }, 240_000);
});
