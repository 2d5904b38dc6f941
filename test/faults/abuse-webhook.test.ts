import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/ports.js';
import { TestStack } from '../helpers/stack.js';
import { jobTotal, postAborted, postRaw } from './helpers/abuse-requests.js';
import { generateWebhookCases, validNotification, type WebhookCase } from './helpers/abuse-webhook.js';

const SEED = Number(process.env.FDABUSE_SEED ?? 7_071_969);
const COUNT = 500;
const CONCURRENCY = 8;
const TOKEN = 'abuse-webhook-token-5f1e0c';

const stack = new TestStack({ prefix: 'fdabuse', basePort: 29900 });
let alerts: Queue;
beforeAll(async () => {
  await stack.start({ env: { ALERTMANAGER_WEBHOOK_TOKEN: TOKEN } });
  alerts = new Queue('alerts', { connection: stack.redis.client(), prefix: stack.prefix });
});
afterAll(async () => {
  await alerts?.close();
  await stack.stop();
});

describe('the Alertmanager webhook, fuzzed', () => {
  it('answers every malformed, oversized, deep or unauthorised body with a 4xx, queues nothing and stays up', async () => {
    const url = `${stack.apps[0]?.url}/alerts/alertmanager`;
    const cases = generateWebhookCases(SEED, COUNT, TOKEN);
    const headersFor = (c: WebhookCase) => {
      const h: Record<string, string> = { 'content-type': c.contentType ?? 'application/json' };
      if (c.authorization === undefined) h.authorization = `Bearer ${TOKEN}`;
      else if (c.authorization !== null) h.authorization = c.authorization;
      return h;
    };

    const failures: string[] = [];
    const byStatus = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < cases.length; i = next++) {
          const c = cases[i] as WebhookCase;
          const res = await postRaw(url, c.body, headersFor(c)).catch((err: Error) => ({
            status: 0,
            body: err.message,
          }));
          byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
          let error: unknown;
          try {
            error = JSON.parse(res.body).error;
          } catch {
            error = undefined;
          }
          if (res.status !== c.expect || typeof error !== 'string' || error.length === 0)
            failures.push(
              `#${i} ${c.kind}: ${res.status} ${res.body.slice(0, 160)} (expected ${c.expect} with a reason)`,
            );
        }
      }),
    );
    // Clients that hang up mid-upload must not take anything down either.
    await Promise.all(
      Array.from({ length: 20 }, () =>
        postAborted(url, { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, 50_000),
      ),
    );

    const queuedByFuzz = await jobTotal(alerts, 'webhook');
    const posted = stack.emulator.channelMessages('C0ALERTS').length;
    const health = await fetch(`${stack.apps[0]?.url}/healthz`);

    // Unharmed: the same endpoint still takes a real notification and the alert reaches Slack.
    const ok = await postRaw(url, JSON.stringify(validNotification('f00dfacecafe')), {
      'content-type': 'application/json',
      authorization: `Bearer ${TOKEN}`,
    });
    await waitFor(
      () => stack.emulator.channelMessages('C0ALERTS').some((m) => /HighErrorRate/.test(m.text)),
      {
        timeoutMs: 30_000,
        what: 'the valid alert in #alerts',
      },
    );

    const refused = cases.length - failures.length;
    console.log(
      `ABUSE alert webhook: seed ${SEED}, bodies tried ${cases.length}, refused with 4xx ${refused}` +
        ` (${[...byStatus]
          .sort(([a], [b]) => a - b)
          .map(([s, n]) => `${s}: ${n}`)
          .join(', ')}),` +
        ` aborted uploads 20, queued ${queuedByFuzz}, alert messages from them ${posted};` +
        ` afterwards /healthz ${health.status}, a valid notification ${ok.status}`,
    );
    expect(failures.slice(0, 25), `${failures.length} failures (seed ${SEED})`).toEqual([]);
    expect(queuedByFuzz).toBe(0);
    expect(posted).toBe(0);
    expect(health.status).toBe(200);
    expect(ok).toEqual({ status: 200, body: JSON.stringify({ queued: 1 }) });
  }, 300_000);
});
