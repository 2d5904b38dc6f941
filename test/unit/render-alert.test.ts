import { describe, expect, it } from 'vitest';
import {
  ALERT_ACTIONS,
  alertLine,
  alertTitle,
  escapeMrkdwn,
  renderAlert,
  renderGroup,
  THREAD_LINES,
  threadReply,
} from '../../src/alerts/render-alert.js';
import type { AlertGroup, AlertRecord } from '../../src/alerts/schema.js';
import { blocksError } from '../../tools/slack-emulator/block-kit.js';

const T0 = Date.parse('2026-01-01T12:00:00Z');

const record = (extra: Partial<AlertRecord> = {}): AlertRecord => ({
  fingerprint: 'abc123',
  status: 'firing',
  labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'api', environment: 'production' },
  annotations: { summary: 'Errors above 5%', description: 'api returns 500s' },
  startsAt: '2026-01-01T11:58:00Z',
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: 'http://prometheus:9090/graph?g0.expr=x',
  externalURL: '',
  channel: 'C0ALERTS',
  firstSeen: T0,
  lastSeen: T0 + 60_000,
  count: 2,
  silences: [],
  escalations: 0,
  ...extra,
});

type Block = { type: string; text?: { text: string }; elements?: Array<Record<string, unknown>> };
const blocksOf = (r: { blocks: unknown[] }) => r.blocks as Block[];
const allText = (r: { blocks: unknown[] }) =>
  blocksOf(r)
    .flatMap((b) => [
      b.text?.text ?? '',
      ...(b.elements ?? []).map((e) => String((e as { text?: unknown }).text ?? '')),
    ])
    .join('\n');
const buttons = (r: { blocks: unknown[] }) =>
  blocksOf(r)
    .filter((b) => b.type === 'actions')
    .flatMap((b) => b.elements ?? []) as Array<{ action_id: string; value: string; text: { text: string } }>;

describe('alertTitle', () => {
  it('shows the severity’s icon and name, and the alert name', () => {
    expect(alertTitle(record())).toBe('🔴 CRITICAL · HighErrorRate');
    expect(alertTitle(record({ labels: { alertname: 'DiskFilling', severity: 'warning' } }))).toBe(
      '🟠 WARNING · DiskFilling',
    );
    expect(alertTitle(record({ labels: {} }))).toBe('⚪ NONE · alert');
  });

  it('shows a tick once resolved, whatever the severity', () => {
    expect(alertTitle(record({ status: 'resolved' }))).toBe('✅ CRITICAL · HighErrorRate');
  });

  it('escapes an alert name so it cannot ping or link', () => {
    expect(alertTitle(record({ labels: { alertname: '<!channel> & co' } }))).toContain(
      '&lt;!channel&gt; &amp; co',
    );
  });
});

describe('renderAlert', () => {
  it('says what fires, the summary and description, and how often it was seen', () => {
    const r = renderAlert(record(), { now: T0 + 60_000 });
    const text = allText(r);
    expect(text).toContain('*🔴 CRITICAL · HighErrorRate* — firing');
    expect(text).toContain('*Errors above 5%*');
    expect(text).toContain('api returns 500s');
    expect(text).toContain('Started 11:58 UTC · seen 2× · last 12:01 UTC');
    expect(text).toContain('`abc123`');
    expect(r.text).toBe('CRITICAL HighErrorRate: Errors above 5%');
  });

  it('shows the labels except alertname and severity', () => {
    const text = allText(renderAlert(record(), { now: T0 }));
    expect(text).toContain('`service=api` `environment=production`');
    expect(text).not.toContain('`alertname=');
    expect(text).not.toContain('`severity=');
  });

  it('links the source only when it is an http(s) URL', () => {
    expect(allText(renderAlert(record(), { now: T0 }))).toContain(
      '<http://prometheus:9090/graph?g0.expr=x|source>',
    );
    expect(allText(renderAlert(record({ generatorURL: 'javascript:alert(1)' }), { now: T0 }))).not.toContain(
      'source',
    );
  });

  it('escapes annotations that came from elsewhere', () => {
    const text = allText(
      renderAlert(record({ annotations: { summary: '<!here> look', description: 'a <@U0LEAD> b' } }), {
        now: T0,
      }),
    );
    expect(text).toContain('&lt;!here&gt; look');
    expect(text).toContain('a &lt;@U0LEAD&gt; b');
    expect(text).not.toContain('<!here>');
  });

  it('offers Acknowledge and the three silences while firing and unacknowledged', () => {
    const b = buttons(renderAlert(record(), { now: T0 }));
    expect(b.map((x) => [x.action_id, x.value])).toEqual([
      [ALERT_ACTIONS.ack, 'abc123'],
      [ALERT_ACTIONS.silence, 'abc123|1h'],
      [ALERT_ACTIONS.silence, 'abc123|4h'],
      [ALERT_ACTIONS.silence, 'abc123|24h'],
    ]);
  });

  it('names who acknowledged and drops the Acknowledge button', () => {
    const r = renderAlert(record({ ack: { by: 'U0LEAD', name: 'lead', at: T0 + 120_000 } }), { now: T0 });
    expect(allText(r)).toContain('👀 Acknowledged by <@U0LEAD> at 12:02 UTC');
    expect(buttons(r).map((x) => x.action_id)).not.toContain(ALERT_ACTIONS.ack);
  });

  it('offers Roll back of the alert’s service when asked to', () => {
    const r = renderAlert(record(), { now: T0, rollback: { environment: 'production', service: 'api' } });
    const rollback = buttons(r).find((x) => x.action_id === ALERT_ACTIONS.rollback);
    expect(rollback?.text.text).toBe('Roll back api');
    expect(rollback?.value).toBe('abc123');
    expect(JSON.stringify(rollback)).toContain(
      'All traffic of api in production goes back to its last good colour.',
    );
    expect(
      buttons(renderAlert(record(), { now: T0 })).some((x) => x.action_id === ALERT_ACTIONS.rollback),
    ).toBe(false);
  });

  it('has no buttons once resolved, and says for how long it fired', () => {
    const r = renderAlert(record({ status: 'resolved', resolvedAt: Date.parse('2026-01-01T12:08:00Z') }), {
      now: T0,
    });
    expect(buttons(r)).toEqual([]);
    expect(allText(r)).toContain('resolved after 10 minutes');
    expect(r.text).toMatch(/^RESOLVED HighErrorRate/);
  });

  it('shows only silences still in force', () => {
    const r = renderAlert(
      record({
        silences: [
          { id: 's1', by: 'U0OLD', until: T0 - 1 },
          { id: 's2', by: 'U0LEAD', until: T0 + 3_600_000 },
        ],
      }),
      { now: T0 },
    );
    expect(allText(r)).toContain('🔕 Silenced by <@U0LEAD> until 13:00 UTC');
    expect(allText(r)).not.toContain('U0OLD');
  });

  it('shows escalations until someone acknowledges', () => {
    expect(allText(renderAlert(record({ escalations: 2 }), { now: T0 }))).toContain('📣 Escalated 2×');
    const acked = record({ escalations: 2, ack: { by: 'U0LEAD', name: 'lead', at: T0 } });
    expect(allText(renderAlert(acked, { now: T0 }))).not.toContain('Escalated');
  });

  it('keeps every text block within Slack’s limits', () => {
    const r = renderAlert(record({ annotations: { summary: 'x'.repeat(5_000) } }), { now: T0 });
    for (const b of blocksOf(r)) expect((b.text?.text ?? '').length).toBeLessThanOrEqual(3_000);
    expect(r.text.length).toBeLessThanOrEqual(3_000);
  });
});

describe('renderGroup', () => {
  const group = (extra: Partial<AlertGroup> = {}): AlertGroup => ({
    id: 'g1',
    groupKey: 'k',
    groupLabels: { alertname: 'NodeDown' },
    commonKeys: [],
    channel: 'C0ALERTS',
    fingerprints: ['a', 'b', 'c'],
    listed: 0,
    statuses: {},
    firing: 2,
    resolved: 1,
    bySeverity: { critical: 2 },
    updatedAt: T0,
    escalations: 0,
    ...extra,
  });

  it('counts the storm’s alerts and offers one Acknowledge all button', () => {
    const r = renderGroup(group(), T0);
    const text = allText(r);
    expect(text).toContain('*🌩️ Alert storm: 3 alerts* `alertname=NodeDown` — 2 firing, 1 resolved');
    expect(text).toContain('🔴 2 critical · updated 12:00 UTC');
    expect(buttons(r).map((b) => [b.action_id, b.value])).toEqual([[ALERT_ACTIONS.ackGroup, 'g1']]);
    expect(r.text).toBe('Alert storm: 3 alerts (2 firing)');
  });

  it('has no button once nothing fires, and names who acknowledged', () => {
    expect(buttons(renderGroup(group({ firing: 0, resolved: 3, bySeverity: {} }), T0))).toEqual([]);
    const acked = renderGroup(group({ ack: { by: 'U0LEAD', name: 'lead', at: T0 } }), T0);
    expect(buttons(acked)).toEqual([]);
    expect(allText(acked)).toContain('👀 Acknowledged by <@U0LEAD> at 12:00 UTC');
  });
});

describe('renderGroup names the storm’s alerts', () => {
  /** A storm of `n` alerts named `node-<i>`; `resolved` of them (the first ones) resolved. */
  const storm = (n: number, opts: { resolved?: number; name?: (i: number) => string } = {}): AlertGroup => {
    const fingerprints = Array.from({ length: n }, (_, i) => `f${i}`);
    const statuses = Object.fromEntries(
      fingerprints.map((fp, i) => [
        fp,
        {
          status: i < (opts.resolved ?? 0) ? ('resolved' as const) : ('firing' as const),
          severity: 'warning',
          name: opts.name ? opts.name(i) : `node-${i}`,
        },
      ]),
    );
    const resolved = Math.min(n, opts.resolved ?? 0);
    return {
      id: 'g1',
      groupKey: 'k',
      groupLabels: { alertname: 'NodeDown' },
      commonKeys: ['alertname', 'severity'],
      channel: 'C0ALERTS',
      fingerprints,
      listed: 0,
      statuses,
      firing: n - resolved,
      resolved,
      bySeverity: n - resolved > 0 ? { warning: n - resolved } : {},
      updatedAt: T0,
      escalations: 0,
    };
  };
  const sectionTexts = (r: { blocks: unknown[] }) =>
    blocksOf(r)
      .filter((b) => b.type === 'section')
      .map((b) => b.text?.text ?? '');

  it('lists firing alerts first, then the resolved ones, each by its short name', () => {
    const r = renderGroup(storm(5, { resolved: 2 }), T0);
    expect(sectionTexts(r)).toEqual([
      '*🌩️ Alert storm: 5 alerts* `alertname=NodeDown` — 3 firing, 2 resolved',
      '*🔥 Firing (3)*: `node-2` `node-3` `node-4`',
      '*✅ Resolved (2)*: `node-0` `node-1`',
    ]);
    expect(allText(r)).not.toContain('more in the thread');
    expect(blocksError(r.blocks)).toBeUndefined();
  });

  it('marks each firing alert with its severity when the storm mixes severities', () => {
    const g = storm(2);
    g.statuses.f0 = { status: 'firing', severity: 'critical', name: 'db-1' };
    g.bySeverity = { critical: 1, warning: 1 };
    expect(sectionTexts(renderGroup(g, T0))[1]).toBe('*🔥 Firing (2)*: 🔴`db-1` 🟠`node-1`');
  });

  it('shows the fingerprint of an alert it has no name for (stored before names were kept)', () => {
    const g = storm(1);
    g.statuses.f0 = { status: 'firing', severity: 'warning' };
    expect(sectionTexts(renderGroup(g, T0))[1]).toBe('*🔥 Firing (1)*: `f0`');
  });

  it('names a thousand alerts in one message within Block Kit’s limits', () => {
    const r = renderGroup(storm(1_000, { resolved: 100 }), T0);
    expect(blocksError(r.blocks)).toBeUndefined();
    const text = allText(r);
    for (let i = 0; i < 1_000; i++) expect(text).toContain(`\`node-${i}\``);
    expect(text).not.toContain('more in the thread');
    expect(buttons(r).map((b) => b.action_id)).toEqual([ALERT_ACTIONS.ackGroup]);
  });

  it('names as many as fit and counts the rest as “+M more in the thread”, buttons kept', () => {
    const long = (i: number) => `instance-with-a-long-name-${String(i).padStart(5, '0')}.example.internal`;
    const r = renderGroup(storm(5_000, { resolved: 10, name: long }), T0);
    expect(blocksError(r.blocks)).toBeUndefined();
    expect(r.blocks.length).toBeLessThanOrEqual(50);
    const text = allText(r);
    const named = (text.match(/instance-with-a-long-name-/g) ?? []).length;
    expect(named).toBeGreaterThan(400);
    expect(text).toContain(`+${5_000 - named} more in the thread`);
    // Firing alerts come first, so the ones left out are the last to arrive and the resolved ones.
    expect(text).toContain(`\`${long(10)}\``);
    expect(text).not.toContain(`\`${long(0)}\``);
    expect(buttons(r).map((b) => b.action_id)).toEqual([ALERT_ACTIONS.ackGroup]);
  });

  it('escapes names, and a backtick cannot end the code span', () => {
    const g = storm(1, { name: () => '<!channel> `x` & <@U1>' });
    expect(sectionTexts(renderGroup(g, T0))[1]).toBe(
      "*🔥 Firing (1)*: `&lt;!channel&gt; 'x' &amp; &lt;@U1&gt;`",
    );
  });
});

describe('threadReply', () => {
  it('lists at most THREAD_LINES alerts in one reply, within 20,000 characters', () => {
    const many = Array.from({ length: 400 }, (_, i) => record({ fingerprint: `f${i}` }));
    expect(threadReply(many)).toHaveLength(THREAD_LINES);
    const wide = Array.from({ length: 400 }, (_, i) =>
      record({
        fingerprint: `f${i}`,
        labels: { alertname: 'X'.repeat(150), a: 'v'.repeat(30), b: 'v'.repeat(30), c: 'v'.repeat(30) },
      }),
    );
    const lines = threadReply(wide);
    expect(lines.length).toBeLessThan(THREAD_LINES);
    expect(lines.join('\n').length).toBeLessThanOrEqual(20_000);
    expect(lines[0]).toBe(alertLine(wide[0] as AlertRecord));
  });
});

describe('alertLine and escapeMrkdwn', () => {
  it('puts one alert of a storm on one line with its labels and fingerprint', () => {
    expect(alertLine(record())).toBe(
      '🔴 CRITICAL · HighErrorRate service=api environment=production `abc123`',
    );
  });

  it('escapes &, < and >', () => {
    expect(escapeMrkdwn('a & <b>')).toBe('a &amp; &lt;b&gt;');
  });
});
