import { describe, expect, it } from 'vitest';
import type { ExecutionContext } from '../../src/commands/execution.js';
import type { ReleaseActionCommand } from '../../src/commands/schema.js';
import { releaseAction } from '../../src/releases/release-commands.js';
import type { Release } from '../../src/releases/schema.js';
import { fakeContext, release, step } from './helpers.js';

const LEAD: ExecutionContext = {
  userId: 'U0LEAD',
  userName: 'lead',
  requestId: 'req-1',
  receivedAt: 0,
  reply: { responseUrl: 'http://127.0.0.1:9/', channelId: 'C0RELEASES', userId: 'U0LEAD' },
};

const APPROVE: ReleaseActionCommand = { command: 'release', action: 'approve', releaseId: 'rel-b' };

/** Two releases of one sequential batch: `first` (in the given status), then `second` awaiting approval. */
function batch(firstStatus: Release['status']) {
  const records = new Map<string, Release>();
  const first = release({
    id: 'rel-a',
    service: 'api',
    status: firstStatus,
    batch: { id: 'batch-1', next: 'rel-b' },
  });
  const second = release({
    id: 'rel-b',
    service: 'web',
    status: 'awaiting_approval',
    approvalDeadline: Date.parse('2026-01-01T13:00:00Z'),
    steps: [step('update', { status: 'pending' })],
    batch: { id: 'batch-1', after: 'rel-a' },
  });
  for (const r of [first, second]) records.set(r.id, r);
  const woken: string[] = [];
  const ctx = fakeContext({
    store: {
      get: async (id: string) => structuredClone(records.get(id)),
      update: async (id: string, fn: (r: Release) => Release | undefined) => {
        const cur = records.get(id) as Release;
        const next = fn(structuredClone(cur));
        if (next) records.set(id, next);
        return structuredClone(next ?? cur);
      },
    },
    jobs: {
      wake: async (id: string) => {
        woken.push(id);
      },
      start: async () => {},
    },
    publish: async () => {},
  });
  return { ctx, records, woken };
}

describe('approving a release of a sequential batch', () => {
  it('queues it behind the release before it while that one has not completed', async () => {
    const { ctx, records, woken } = batch('running');
    const out = await releaseAction(ctx, APPROVE, LEAD);
    expect(out.text).toBe('✅ Approved `rel-b`. It starts once `rel-a` (api) has completed.');
    expect(records.get('rel-b')).toMatchObject({ status: 'queued', approvedBy: { id: 'U0LEAD' } });
    expect(records.get('rel-b')?.steps[0]?.status).toBe('pending');
    expect(woken).toEqual([]);
  });

  it('starts it at once (its job woken) once the release before it has completed', async () => {
    const { ctx, records, woken } = batch('completed');
    const out = await releaseAction(ctx, APPROVE, LEAD);
    expect(out.text).toBe('✅ Approved `rel-b`.');
    expect(records.get('rel-b')?.status).toBe('running');
    expect(records.get('rel-b')?.steps[0]?.status).toBe('running');
    expect(woken).toEqual(['rel-b']);
  });
});
