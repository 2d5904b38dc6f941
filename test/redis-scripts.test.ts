import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../src/audit/audit-log.js';
import { createRedis, luaScript, waitReady } from '../src/integrations/redis.js';
import { enqueueOnce } from '../src/listeners/enqueue-command.js';
import { TestRedis } from './helpers/redis-server.js';

// The command connection auto-pipelines. ioredis crashes the process when a Lua command is defined
// with defineCommand while an auto-pipeline is open (redis/ioredis#1931): a web replica died at its
// first /deploy when another command shared that event-loop turn. Scripts must work on a fresh
// connection, in the same turn as other commands, and again after Redis forgot them.
const redis = new TestRedis();
beforeAll(async () => {
  await redis.start();
});
afterAll(async () => {
  await redis.destroy();
});

describe('Lua scripts on the auto-pipelined command connection', () => {
  it('queue and audit the first command of a fresh connection while other commands share its turn', async () => {
    const conn = createRedis(redis.url, 'command', 'test-scripts');
    const queue = new Queue('fdscripts-commands', { connection: conn, prefix: 'fdscripts' });
    try {
      expect(await waitReady(conn, 10_000)).toBe(true);
      const audit = new AuditLog(conn, 'fdscripts');
      const request = { requestId: 'cmd-first', receivedAt: new Date().toISOString() };
      // In one turn: a plain command opens the auto-pipeline, then the first enqueue (its claim script).
      const other = conn.get('fdscripts:data:unrelated');
      const queued = enqueueOnce(
        { redis: conn, prefix: 'fdscripts', audit },
        request,
        [{ queue, name: 'deploy', data: { requestId: 'cmd-first' }, jobId: 'cmd-first' }],
        { userId: 'U0DEV', userName: 'dev', command: '/deploy', text: 'status', requestId: 'cmd-first' },
      );
      await expect(Promise.all([other, queued])).resolves.toEqual([null, 'queued']);
      expect((await queue.getJob('cmd-first'))?.data).toEqual({ requestId: 'cmd-first' });
      const entries = await conn.xrange(audit.key, '-', '+');
      expect(entries.map(([, fields]) => fields[fields.indexOf('outcome') + 1])).toEqual(['accepted']);
      // Slack's retry of the same request: not queued or audited again.
      expect(
        await enqueueOnce(
          { redis: conn, prefix: 'fdscripts', audit },
          request,
          [{ queue, name: 'deploy', data: { requestId: 'cmd-first' }, jobId: 'cmd-first' }],
          { userId: 'U0DEV', userName: 'dev', command: '/deploy', text: 'status', requestId: 'cmd-first' },
        ),
      ).toBe('duplicate');
      expect(await conn.xlen(audit.key)).toBe(1);
    } finally {
      await queue.close();
      conn.disconnect();
    }
  });

  it('run again after Redis dropped its script cache (a restart), sending the text once more', async () => {
    const conn = createRedis(redis.url, 'command', 'test-scripts-flush');
    try {
      expect(await waitReady(conn, 10_000)).toBe(true);
      const incr = luaScript(1, "return redis.call('incr', KEYS[1])");
      const [a, b] = await Promise.all([incr(conn, 'fdscripts:n'), conn.get('fdscripts:n')]);
      expect(a).toBe(1);
      expect(b === null || b === '1').toBe(true);
      await conn.script('FLUSH');
      expect(await incr(conn, 'fdscripts:n')).toBe(2);
      // A script error is the script's, not taken for a missing script.
      const broken = luaScript(0, "return redis.call('no-such-command')");
      await expect(broken(conn)).rejects.toThrow(/Unknown Redis command|unknown command/i);
    } finally {
      conn.disconnect();
    }
  });
});
