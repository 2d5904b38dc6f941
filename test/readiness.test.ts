import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/ports.js';
import { TestStack } from './helpers/stack.js';

const stack = new TestStack();
beforeAll(async () => {
  await stack.start();
});
afterAll(async () => {
  await stack.stop();
});

async function readyz() {
  const res = await fetch(`${stack.apps[0]?.url}/readyz`);
  return {
    status: res.status,
    body: (await res.json()) as { ready: boolean; failing: string[]; checks: Record<string, string> },
  };
}

describe('/healthz and /readyz', () => {
  it('is alive and ready with Redis, Docker and nginx up', async () => {
    expect((await fetch(`${stack.apps[0]?.url}/healthz`)).status).toBe(200);
    const r = await readyz();
    expect(r.status).toBe(200);
    expect(r.body.checks).toEqual({ redis: 'ok', docker: 'ok', nginx: 'ok' });
  });

  it('turns 503 naming Redis while Redis is stopped, answers commands with "try again", and recovers', async () => {
    await stack.redis.stop();
    const down = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    expect(down.body.failing).toEqual(['redis']);
    expect(down.body.checks.redis).not.toBe('ok');
    expect((await fetch(`${stack.apps[0]?.url}/healthz`)).status).toBe(200);

    const sent = await stack.driver.command('/deploy', 'api 1.0.0');
    expect(sent.status).toBe(200);
    expect(sent.timedOut).toBe(false);
    // Answered in the ack itself: the connection knows Redis is gone.
    expect(sent.body?.text).toMatch(/could not queue.*Nothing was started — please try again/);

    await stack.redis.start();
    const up = await waitFor(
      async () => {
        const r = await readyz();
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(up.body.failing).toEqual([]);
    // And commands flow again.
    const again = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.0.0');
    expect(await stack.answerTo('U0DEV', again, /releasing api 1\.0\.0 to staging/)).toContain(
      'rel-staging-api-',
    );
  });

  it('names nginx when its probe does not answer', async () => {
    stack.nginx.stop();
    const down = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    expect(down.body.failing).toEqual(['nginx']);
  });
});
