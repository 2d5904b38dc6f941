import { describe, expect, it } from 'vitest';
import {
  alertLine,
  alertTitle,
  escapeMrkdwn,
  renderAlert,
  renderGroup,
  sourceLink,
} from '../../src/alerts/render-alert.js';
import type { AlertGroup, AlertRecord } from '../../src/alerts/schema.js';
import { renderHome } from '../../src/home/render-home.js';

/** Hostile text as Alertmanager may carry it in any label or annotation. */
const EVIL = '<!channel> <@U0EVIL> <#C0EVIL> <!subteam^S0EVIL> & <https://evil.example/|Approve here>';
const EVIL_ESCAPED =
  '&lt;!channel&gt; &lt;@U0EVIL&gt; &lt;#C0EVIL&gt; &lt;!subteam^S0EVIL&gt; &amp; &lt;https://evil.example/|Approve here&gt;';
const T0 = Date.parse('2026-01-01T12:00:00Z');

const record = (extra: Partial<AlertRecord> = {}): AlertRecord => ({
  fingerprint: 'abc123',
  status: 'firing',
  labels: { alertname: `Evil ${EVIL}`, severity: '<@u0lead>', instance: EVIL },
  annotations: { summary: `sum ${EVIL}`, description: `desc ${EVIL}` },
  startsAt: '2026-01-01T11:58:00Z',
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: 'https://evil/|Approve here> <!channel> <https://evil/',
  externalURL: '',
  channel: 'C0ALERTS',
  firstSeen: T0,
  lastSeen: T0,
  count: 1,
  silences: [],
  escalations: 0,
  ...extra,
});

/** Every string in a Block Kit tree: what Slack may parse as mrkdwn. */
const strings = (x: unknown): string[] =>
  typeof x === 'string'
    ? [x]
    : Array.isArray(x)
      ? x.flatMap(strings)
      : x && typeof x === 'object'
        ? Object.values(x).flatMap(strings)
        : [];

/** The `<…>` entities Slack would act on (links, mentions, pings). */
const entities = (s: string) => s.match(/<[^<>]*>/g) ?? [];

describe('escapeMrkdwn', () => {
  it('turns &, < and > into entities and leaves everything else alone', () => {
    expect(escapeMrkdwn(EVIL)).toBe(EVIL_ESCAPED);
    expect(escapeMrkdwn('&lt;')).toBe('&amp;lt;'); // already-escaped text shows as typed
    expect(escapeMrkdwn('*bold* _it_ `code` :emoji:')).toBe('*bold* _it_ `code` :emoji:');
    expect(entities(escapeMrkdwn(EVIL))).toEqual([]);
  });
});

describe('sourceLink', () => {
  it('links a plain http(s) URL and escapes & inside it', () => {
    expect(sourceLink('http://prometheus:9090/graph?g0.expr=up&g0.tab=1', 'source')).toBe(
      '<http://prometheus:9090/graph?g0.expr=up&amp;g0.tab=1|source>',
    );
    expect(sourceLink('https://p.example/graph', 'source')).toBe('<https://p.example/graph|source>');
  });

  it('does not link a URL with |, <, >, whitespace or control characters, or another scheme', () => {
    for (const url of [
      'https://evil/|Approve here> <!channel> <https://evil/',
      'https://evil/|Approve here',
      'https://evil/<!channel>',
      'https://evil/>',
      'https://evil/ x',
      'https://evil/\nx',
      'https://evil/\u0000',
      'javascript:alert(1)',
      'HTTPS-ish://x',
      '',
    ]) {
      expect(sourceLink(url, 'source'), url).toBeUndefined();
    }
  });
});

describe('alert rendering with hostile labels and annotations', () => {
  it('escapes the severity after upper-casing it, so <@u0lead> cannot become a live <@U0LEAD>', () => {
    expect(alertTitle(record())).toBe(`⚪ &lt;@U0LEAD&gt; · Evil ${EVIL_ESCAPED}`);
  });

  it('gives an unknown severity the plain icon, even one named like an Object property', () => {
    expect(alertTitle(record({ labels: { alertname: 'x', severity: 'constructor' } }))).toBe(
      '⚪ CONSTRUCTOR · x',
    );
    expect(alertTitle(record({ labels: { alertname: 'x', severity: 'Critical' } }))).toBe('🔴 CRITICAL · x');
  });

  it('an alert message: no entity from the alert survives in its blocks or its fallback text', () => {
    const r = renderAlert(record(), { now: T0 });
    for (const s of [...strings(r.blocks), r.text]) expect(entities(s), s).toEqual([]);
    const all = strings(r.blocks).join('\n');
    expect(all).toContain(`*sum ${EVIL_ESCAPED}*`);
    expect(all).toContain(`desc ${EVIL_ESCAPED}`);
    expect(all).not.toContain('source'); // the hostile generatorURL is not linked
    expect(r.text).toContain('&lt;@U0LEAD&gt; Evil &lt;!channel&gt;');
  });

  it('an alert message still links a normal source URL', () => {
    const r = renderAlert(record({ generatorURL: 'http://prom/graph?a=1&b=2' }), { now: T0 });
    expect(strings(r.blocks).flatMap(entities)).toEqual(['<http://prom/graph?a=1&amp;b=2|source>']);
  });

  it('a storm summary escapes its severity keys and keeps the line within Slack’s limits', () => {
    const bySeverity: Record<string, number> = { '<!channel>': 1, '<@U0EVIL>': 2, critical: 3 };
    for (let i = 0; i < 1_000; i++) bySeverity[`<!here>${i}`] = 1;
    const g: AlertGroup = {
      id: 'g1',
      groupKey: 'k',
      groupLabels: { alertname: EVIL },
      commonKeys: [],
      channel: 'C0ALERTS',
      fingerprints: ['a'],
      listed: 0,
      statuses: {},
      firing: 1,
      resolved: 0,
      bySeverity,
      updatedAt: T0,
      escalations: 0,
    };
    const r = renderGroup(g, T0);
    for (const s of [...strings(r.blocks), r.text]) {
      expect(entities(s), s).toEqual([]);
      expect(s.length).toBeLessThanOrEqual(3_000);
    }
    const all = strings(r.blocks).join('\n');
    expect(all).toContain('⚪ 1 &lt;!channel&gt; · ⚪ 2 &lt;@U0EVIL&gt; · 🔴 3 critical');
    expect(all).toContain(`\`alertname=${escapeMrkdwn(EVIL).slice(0, 20)}`);
  });

  it('a storm’s thread line escapes severity, name and labels', () => {
    const line = alertLine(record());
    expect(entities(line)).toEqual([]);
    expect(line).toMatch(/^⚪ &lt;@U0LEAD&gt; · Evil &lt;!channel&gt;/);
  });

  it('App Home escapes the open alerts’ titles and summaries', () => {
    const view = renderHome({ rolloutStatus: 'no rollout', inFlight: [], openAlerts: [record()], now: T0 });
    for (const s of strings(view.blocks)) expect(entities(s), s).toEqual([]);
    expect(strings(view.blocks).join('\n')).toContain(`· Evil ${EVIL_ESCAPED} sum ${EVIL_ESCAPED}`);
  });
});
