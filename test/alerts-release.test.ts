import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { startWithAlertmanager, TestAlertmanager } from './helpers/alertmanager-server.js';
import { waitFor } from './helpers/ports.js';
import { measureSplit, releaseIds, soakingAt, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from './helpers/swarm.js';

const TOKEN = 'alertmanager-test-token-abcdefghijkl';
const am = new TestAlertmanager();
const stack = new TestStack({ prefix: 'fdalrel', basePort: 28900 });
const names: string[] = [];

beforeAll(async () => {
  await startWithAlertmanager(stack, am, {
    token: TOKEN,
    alerts: {
      defaultChannel: 'C0ALERTS',
      routes: [{ match: { severity: 'critical' }, channel: 'C0ONCALL' }],
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 180_000);

afterAll(async () => {
  await am.destroy();
  await stack.stop();
  await removeServicesAndWait(names);
});

describe('a critical alert about a service mid-release', () => {
  it('pauses the release, says so in both messages, and its Roll back button rolls the release back', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.1.0');
    const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
    await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');

    await am.post([
      {
        labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'api', environment: 'staging' },
        annotations: { summary: 'api answers 5xx', description: 'Error rate above 5% for 5 minutes.' },
      },
    ]);
    await waitRelease(stack, id as string, (r) => r.status === 'paused', 'paused by the alert');
    await waitProgress(stack, id as string, /⏸️ Paused by critical alert \*HighErrorRate\*/);
    const alertMsg = await waitFor(
      () => {
        const m = stack.emulator
          .channelMessages('C0ONCALL')
          .find((x) => renderBlocks(x.blocks, x.text).includes('HighErrorRate'));
        const text = m ? renderBlocks(m.blocks, m.text) : '';
        return m && text.includes(`⏸️ Paused release \`${id}\``) && text.includes('[Roll back api]')
          ? m
          : undefined;
      },
      { timeoutMs: 20_000, what: 'the alert message with the release note and a Roll back button' },
    );

    const fp = (await am.alerts()).find((a) => a.labels.alertname === 'HighErrorRate')?.fingerprint as string;
    await stack.driver.click(alertMsg, { action_id: 'alert_rollback', value: fp }, { user: 'U0DEV' });
    const r = await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'rolled back');
    expect(r.outcome).toMatch(/alert HighErrorRate, by <@U0DEV>/);
    expect((await measureSplit(`http://127.0.0.1:${stack.nginx.port}/staging/api/colour`, 30)).blue).toBe(30);

    const metrics = await (await fetch(`${stack.apps[0]?.url}/metrics`)).text();
    expect(metrics).toMatch(/flightdeck_alerts_received_total\{severity="critical",status="firing"\} [1-9]/);
    expect(metrics).toMatch(/flightdeck_rollbacks_total\{environment="staging",trigger="alert"\} 1/);
  }, 120_000);
});
