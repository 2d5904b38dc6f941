import { describe, expect, it } from 'vitest';
import { FlightdeckConfig } from '../../src/config/schema.js';
import { checkDeployGuards } from '../../src/releases/deploy-guards.js';
import type { TrailEntry, VersionTrail } from '../../src/releases/version-trail.js';
import { at, fakeContext, rawConfig } from './helpers.js';

const NOW = at('2026-01-01T12:00:00Z');

function ctxWith(extra: Record<string, unknown>, gate?: string) {
  const raw = { ...rawConfig(), pipeline: ['staging', 'production'], ...extra };
  const trail: Partial<VersionTrail> = {
    // api 1.4.2 completed in staging an hour ago; web never did.
    trail: async (svc: string): Promise<Record<string, TrailEntry>> =>
      svc === 'api' ? { staging: { releaseId: 'rel-s-api', completedAt: NOW - 3_600_000 } } : {},
    running: async (svc: string) => ({
      staging: { version: svc === 'api' ? '1.4.2' : '1.4.1', since: NOW - 86_400_000 },
    }),
    lastCritical: async () => undefined,
  };
  return fakeContext({
    config: FlightdeckConfig.parse(raw),
    trail,
    gate: async () => gate,
    postChecklistOpen: undefined,
  });
}

describe('the rules a deploy passes before anything is locked', () => {
  it('/deploy all checks each service: only the one that never completed before is refused', async () => {
    const report = await checkDeployGuards(ctxWith({}), {
      environment: 'production',
      services: ['api', 'web'],
      version: '1.4.2',
    });
    expect(report.refusals).toEqual([
      {
        kind: 'promotion',
        service: 'web',
        reason: 'web: 1.4.2 never completed in staging; it runs 1.4.1 since 1 day.',
      },
    ]);
    expect(report.trails.get('api')).toBe('staging ✅ 1 hour ago');
    expect(report.trails.get('web')).toBe('staging —');
  });

  it('the first stage takes any version; a freeze and the checklist gate refuse the whole environment', async () => {
    const freezes = [{ name: 'New year', from: '2025-12-31', until: '2026-01-02' }];
    const report = await checkDeployGuards(
      ctxWith({ freezes }, 'the pre-deployment checklist is not complete'),
      {
        environment: 'staging',
        services: ['api', 'web'],
        version: '9.9.9',
      },
    );
    expect(report.refusals.map((r) => [r.kind, r.service])).toEqual([
      ['freeze', undefined],
      ['checklist', undefined],
    ]);
    expect(report.refusals[0]?.reason).toContain('staging is frozen (New year) until Sat 3 Jan 00:00');
  });
});
