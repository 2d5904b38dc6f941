import { describe, expect, it } from 'vitest';
import { createMetrics, SEVERITY_LABELS, severityLabel } from '../../src/observability/metrics.js';

describe('severityLabel', () => {
  it('keeps the known severities, case and surrounding space aside', () => {
    expect(severityLabel('critical')).toBe('critical');
    expect(severityLabel(' Warning ')).toBe('warning');
    expect(severityLabel('INFO')).toBe('info');
    expect(severityLabel('none')).toBe('none');
  });

  it('calls a missing or empty severity none, and anything else other', () => {
    expect(severityLabel(undefined)).toBe('none');
    expect(severityLabel('')).toBe('none');
    expect(severityLabel('page')).toBe('other');
    expect(severityLabel('critical2')).toBe('other');
    expect(severityLabel('<@U0LEAD>')).toBe('other');
    expect(severityLabel('constructor')).toBe('other');
    expect(severityLabel('__proto__')).toBe('other');
  });

  it('1,000 distinct hostile severities give at most the bounded set of series in /metrics', async () => {
    const metrics = createMetrics();
    const hostile = Array.from({ length: 1_000 }, (_, i) => `sev-${i}"\n{<!channel>}\\${'x'.repeat(i % 50)}`);
    for (const s of [...hostile, 'critical', 'warning', 'info', undefined]) {
      metrics.alertsReceived.inc({ severity: severityLabel(s), status: 'firing' });
      metrics.alertEscalations.inc({ severity: severityLabel(s) });
      metrics.alertAck.observe({ severity: severityLabel(s) }, 12);
    }
    const text = await metrics.registry.metrics();
    const values = (name: string) =>
      new Set(
        [...text.matchAll(new RegExp(`^${name}\\{[^}]*severity="([^"]*)"`, 'gm'))].map((m) => m[1] as string),
      );
    for (const name of [
      'flightdeck_alerts_received_total',
      'flightdeck_alert_escalations_total',
      'flightdeck_alert_time_to_acknowledge_seconds_count',
    ]) {
      const seen = values(name);
      expect([...seen].sort(), name).toEqual([...SEVERITY_LABELS].sort());
    }
    expect(text).toContain('flightdeck_alerts_received_total{severity="other",status="firing"} 1000');
    expect(text).not.toContain('sev-');
  });
});
