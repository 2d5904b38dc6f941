import type { KnownBlock } from '@slack/types';
import { describe, expect, it } from 'vitest';
import type { ChecklistMessage } from '../../src/checklists/checklist-store.js';
import { type ChecklistRefreshDeps, refreshChecklist } from '../../src/jobs/outbox-worker.js';
import { createLogger } from '../../src/observability/logger.js';

const key = (m: ChecklistMessage) => `${m.channel}|${m.ts}`;
const byNewest = (ms: ChecklistMessage[]) => [...ms].sort((a, b) => Number(b.ts) - Number(a.ts));

/** ChecklistStore's message bookkeeping in memory (cap 3): shown, moved, and the render each shows. */
class MemoryStore {
  shown = new Map<string, ChecklistMessage>();
  movedSet = new Map<string, ChecklistMessage>();
  renders = new Map<string, { version: string; at: number }>();
  /** Runs once, when the refresh asks for the moved messages (a post landing at that moment). */
  beforeMoved?: () => void;
  async addMessage(_id: string, channel: string, ts: string) {
    this.shown.set(`${channel}|${ts}`, { channel, ts });
    return this.trim();
  }
  async trim() {
    const old = byNewest([...this.shown.values()]).slice(3);
    for (const m of old) {
      this.shown.delete(key(m));
      this.movedSet.set(key(m), m);
      this.renders.delete(key(m));
    }
    return old.length;
  }
  async messages() {
    return byNewest([...this.shown.values()]);
  }
  async moved() {
    const hook = this.beforeMoved;
    this.beforeMoved = undefined;
    hook?.();
    return byNewest([...this.movedSet.values()]);
  }
  async forgetMoved(_id: string, m: ChecklistMessage) {
    this.movedSet.delete(key(m));
  }
  async forget(_id: string, m: ChecklistMessage) {
    this.shown.delete(key(m));
    this.renders.delete(key(m));
  }
  async rendered() {
    return new Map(this.renders);
  }
  async setRendered(_id: string, m: ChecklistMessage, version: string) {
    if (this.shown.has(key(m))) this.renders.set(key(m), { version, at: Date.now() });
  }
}

/** Three messages showing the checklist before a tick; `at` orders who waited longest. */
function setup(at: Record<string, number>) {
  const store = new MemoryStore();
  const slack = new Map<string, string[]>();
  for (const ts of ['1.000001', '1.000002', '1.000003']) {
    store.shown.set(`C1|${ts}`, { channel: 'C1', ts });
    store.renders.set(`C1|${ts}`, { version: 'before-the-tick', at: at[ts] ?? 0 });
    slack.set(ts, ['checklist 0/2']);
  }
  /** What a checklist-post does: the message, recorded (a fourth moves the oldest). */
  const post = (ts: string) => {
    slack.set(ts, ['checklist 1/2']);
    void store.addMessage('small', 'C1', ts);
  };
  let onUpdate: ((ts: string) => void) | undefined;
  const deps: ChecklistRefreshDeps = {
    checklists: {
      render: async () => ({ text: 'checklist 1/2', blocks: [] as KnownBlock[] }),
      store: store as unknown as ChecklistRefreshDeps['checklists']['store'],
      refresh: async () => {},
    },
    update: async (m, view) => {
      slack.get(m.ts)?.push(view.text.startsWith('📋 This checklist moved') ? 'pointer' : view.text);
      onUpdate?.(m.ts);
    },
    workspaceUrl: async () => 'https://example.slack.com/',
    logger: createLogger('silent'),
  };
  return {
    store,
    slack,
    post,
    deps,
    onFirstUpdate: (f: (ts: string) => void) => {
      onUpdate = (ts) => {
        onUpdate = undefined;
        f(ts);
      };
    },
  };
}

describe('checklist refresh: a message moved past the cap while a refresh runs', () => {
  it('moved between the look at the shown messages and at the moved ones: pointed, and not overwritten after', async () => {
    const { store, slack, post, deps } = setup({});
    store.beforeMoved = () => post('2.000004');
    await refreshChecklist(deps, 'small');
    // The oldest moved (a fourth was posted): its last content is the pointer, for good.
    expect(slack.get('1.000001')).toEqual(['checklist 0/2', 'pointer']);
    expect(slack.get('1.000002')?.at(-1)).toBe('checklist 1/2');
    expect(slack.get('1.000003')?.at(-1)).toBe('checklist 1/2');
    expect(store.movedSet.size).toBe(0);
  });

  it('moved while the shown ones are updated: skipped by this run, pointed by the run the move queued', async () => {
    // The oldest message waited least, so the post lands before the refresh reaches it.
    const { store, slack, post, deps, onFirstUpdate } = setup({
      '1.000001': 3,
      '1.000002': 1,
      '1.000003': 2,
    });
    onFirstUpdate(() => post('2.000004'));
    await refreshChecklist(deps, 'small');
    expect(slack.get('1.000001')).toEqual(['checklist 0/2']);
    await refreshChecklist(deps, 'small');
    expect(slack.get('1.000001')).toEqual(['checklist 0/2', 'pointer']);
    for (const ts of ['1.000002', '1.000003', '2.000004'])
      expect(slack.get(ts)?.at(-1)).toBe('checklist 1/2');
    expect(store.movedSet.size).toBe(0);
  });
});
