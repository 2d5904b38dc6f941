import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { ExecutionResult } from '../../src/commands/execution.js';
import type { CommandProgress } from '../../src/jobs/command-progress.js';
import { commandProcessor } from '../../src/jobs/command-worker.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { unitConfig } from './helpers.js';

/** The part of a BullMQ job the processor reads. */
const job = (requestId: string) =>
  ({
    data: {
      requestId,
      receivedAt: new Date().toISOString(),
      teamId: 'T0',
      user: { id: 'U0DEV', name: 'dev' },
      channelId: 'C0REL',
      responseUrl: 'http://127.0.0.1:1/response/x',
      text: 'show pre',
      parsed: { command: 'checklist', action: 'show', which: 'pre' },
    },
  }) as unknown as Job;

class MemoryProgress implements CommandProgress {
  readonly parts = new Map<string, Record<string, string>>();
  async get(id: string) {
    const p = this.parts.get(id) ?? {};
    return { result: p.result, delivered: p.delivered, audited: p.audited !== undefined };
  }
  async mark(id: string, part: string, value: string) {
    this.parts.set(id, { ...(this.parts.get(id) ?? {}), [part]: value });
  }
}

function setup(failures: { reply?: number; audit?: number }) {
  const effects: string[] = [];
  const replies: string[] = [];
  const audits: string[] = [];
  let replyFails = failures.reply ?? 0;
  let auditFails = failures.audit ?? 0;
  const process = commandProcessor({
    executor: async (): Promise<ExecutionResult> => {
      effects.push('posted the checklist');
      return { text: '📋 Pre-deployment checklist is in this channel', outcome: 'done' };
    },
    responder: {
      reply: async (_t, r) => {
        if (replyFails-- > 0) throw new Error('response_url 500 and chat.postEphemeral 500');
        replies.push(r.text);
        return 'response_url';
      },
    },
    audit: {
      record: async (e) => {
        if (auditFails-- > 0) throw new Error('Redis timed out');
        audits.push(`${e.outcome}: ${e.detail}`);
      },
    },
    progress: new MemoryProgress(),
    metrics: createMetrics(),
    logger: createLogger('silent'),
    config: unitConfig(),
  });
  return { process, effects, replies, audits };
}

/** Runs the processor as BullMQ would: again after each failure, up to `attempts`. */
async function runWithRetries(process: (j: Job) => Promise<unknown>, j: Job, attempts = 3) {
  for (let i = 1; ; i++) {
    try {
      return await process(j);
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
}

describe('a command job retried after its answer or audit failed', () => {
  it('does not repeat the command when only the answer failed', async () => {
    const { process, effects, replies, audits } = setup({ reply: 1 });
    await runWithRetries(process, job('r1'));
    expect(effects).toEqual(['posted the checklist']);
    expect(replies).toHaveLength(1);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatch(/^done: /);
  });

  it('does not repeat the command or the answer when only the audit failed', async () => {
    const { process, effects, replies, audits } = setup({ audit: 2 });
    await runWithRetries(process, job('r2'));
    expect(effects).toHaveLength(1);
    expect(replies).toHaveLength(1);
    expect(audits).toHaveLength(1);
  });

  it('runs each request on its own: a second request id is a second command', async () => {
    const { process, effects } = setup({});
    await process(job('r3'));
    await process(job('r4'));
    await process(job('r3'));
    expect(effects).toHaveLength(2);
  });
});
