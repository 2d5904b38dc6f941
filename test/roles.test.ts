import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/ports.js';
import { TestStack } from './helpers/stack.js';

const stack = new TestStack();
beforeAll(async () => {
  await stack.start({ roles: ['web', 'worker'] });
});
afterAll(async () => {
  await stack.stop();
});

describe('web and worker roles on one Redis', () => {
  it('a command accepted by the web process is done by the worker process', async () => {
    const [web, worker] = stack.apps;
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const sent = await stack.driver.command('/traffic', 'status staging');
    expect(sent.body?.text).toContain('on it');
    await stack.answerTo('U0DEV', seen, /\*staging\*/);
    const done = await waitFor(async () =>
      (await stack.auditFor('status staging')).find((e) => e.outcome === 'done'),
    );
    expect(done.detail).toContain(`worker ${worker?.pid}`);
    expect(done.detail).not.toContain(`worker ${web?.pid}`);
  });

  it('the worker-only process serves health and metrics but not Slack', async () => {
    const worker = stack.apps[1];
    expect((await fetch(`${worker?.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${worker?.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${worker?.url}/metrics`)).text();
    expect(metrics).toMatch(/flightdeck_jobs_total\{queue="commands",result="completed"\} [1-9]/);
    const slack = await fetch(`${worker?.url}/slack/events`, { method: 'POST', body: 'x' });
    expect(slack.status).toBe(404);
  });

  it('a job queued while no worker runs is done once a worker starts', async () => {
    await stack.apps[1]?.stop();
    const seen = stack.emulator.ephemeralsFor('U0LEAD').length;
    await stack.driver.command('/traffic', 'web 30 blue', { user: 'U0LEAD' });
    await waitFor(async () => (await stack.queue.getWaitingCount()) === 1, { what: 'a waiting job' });
    await stack.apps[1]?.start();
    expect(await stack.answerTo('U0LEAD', seen, /Not done/)).toMatch(
      /unhealthy colour: http:\/\/127\.0\.0\.1:28011\/health/,
    );
  });
});
