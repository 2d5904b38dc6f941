import { describe, expect, it } from 'vitest';
import { PromotionRule } from '../../src/config/pipeline-schema.js';
import {
  type PromotionFacts,
  previousStage,
  promotionRefusal,
  trailLine,
} from '../../src/releases/promotion.js';

const H = 3_600_000;
const NOW = Date.UTC(2026, 11, 2, 12);
const PIPELINE = ['staging', 'preproduction', 'production'];
const facts = (over: Partial<PromotionFacts>): PromotionFacts => ({
  environment: 'production',
  service: 'api',
  version: '1.4.2',
  previous: 'preproduction',
  trail: {},
  now: NOW,
  ...over,
});

describe('promotion between the pipeline stages', () => {
  it('the previous stage comes from the pipeline; its first stage and outsiders have none', () => {
    expect(previousStage(PIPELINE, 'production')).toBe('preproduction');
    expect(previousStage(PIPELINE, 'staging')).toBeUndefined();
    expect(previousStage(PIPELINE, 'qa')).toBeUndefined();
    expect(previousStage(undefined, 'production')).toBeUndefined();
  });

  it('refuses a version that never completed before, naming what runs there', () => {
    const why = promotionRefusal(facts({ runningThere: { version: '1.4.1', since: NOW - 48 * H } }));
    expect(why).toBe('1.4.2 never completed in preproduction; it runs 1.4.1 since 2 days.');
  });

  it('refuses a version rolled back there since, and allows one that completed', () => {
    const rolled = {
      releaseId: 'r1',
      completedAt: NOW - 5 * H,
      rolledBackAt: NOW - H,
      rolledBackBy: 'U0ONCALL',
    };
    expect(promotionRefusal(facts({ trail: { preproduction: rolled } }))).toContain(
      'was rolled back in preproduction 1 hour ago by <@U0ONCALL>',
    );
    expect(
      promotionRefusal(facts({ trail: { preproduction: { releaseId: 'r1', completedAt: NOW - 5 * H } } })),
    ).toBeUndefined();
  });

  it('applies the environment rule: time live, critical alerts since, post checklist', () => {
    const rule = PromotionRule.parse({ minTimeLive: '24h', noCriticalAlerts: true, postChecklist: true });
    const trail = { preproduction: { releaseId: 'r1', completedAt: NOW - 6 * H } };
    const why = promotionRefusal(
      facts({
        rule,
        trail,
        runningThere: { version: '1.4.2', since: NOW - 6 * H },
        lastCritical: { at: NOW - 2 * H, name: 'HighErrorRate' },
        postChecklistOpen: '3 of 7 open',
      }),
    );
    expect(why).toContain('1.4.2 is live in preproduction for 6 hours; production needs 1 day (in 18 hours)');
    expect(why).toContain('critical alert HighErrorRate fired for api in preproduction 2 hours ago');
    expect(why).toContain('post-deployment checklist in preproduction is not complete (3 of 7 open)');
    // An alert before it went live does not count; a day later it may go.
    expect(
      promotionRefusal(
        facts({
          rule,
          trail,
          now: NOW + 20 * H,
          lastCritical: { at: NOW - 7 * H, name: 'HighErrorRate' },
        }),
      ),
    ).toBeUndefined();
  });

  it('a version replaced before its time was up does not count as live since', () => {
    const rule = PromotionRule.parse({ minTimeLive: '24h' });
    const why = promotionRefusal(
      facts({
        rule,
        trail: { preproduction: { releaseId: 'r1', completedAt: NOW - 30 * H } },
        runningThere: { version: '1.4.3', since: NOW - 28 * H },
      }),
    );
    expect(why).toContain('was live in preproduction for 2 hours before 1.4.3 replaced it');
  });

  it('the trail line shows each stage up to the one being entered', () => {
    const trail = {
      staging: { releaseId: 'a', completedAt: NOW - 72 * H },
      preproduction: { releaseId: 'b', completedAt: NOW - 24 * H },
    };
    expect(trailLine(PIPELINE, trail, NOW, 'production')).toBe(
      'staging ✅ 3 days ago · preproduction ✅ 1 day ago',
    );
    expect(trailLine(PIPELINE, trail, NOW)).toBe(
      'staging ✅ 3 days ago · preproduction ✅ 1 day ago · production —',
    );
  });
});
