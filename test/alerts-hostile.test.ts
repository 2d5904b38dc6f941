import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { type AmAlert, startWithAlertmanager, TestAlertmanager } from './helpers/alertmanager-server.js';
import { waitFor } from './helpers/ports.js';
import { releaseIds, releases, soakingAt, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from './helpers/swarm.js';

/**
 * Hostile labels and annotations sent through a real Alertmanager: whatever they say, nothing of
 * theirs becomes a link, a mention or a channel ping on any surface flightdeck shows them on.
 */
const TOKEN = 'alertmanager-test-token-hostile-0123';
const am = new TestAlertmanager();
const stack = new TestStack({ prefix: 'fdalhost', basePort: 31300 });
const names: string[] = [];

const EVIL =
  '<!channel> <!here> <@U0EVIL> <#C0EVIL> <!subteam^S0EVIL> & <https://evil.example/|Approve here>';
const ESCAPED =
  '&lt;!channel&gt; &lt;!here&gt; &lt;@U0EVIL&gt; &lt;#C0EVIL&gt; &lt;!subteam^S0EVIL&gt; &amp; &lt;https://evil.example/|Approve here&gt;';
const SOURCE = 'http://prometheus.example/graph?g0.expr=up&g0.tab=1';
/** The only entities flightdeck itself may put there: its people and the one well-formed link. */
const OURS = new Set(['<@U0ONCALL>', '<@U0DEV>', `<${SOURCE.replace('&', '&amp;')}|source>`]);

const critical: AmAlert = {
  labels: {
    alertname: `HostileCrit ${EVIL}`,
    severity: 'critical',
    service: 'api',
    environment: 'staging',
    instance: EVIL,
  },
  annotations: { summary: `summary ${EVIL}`, description: `description ${EVIL}` },
  generatorURL: SOURCE,
};
const hostileSeverity: AmAlert = {
  labels: { alertname: `HostileSev ${EVIL}`, severity: '<@u0evil> <!channel>' },
  annotations: { summary: `summary ${EVIL}` },
  generatorURL: 'https://evil/|Approve here> <!channel> <https://evil/',
};

/** Every string of a message (its fallback text and each Block Kit string): what Slack parses. */
const strings = (x: unknown): string[] =>
  typeof x === 'string'
    ? [x]
    : Array.isArray(x)
      ? x.flatMap(strings)
      : x && typeof x === 'object'
        ? Object.values(x).flatMap(strings)
        : [];
const surface = (m: { text?: string; blocks?: unknown }) => [m.text ?? '', ...strings(m.blocks ?? [])];

/** The `<…>` entities in a surface that flightdeck did not put there itself. */
const foreignEntities = (texts: string[]) =>
  texts.flatMap((t) => t.match(/<[^<>]*>/g) ?? []).filter((e) => !OURS.has(e));

const findIn = (channel: string, marker: string) =>
  stack.emulator.channelMessages(channel).find((m) => JSON.stringify(m.blocks ?? m.text).includes(marker));

async function waitMessage(channel: string, marker: string, re: RegExp = /./) {
  return waitFor(
    () => {
      const m = findIn(channel, marker);
      return m && re.test(renderBlocks(m.blocks, m.text)) ? m : undefined;
    },
    { timeoutMs: 30_000, what: `a message about ${marker} in ${channel} matching ${re}` },
  );
}

const fingerprintOf = async (prefix: string) =>
  waitFor(async () => (await am.alerts()).find((a) => a.labels.alertname?.startsWith(prefix))?.fingerprint, {
    what: `${prefix} in alertmanager`,
  });

const metricsText = async () => (await fetch(`${stack.apps[0]?.url}/metrics`)).text();

beforeAll(async () => {
  await startWithAlertmanager(stack, am, {
    token: TOKEN,
    alerts: {
      defaultChannel: 'C0ALERTS',
      routes: [{ match: { severity: 'critical' }, channel: 'C0ONCALL' }],
      escalation: { after: '2s', repeat: '1h', maxTimes: 1, notify: ['U0ONCALL'] },
      summariseAbove: 20,
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 180_000);

afterAll(async () => {
  await am.destroy();
  await stack.stop();
  await removeServicesAndWait(names);
});

describe('hostile alert labels and annotations from a real Alertmanager', () => {
  it('stay inert in the alert message, its escalation, the paused release, App Home and the replies', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.1.0');
    const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
    await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
    await am.post([critical, hostileSeverity]);

    // The release message says which alert paused it, escaped.
    await waitRelease(stack, id as string, (r) => r.status === 'paused', 'paused by the alert');
    await waitProgress(stack, id as string, /⏸️ Paused by critical alert \*HostileCrit /);
    const releaseMessage = async () => {
      const at = (await releases(stack).get(id as string))?.message;
      const m = stack.emulator.messages.find((x) => x.channel === at?.channel && x.ts === at?.ts);
      if (!m) throw new Error('no release message');
      return m;
    };
    expect(surface(await releaseMessage()).join('\n')).toContain(
      `⏸️ Paused by critical alert *HostileCrit ${ESCAPED}*`,
    );
    expect(foreignEntities(surface(await releaseMessage()))).toEqual([]);

    // The alert's own message: title, summary, description, labels, fallback text; the link kept.
    const alertMsg = await waitMessage('C0ONCALL', 'HostileCrit', /⏸️ Paused release[\s\S]*\[Roll back api\]/);
    const alertText = surface(alertMsg).join('\n');
    expect(alertText).toContain(`🔴 CRITICAL · HostileCrit ${ESCAPED}`);
    expect(alertText).toContain(`*summary ${ESCAPED}*`);
    expect(alertText).toContain(`description ${ESCAPED}`);
    expect(alertText).toContain('`instance=&lt;!channel&gt; &lt;!here&gt;');
    expect(alertText).toContain(`<${SOURCE.replace('&', '&amp;')}|source>`);
    expect(alertMsg.text).toContain(`HostileCrit ${ESCAPED}`);
    expect(foreignEntities(surface(alertMsg))).toEqual([]);

    // Its escalation in the thread.
    const escalation = await waitFor(() => stack.emulator.threadReplies('C0ONCALL', alertMsg.ts)[0], {
      timeoutMs: 20_000,
      what: 'the escalation reply',
    });
    expect(escalation.text).toContain(
      `📣 Escalation 1/1: <@U0ONCALL> *HostileCrit ${ESCAPED}* has been firing`,
    );
    expect(foreignEntities(surface(escalation))).toEqual([]);

    // A hostile severity (upper-cased for the title) and a generatorURL that would close the link early.
    const sevMsg = await waitMessage('C0ALERTS', 'HostileSev');
    const sevText = surface(sevMsg).join('\n');
    expect(sevText).toContain(`⚪ &lt;@U0EVIL&gt; &lt;!CHANNEL&gt; · HostileSev ${ESCAPED}`);
    expect(sevText).not.toContain('|source>');
    expect(sevText).not.toContain('https://evil/');
    expect(sevMsg.text).toMatch(/^&lt;@U0EVIL&gt; &lt;!CHANNEL&gt; HostileSev &lt;!channel&gt;/);
    expect(foreignEntities(surface(sevMsg))).toEqual([]);

    // App Home lists both open alerts, escalated.
    await stack.driver.event({ type: 'app_home_opened', user: 'U0LEAD', channel: 'D0LEAD', tab: 'home' });
    const home = await waitFor(
      () => {
        const v = stack.emulator.homeViews.get('U0LEAD');
        const t = v ? strings(v).join('\n') : '';
        return t.includes('HostileCrit') && t.includes('HostileSev') ? v : undefined;
      },
      { what: 'App Home with both hostile alerts' },
    );
    const homeText = strings(home).join('\n');
    expect(homeText).toContain(`🔴 CRITICAL · HostileCrit ${ESCAPED} summary ${ESCAPED}`);
    expect(homeText).toContain(
      `⚪ &lt;@U0EVIL&gt; &lt;!CHANNEL&gt; · HostileSev ${ESCAPED} summary ${ESCAPED}`,
    );
    expect(foreignEntities(strings(home))).toEqual([]);

    // Roll back from the alert: the release's outcome names the alert, escaped.
    const fp = await fingerprintOf('HostileCrit');
    await stack.driver.click(alertMsg, { action_id: 'alert_rollback', value: fp }, { user: 'U0DEV' });
    const rolled = await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'rolled back');
    expect(rolled.outcome).toContain(`alert HostileCrit ${ESCAPED}, by <@U0DEV>`);
    await waitProgress(stack, id as string, /Rolled back \(alert HostileCrit /);
    expect(foreignEntities(surface(await releaseMessage()))).toEqual([]);
    expect((await releases(stack).get(id as string))?.status).toBe('rolled_back');

    // Acknowledging the hostile-severity alert: the reply escapes its name.
    const seenOncall = stack.emulator.ephemeralsFor('U0ONCALL').length;
    const sevFp = await fingerprintOf('HostileSev');
    await stack.driver.click(sevMsg, { action_id: 'alert_ack', value: sevFp }, { user: 'U0ONCALL' });
    const reply = await stack.answerTo('U0ONCALL', seenOncall, /acknowledged/);
    expect(reply).toContain(`👀 You acknowledged *HostileSev ${ESCAPED}*.`);
    expect(foreignEntities([reply])).toEqual([]);
    expect(await metricsText()).toMatch(
      /^flightdeck_alert_time_to_acknowledge_seconds_count\{severity="other"\} 1$/m,
    );
  }, 180_000);

  it('a storm of 1,000 distinct hostile severities: an inert summary and thread, and a bounded set of metric series', async () => {
    const burst: AmAlert[] = Array.from({ length: 1_000 }, (_, i) => ({
      labels: { alertname: `HostileStorm ${EVIL}`, severity: `<!channel>${i}`, instance: EVIL },
      annotations: { summary: EVIL },
    }));
    await am.post(burst);
    const summary = await waitMessage('C0ALERTS', 'HostileStorm', /Alert storm: 1000 alerts/);
    const summaryText = surface(summary).join('\n');
    expect(summaryText).toContain(`\`alertname=HostileStorm &lt;!channel&gt;`);
    // Counted under one key: a severity that is not a short plain word is `other` in the summary.
    expect(summaryText).toContain('⚪ 1000 other');
    expect(foreignEntities(surface(summary))).toEqual([]);
    for (const s of strings(summary.blocks)) expect(s.length).toBeLessThanOrEqual(3_000);

    const thread = await waitFor(() => stack.emulator.threadReplies('C0ALERTS', summary.ts)[0], {
      timeoutMs: 30_000,
      what: 'the storm’s thread listing',
    });
    expect(thread.text).toMatch(/^⚪ &lt;!CHANNEL&gt;\d+ · HostileStorm &lt;!channel&gt;/);
    expect(foreignEntities(surface(thread))).toEqual([]);

    // Every alert was counted, under the bounded severities only.
    const received = (text: string) =>
      [...text.matchAll(/^flightdeck_alerts_received_total\{(.*)\} (\d+)$/gm)].map((m) => ({
        labels: m[1] as string,
        n: Number(m[2]),
      }));
    const text = await waitFor(
      async () => {
        const t = await metricsText();
        return received(t).reduce((sum, r) => sum + r.n, 0) >= 1_002 ? t : undefined;
      },
      { timeoutMs: 30_000, what: 'all 1,002 alerts counted in /metrics' },
    );
    const severities = new Set(
      text
        .split('\n')
        .filter((l) => l.startsWith('flightdeck_alert'))
        .flatMap((l) => [...l.matchAll(/severity="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] as string)),
    );
    expect([...severities].every((s) => ['critical', 'warning', 'info', 'none', 'other'].includes(s))).toBe(
      true,
    );
    expect(severities.size).toBeLessThanOrEqual(5);
    // Alertmanager may send a group again as it grows, so the counts are at least the alerts sent.
    const count = (labels: string) => received(text).find((r) => r.labels === labels)?.n ?? 0;
    expect(count('severity="other",status="firing"')).toBeGreaterThanOrEqual(1_001);
    expect(count('severity="critical",status="firing"')).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
