import { describe, expect, it } from 'vitest';
import { soak } from '../../src/releases/steps/soak.js';
import { at, fakeContext, release, step } from './helpers.js';

const NOW = at('2026-01-01T12:00:00Z');
const ctx = fakeContext({ now: () => NOW });

describe('soak step', () => {
  it('waits for the soak time from now when it starts, naming the end in UTC', async () => {
    const out = await soak(ctx, release(), step('soak', { soakMs: 600_000 }));
    expect(out).toEqual({ kind: 'wait', until: NOW + 600_000, detail: 'until 12:10:00 UTC' });
  });

  it('keeps a persisted due time (a restart resumes the same soak, not a new one)', async () => {
    const due = NOW + 60_000;
    const out = await soak(ctx, release(), step('soak', { soakMs: 3_600_000, due }));
    expect(out).toMatchObject({ kind: 'wait', until: due });
  });

  it('is done once the due time has come', async () => {
    expect(await soak(ctx, release(), step('soak', { soakMs: 600_000, due: NOW }))).toEqual({
      kind: 'done',
      detail: 'soaked',
    });
    expect((await soak(ctx, release(), step('soak', { due: NOW - 1 }))).kind).toBe('done');
  });

  it('is done at once with no soak time', async () => {
    expect((await soak(ctx, release(), step('soak', { soakMs: 0 }))).kind).toBe('done');
  });
});
