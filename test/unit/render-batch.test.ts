import { describe, expect, it } from 'vitest';
import { releasePolicy } from '../../src/config/schema.js';
import { memberRefreshMs } from '../../src/releases/batch-message.js';
import type { Batch } from '../../src/releases/batch-store.js';
import { planSteps } from '../../src/releases/plan-steps.js';
import { chunkLines, MAX_LINES, memberState, renderBatch } from '../../src/releases/render-batch.js';
import type { Release } from '../../src/releases/schema.js';
import { blocksError } from '../../tools/slack-emulator/block-kit.js';
import { at, release, unitConfig } from './helpers.js';

const plan = (svc: string) =>
  planSteps(releasePolicy(unitConfig(), 'staging'), {
    swarmService: `fdunit-staging-${svc}-green`,
    colour: 'green',
    image: 'flightdeck/testapp:1.2.0',
  });

/** A member of the batch at `stepIndex` of its plan (steps before done, that one as given). */
function member(svc: string, extra: Partial<Release> = {}, current: Partial<Release['steps'][number]> = {}) {
  const stepIndex = extra.stepIndex ?? 0;
  const steps = plan(svc).map((s, i) =>
    i < stepIndex
      ? { ...s, status: 'done' as const }
      : i === stepIndex
        ? { ...s, status: 'running' as const, ...current }
        : s,
  );
  return release({
    id: `rel-staging-${svc}-x`,
    service: svc,
    steps,
    stepIndex,
    batch: { id: 'batch-1' },
    ...extra,
  });
}

function batch(services: string[], extra: Partial<Batch> = {}): Batch {
  return {
    id: 'batch-1',
    environment: 'staging',
    version: '1.2.0',
    channel: 'C0RELEASES',
    requestedBy: { id: 'U0DEV', name: 'dev' },
    createdAt: at('2026-01-01T10:00:00Z'),
    services,
    sequential: false,
    members: Object.fromEntries(services.map((s) => [s, `rel-staging-${s}-x`])),
    refused: [],
    ...extra,
  };
}

type Block = { type: string; text?: { text: string }; elements?: Array<{ text?: string }> };
const textOf = (v: { blocks: unknown[] }) =>
  (v.blocks as Block[])
    .flatMap((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text ?? '')])
    .join('\n');
const lineOf = (text: string, svc: string) =>
  text.split('\n').find((l) => l.includes(`*${svc}*`) || l.includes(`|${svc}>`));

describe('renderBatch', () => {
  // Step indexes in the default plan: 0 update, 1 converge, 2 health, 3 shift 10, 4 soak 10, …
  const releases = new Map<string, Release | undefined>([
    ['api', member('api', { stepIndex: 4 }, { status: 'waiting', due: at('2026-01-01T10:05:00Z') })],
    ['web', member('web', { stepIndex: 1 })],
    ['db', member('db', { status: 'completed', stepIndex: 13, weights: { blue: 0, green: 100 } })],
    ['jobs', member('jobs', { status: 'rolled_back', stepIndex: 6, weights: { blue: 100, green: 0 } })],
    ['mail', member('mail', { status: 'awaiting_approval' })],
  ]);
  const b = batch(['api', 'web', 'db', 'jobs', 'mail']);

  it('heads the message with how many completed, and counts every state at a glance', () => {
    const v = renderBatch(b, releases);
    const text = textOf(v);
    expect(text).toContain('🚀 Releasing *5 services* `1.2.0` to *staging*: 1/5 completed');
    expect(text).toContain(
      '🔄 1 running · ⏳ 1 soaking · 🟡 1 awaiting approval · ✅ 1/5 completed · ↩️ 1 rolled back',
    );
    expect(v.text).toBe('🚀 Releasing 5 services 1.2.0 to staging: 1/5 completed');
    expect(text).toContain('*Needs attention:* jobs (rolled back), mail (awaiting approval)');
  });

  it('has one line per service: state, step, and share of traffic on the new colour', () => {
    const text = textOf(renderBatch(b, releases));
    expect(lineOf(text, 'api')).toBe('⏳ *api* — soaking at 10% (5/13) · 0% green');
    expect(lineOf(text, 'web')).toBe('🔄 *web* — converging (2/13) · 0% green');
    expect(lineOf(text, 'db')).toBe('✅ *db* — completed · 100% green');
    expect(lineOf(text, 'jobs')).toBe('↩️ *jobs* — rolled back · 0% green');
    expect(lineOf(text, 'mail')).toBe('🟡 *mail* — awaiting approval · 0% green');
  });

  it("links each service to its release's message in the batch thread", () => {
    const withMsg = new Map(releases);
    withMsg.set(
      'api',
      member('api', {
        stepIndex: 2,
        message: { channel: 'C0RELEASES', ts: '1700000001.000200', thread: '1700000000.000100' },
      }),
    );
    const text = textOf(
      renderBatch(
        batch(b.services, { message: { channel: 'C0RELEASES', ts: '1700000000.000100' } }),
        withMsg,
        {
          workspaceUrl: 'https://acme.slack.com/',
        },
      ),
    );
    expect(lineOf(text, 'api')).toBe(
      '🔄 <https://acme.slack.com/archives/C0RELEASES/p1700000001000200?thread_ts=1700000000.000100&amp;cid=C0RELEASES|api> — health checks (3/13) · 0% green',
    );
    expect(text).toContain("each release's steps and buttons are in this thread");
  });

  it('ends saying all completed, or how many did not', () => {
    const done = new Map(
      ['a', 'b'].map((s) => [
        s,
        member(s, { status: 'completed', stepIndex: 13, weights: { blue: 0, green: 100 } }),
      ]),
    );
    expect(renderBatch(batch(['a', 'b']), done).text).toBe(
      '✅ Released 2 services 1.2.0 to staging: 2/2 completed',
    );
    done.set('b', member('b', { status: 'failed', stepIndex: 5 }));
    const v = renderBatch(batch(['a', 'b']), done);
    expect(v.text).toBe('⚠️ Batch finished: 1/2 completed of 2 services 1.2.0 to staging');
    expect(textOf(v)).toContain('🚨 1 failed');
  });

  it('lists refused services with the first line of why, as the command answered it', () => {
    const why = 'web in staging is locked by rel-x: <@U0LEAD> is releasing 1.1.0 since 2026-01-01 10:00 UTC';
    const v = renderBatch(
      batch(['api', 'web'], {
        members: { api: 'rel-staging-api-x' },
        refused: [{ service: 'web', reason: `${why}\nsecond line` }],
      }),
      releases,
    );
    const text = textOf(v);
    expect(text).toContain(`⛔ *web* — ${why}`);
    expect(text).not.toContain('second line');
    expect(text).toContain('⛔ 1 refused');
    expect(text).toContain('*1 service* `1.2.0`');
  });

  it('escapes what it shows of names and the version', () => {
    const odd = batch(['a<b>&c'], { version: '1.2.0<x>', members: { 'a<b>&c': 'rel-staging-a-x' } });
    const text = textOf(renderBatch(odd, new Map([['a<b>&c', member('a')]])));
    expect(text).toContain('*a&lt;b&gt;&amp;c*');
    expect(text).toContain('`1.2.0&lt;x&gt;`');
    expect(text).not.toContain('<b>');
  });

  it('stays within Block Kit limits for 50 services with links, and sums up past its cap', () => {
    const names = Array.from(
      { length: 50 },
      (_, i) => `svc-${String(i + 1).padStart(2, '0')}-with-a-long-name`,
    );
    const msg = (i: number) => ({ channel: 'C0RELEASES', ts: `1700000001.${String(i).padStart(6, '0')}` });
    const many = new Map(names.map((s, i) => [s, member(s, { stepIndex: i % 13, message: msg(i) })]));
    const v = renderBatch(batch(names, { message: msg(999) }), many, {
      workspaceUrl: 'https://acme.slack.com',
    });
    expect(blocksError(v.blocks)).toBeUndefined();
    for (const s of names) expect(lineOf(textOf(v), s)).toBeDefined();

    const lots = Array.from({ length: MAX_LINES + 30 }, (_, i) => `s${i}`);
    const big = renderBatch(batch(lots), new Map(lots.map((s) => [s, member(s)])));
    expect(blocksError(big.blocks)).toBeUndefined();
    expect(textOf(big)).toContain('…and 30 more: `/deploy status` lists every release in flight');
  });

  it('counts a missing record as gone, not as a state', () => {
    const text = textOf(renderBatch(batch(['api', 'lost']), new Map([['api', releases.get('api')]])));
    expect(lineOf(text, 'lost')).toBe('▫️ *lost* — record gone');
  });
});

describe('memberState', () => {
  it('tells soaking from running, and folds the ways of never starting into one', () => {
    expect(memberState(member('a', { stepIndex: 4 }, { status: 'waiting' }))).toBe('soaking');
    expect(memberState(member('a', { stepIndex: 3 }))).toBe('running');
    for (const status of ['rejected', 'expired', 'cancelled'] as const)
      expect(memberState(member('a', { status }))).toBe('stopped');
  });
});

describe('chunkLines', () => {
  it('never splits a line and keeps each chunk within the limit', () => {
    expect(chunkLines(['aaaa', 'bbbb', 'cc'], 9)).toEqual(['aaaa\nbbbb', 'cc']);
    expect(chunkLines(['x'.repeat(12)], 5)).toEqual(['xxxx…']);
  });
});

describe('memberRefreshMs', () => {
  it('spaces members’ refreshes so that together they use about half the chat.update budget', () => {
    expect(memberRefreshMs(1)).toBe(0);
    expect(memberRefreshMs(5)).toBe(13_000);
    expect(memberRefreshMs(50)).toBe(120_000);
  });
});
