import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertStore } from '../src/alerts/alert-store.js';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { type AmAlert, startWithAlertmanager, TestAlertmanager } from './helpers/alertmanager-server.js';
import { waitFor } from './helpers/ports.js';
import { TestStack } from './helpers/stack.js';

const TOKEN = 'alertmanager-test-token-0123456789';
const am = new TestAlertmanager();
const stack = new TestStack({ prefix: 'fdalert', basePort: 28800 });
let alertQueue: Queue;

beforeAll(async () => {
  await startWithAlertmanager(stack, am, {
    token: TOKEN,
    alerts: {
      defaultChannel: 'C0ALERTS',
      routes: [{ match: { severity: 'critical' }, channel: 'C0ONCALL' }],
      escalation: { after: '2s', repeat: '2s', maxTimes: 2, notify: ['U0ONCALL', 'S0ONCALLS'] },
      summariseAbove: 20,
      reconcileEvery: '2s',
    },
  });
  alertQueue = new Queue('alerts', { connection: stack.redis.client(), prefix: stack.prefix });
}, 120_000);

afterAll(async () => {
  await alertQueue?.close();
  await am.destroy();
  await stack.stop();
});

const alert = (name: string, severity: string, extra: Record<string, string> = {}): AmAlert => ({
  labels: { alertname: name, severity, instance: 'web-1:9100', ...extra },
  annotations: { summary: `${name} on web-1`, description: `${name} has been bad for 5 minutes.` },
  generatorURL: 'http://prometheus.example/graph?g0.expr=up',
});

/** The one top-level message about an alert, found by its name. */
function messageAbout(channel: string, name: string) {
  return stack.emulator
    .channelMessages(channel)
    .find((m) => renderBlocks(m.blocks, m.text).includes(`· ${name}*`));
}

async function waitMessage(channel: string, name: string, re: RegExp = /./) {
  return waitFor(
    () => {
      const m = messageAbout(channel, name);
      return m && re.test(renderBlocks(m.blocks, m.text)) ? m : undefined;
    },
    { timeoutMs: 20_000, what: `a message about ${name} in ${channel} matching ${re}` },
  );
}

/** The storm id its Acknowledge all button carries. */
const groupIdOf = (m: { blocks?: unknown }) =>
  String(
    (JSON.stringify(m.blocks ?? []).match(/"action_id":"alert_group_ack","value":"([a-f0-9]+)"/) ?? [])[1] ??
      '',
  );

const fingerprintOf = async (name: string) =>
  waitFor(async () => (await am.alerts()).find((a) => a.labels.alertname === name)?.fingerprint, {
    what: `${name} in alertmanager`,
  });

describe('alerts from a real Alertmanager', () => {
  it('show up in the routed channels, with buttons', async () => {
    await am.post([alert('DiskFilling', 'warning'), alert('ServiceDown', 'critical')]);
    const warning = await waitMessage('C0ALERTS', 'DiskFilling');
    const critical = await waitMessage('C0ONCALL', 'ServiceDown');
    const text = renderBlocks(critical.blocks, critical.text);
    expect(text).toContain('🔴 CRITICAL · ServiceDown* — firing');
    expect(text).toContain('*ServiceDown on web-1*');
    expect(text).toContain('`instance=web-1:9100`');
    expect(text).toContain('<http://prometheus.example/graph?g0.expr=up|source>');
    expect(text).toContain('[Acknowledge] [Silence 1h] [Silence 4h] [Silence 24h]');
    expect(renderBlocks(warning.blocks, warning.text)).toContain('🟠 WARNING · DiskFilling');
    expect(messageAbout('C0ALERTS', 'ServiceDown')).toBeUndefined();
  });

  it('acknowledge through a signed click updates the message for everyone and records who and when', async () => {
    const msg = await waitMessage('C0ALERTS', 'DiskFilling');
    const fp = await fingerprintOf('DiskFilling');
    const click = await stack.driver.click(msg, { action_id: 'alert_ack', value: fp }, { user: 'U0ONCALL' });
    expect(click.status).toBe(200);
    const updated = await waitMessage(
      'C0ALERTS',
      'DiskFilling',
      /Acknowledged by <@U0ONCALL> at \d\d:\d\d UTC/,
    );
    expect(renderBlocks(updated.blocks, updated.text)).not.toContain('[Acknowledge]');
    const record = await new AlertStore(stack.client, stack.prefix).get(fp);
    expect(record?.ack?.by).toBe('U0ONCALL');
    expect(Math.abs((record?.ack?.at ?? 0) - Date.now())).toBeLessThan(30_000);
    const audit = await stack.audit.recent(50);
    expect(audit.some((e) => e.userId === 'U0ONCALL' && e.text.includes('alert_ack'))).toBe(true);
  });

  it('the Silence button creates the silence in Alertmanager with the alert’s labels as matchers', async () => {
    const msg = await waitMessage('C0ALERTS', 'DiskFilling');
    const fp = await fingerprintOf('DiskFilling');
    await stack.driver.click(msg, { action_id: 'alert_silence', value: `${fp}|4h` }, { user: 'U0ONCALL' });
    const silence = await waitFor(
      async () =>
        (await am.silences()).find((s) =>
          s.matchers.some((m) => m.name === 'alertname' && m.value === 'DiskFilling'),
        ),
      { what: 'the silence in alertmanager' },
    );
    expect(silence.status.state).toBe('active');
    expect(silence.createdBy).toBe('oncall (U0ONCALL) via flightdeck');
    expect(silence.comment).toContain('for 4h: DiskFilling on web-1');
    expect(silence.matchers).toEqual(
      expect.arrayContaining([
        { name: 'alertname', value: 'DiskFilling', isRegex: false, isEqual: true },
        { name: 'severity', value: 'warning', isRegex: false, isEqual: true },
        { name: 'instance', value: 'web-1:9100', isRegex: false, isEqual: true },
      ]),
    );
    const hours = (Date.parse(silence.endsAt) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(3.9);
    await waitMessage('C0ALERTS', 'DiskFilling', /Silenced by <@U0ONCALL> until/);
  });

  it('a resolved alert updates the same message; no new top-level message', async () => {
    await am.post([alert('CertExpiring', 'warning')]);
    await waitMessage('C0ALERTS', 'CertExpiring', /firing/);
    const before = stack.emulator.channelMessages('C0ALERTS').length;
    await am.resolve([alert('CertExpiring', 'warning')]);
    const resolved = await waitMessage(
      'C0ALERTS',
      'CertExpiring',
      /✅ WARNING · CertExpiring\* — resolved after/,
    );
    expect(renderBlocks(resolved.blocks, resolved.text)).not.toContain('[Acknowledge]');
    expect(resolved.edits).toBeGreaterThan(0);
    expect(stack.emulator.channelMessages('C0ALERTS').length).toBe(before);
  });

  it('a silenced alert that resolves (Alertmanager sends nothing) is resolved in place by reconciliation', async () => {
    const name = 'MutedThenGone';
    await am.post([alert(name, 'warning')]);
    const msg = await waitMessage('C0ALERTS', name);
    const fp = await fingerprintOf(name);
    await stack.driver.click(msg, { action_id: 'alert_silence', value: `${fp}|1h` }, { user: 'U0ONCALL' });
    await waitMessage('C0ALERTS', name, /Silenced by/);
    await am.resolve([alert(name, 'warning')]);
    const done = await waitMessage('C0ALERTS', name, /resolved after/);
    expect(renderBlocks(done.blocks, done.text)).toContain('Alertmanager no longer holds it');
  }, 30_000);

  it('escalates an unacknowledged critical alert once per interval, and stops once acknowledged', async () => {
    const fp = await fingerprintOf('ServiceDown');
    const msg = await waitMessage('C0ONCALL', 'ServiceDown');
    const replies = () => stack.emulator.threadReplies('C0ONCALL', msg.ts);
    await waitFor(() => replies().length >= 1, { timeoutMs: 15_000, what: 'the first escalation' });
    expect(replies()[0]?.text).toMatch(
      /📣 Escalation 1\/2: <@U0ONCALL> <!subteam\^S0ONCALLS> \*ServiceDown\* has been firing/,
    );
    await waitFor(() => replies().length >= 2, { timeoutMs: 15_000, what: 'the second escalation' });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(replies()).toHaveLength(2); // maxTimes
    const metrics = await (await fetch(`${stack.apps[0]?.url}/metrics`)).text();
    expect(metrics).toMatch(/flightdeck_alert_escalations_total\{severity="critical"\} 2/);
    expect(metrics).toMatch(/flightdeck_alert_time_to_acknowledge_seconds_count\{severity="warning"\} 1/);
    expect(metrics).toMatch(/flightdeck_alerts_received_total\{severity="critical",status="firing"\} [1-9]/);
    // A fresh critical alert, acknowledged before its first escalation: none comes.
    await am.post([alert('QueueStuck', 'critical')]);
    const q = await waitMessage('C0ONCALL', 'QueueStuck');
    const qfp = await fingerprintOf('QueueStuck');
    await stack.driver.click(q, { action_id: 'alert_ack', value: qfp }, { user: 'U0ONCALL' });
    await waitMessage('C0ONCALL', 'QueueStuck', /Acknowledged/);
    await new Promise((r) => setTimeout(r, 4_500));
    expect(stack.emulator.threadReplies('C0ONCALL', q.ts)).toHaveLength(0);
    expect(fp).toBeTruthy();
  }, 60_000);

  it('answers a wrong or missing token with 401 and malformed bodies with 400, queueing nothing', async () => {
    const url = `${stack.apps[0]?.url}/alerts/alertmanager`;
    const before = await alertQueue.getJobCountByTypes('waiting', 'active', 'completed', 'failed', 'delayed');
    const post = (headers: Record<string, string>, body: string) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const valid = JSON.stringify({
      version: '4',
      groupKey: 'x',
      status: 'firing',
      receiver: 'r',
      alerts: [],
    });
    expect((await post({}, valid)).status).toBe(401);
    expect((await post({ authorization: 'Bearer wrong-token-wrong-token' }, valid)).status).toBe(401);
    expect((await post({ authorization: `Basic ${TOKEN}` }, valid)).status).toBe(401);
    const malformed = await post({ authorization: `Bearer ${TOKEN}` }, '{"version": "4", ');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: string }).error).toMatch(/^malformed JSON/);
    const wrongShape = await post(
      { authorization: `Bearer ${TOKEN}` },
      JSON.stringify({ version: '3', alerts: 'no' }),
    );
    expect(wrongShape.status).toBe(400);
    expect(((await wrongShape.json()) as { issues: string[] }).issues.join(' ')).toMatch(/version/);
    expect(await alertQueue.getJobCountByTypes('waiting', 'active', 'completed', 'failed', 'delayed')).toBe(
      before,
    );
  });
});

describe('an alert storm', () => {
  it('one summary names its alerts, is edited in place as more arrive and as they resolve, and acknowledges all', async () => {
    const name = 'StormNamed';
    const node = (i: number) => alert(name, 'warning', { instance: `node-${String(i).padStart(2, '0')}` });
    const first = Array.from({ length: 30 }, (_, i) => node(i));
    await am.post(first);
    const summaryOf = () =>
      stack.emulator
        .channelMessages('C0ALERTS')
        .find((m) => m.text.startsWith('Alert storm:') && renderBlocks(m.blocks, '').includes(name));
    const shows = (re: RegExp) => () => {
      const m = summaryOf();
      return m && re.test(renderBlocks(m.blocks, m.text)) ? m : undefined;
    };
    // Named in the summary itself, not only in its thread.
    const s1 = await waitFor(shows(/Firing \(30\)\*: `node-00` `node-01`[^\n]* `node-29`/), {
      what: 'the summary naming the first 30 alerts',
    });
    const before = stack.emulator.channelMessages('C0ALERTS').length;
    await am.post(Array.from({ length: 30 }, (_, i) => node(30 + i)));
    const s2 = await waitFor(shows(/Alert storm: 60 alerts[\s\S]*Firing \(60\)\*:[^\n]* `node-59`/), {
      what: 'the same summary naming all 60',
    });
    expect(s2.ts).toBe(s1.ts);
    expect(s2.edits).toBeGreaterThan(0);
    expect(stack.emulator.channelMessages('C0ALERTS').length).toBe(before);

    await am.resolve(first.slice(0, 10));
    const s3 = await waitFor(shows(/50 firing, 10 resolved/), { what: 'ten resolved in the summary' });
    const text = renderBlocks(s3.blocks, s3.text);
    expect(text).toMatch(/✅ Resolved \(10\)\*: `node-00` `node-01`[^\n]* `node-09`/);
    expect(text).toMatch(/🔥 Firing \(50\)\*: `node-10`/);
    expect(text).not.toContain('more in the thread');
    // Coalesced: a handful of edits for 70 changes (one per notification at most).
    expect(s3.edits).toBeLessThan(70);

    await stack.driver.click(
      s3,
      { action_id: 'alert_group_ack', value: groupIdOf(s3) },
      { user: 'U0ONCALL' },
    );
    const acked = await waitFor(shows(/Acknowledged by <@U0ONCALL>/), { what: 'the storm acknowledged' });
    expect(renderBlocks(acked.blocks, acked.text)).not.toContain('[Acknowledge all]');

    // The thread lists every alert with its labels, once.
    const fps = (await am.alerts()).filter((a) => a.labels.alertname === name).map((a) => a.fingerprint);
    const thread = () =>
      stack.emulator
        .threadReplies('C0ALERTS', s1.ts)
        .map((m) => m.text)
        .join('\n');
    await waitFor(() => fps.every((fp) => thread().includes(fp)), { what: 'every alert in the thread' });
    expect(thread()).toContain('instance=node-42');
    expect(stack.emulator.retryAfterViolations).toBe(0);
  }, 90_000);

  it('a storm’s alerts that end silenced (no notification comes) are shown resolved in its summary', async () => {
    const name = 'StormMuted';
    const burst = Array.from({ length: 25 }, (_, i) => alert(name, 'warning', { instance: `m-${i}` }));
    await am.post(burst);
    const summaryOf = () =>
      stack.emulator
        .channelMessages('C0ALERTS')
        .find((m) => m.text.startsWith('Alert storm:') && renderBlocks(m.blocks, '').includes(name));
    await waitFor(() => /25 firing, 0 resolved/.test(renderBlocks(summaryOf()?.blocks, '')), {
      what: 'the storm summary with 25 firing',
    });
    const fps = (await am.alerts()).filter((a) => a.labels.alertname === name).map((a) => a.fingerprint);
    expect(fps).toHaveLength(25);
    const silence = await fetch(`${am.url}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'alertname', value: name, isRegex: false }],
        startsAt: new Date().toISOString(),
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        createdBy: 'test',
        comment: 'muted storm',
      }),
    });
    expect(silence.status).toBe(200);
    await am.resolve(burst);
    const done = await waitFor(
      () => {
        const m = summaryOf();
        return m && /0 firing, 25 resolved/.test(renderBlocks(m.blocks, '')) ? m : undefined;
      },
      { timeoutMs: 30_000, what: 'the summary showing all 25 resolved' },
    );
    const text = renderBlocks(done.blocks, done.text);
    expect(text).toMatch(/✅ Resolved \(25\)\*: `m-0` `m-1`/);
    expect(text).not.toContain('Firing (');
    expect(text).not.toContain('[Acknowledge all]');
    // Found by reconciliation, not by a notification.
    const records = await new AlertStore(stack.client, stack.prefix).many(fps);
    expect(records).toHaveLength(25);
    for (const r of records) expect(r.resolvedNote).toContain('Alertmanager no longer holds it');
  }, 60_000);

  it('1,000 alerts in a burst: every one is shown in Slack, Retry-After is never violated, nothing is lost', async () => {
    const names = ['StormA', 'StormB', 'StormC', 'StormD'];
    const burst = Array.from({ length: 1_000 }, (_, i) =>
      alert(names[i % 4] as string, i % 10 === 0 ? 'critical' : 'warning', { shard: `s${i}` }),
    );
    const retriesBefore = stack.emulator.callCount('chat.postMessage', 429);
    await am.post(burst);
    const fps = await waitFor(
      async () => {
        const all = (await am.alerts()).filter((a) => names.includes(a.labels.alertname ?? ''));
        return all.length === 1_000 ? all.map((a) => a.fingerprint) : undefined;
      },
      { what: '1,000 alerts in alertmanager' },
    );
    const shown = () => {
      const text = stack.emulator.messages.map((m) => `${m.text}\n${renderBlocks(m.blocks, '')}`).join('\n');
      return fps.filter((fp) => text.includes(fp)).length;
    };
    await waitFor(() => shown() === 1_000, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'every alert in Slack',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}: ${shown()} of 1000 shown`);
    });
    expect(stack.emulator.retryAfterViolations).toBe(0);
    const records = await new AlertStore(stack.client, stack.prefix).many(fps);
    expect(records).toHaveLength(1_000);
    // Summarised: a handful of summaries and thread messages, not a thousand posts.
    const summaries = stack.emulator.messages.filter(
      (m) =>
        m.text.startsWith('Alert storm:') &&
        names.some((n) => renderBlocks(m.blocks, '').includes(`=${n}\``)),
    );
    expect(summaries.length).toBe(4);
    expect(stack.emulator.callCount('chat.postMessage', 200)).toBeLessThan(100);
    expect(stack.emulator.callCount('chat.postMessage', 429)).toBeGreaterThanOrEqual(retriesBefore);
  }, 180_000);
});
