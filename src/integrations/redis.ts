import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * Two kinds of connection, as BullMQ's production guide asks:
 * - `command`: fails fast when Redis is down so a slash command gets a clear "try again"; its
 *   commands are auto-pipelined (those issued in one event-loop turn share one write): under a burst
 *   of slash commands that is most of the ack path's system time. Never used for blocking commands;
 *   workers (and BullMQ's blocking reads) have the other kind;
 * - `blocking`: for workers, retries forever (maxRetriesPerRequest null) and resumes after a restart.
 */
export function createRedis(
  url: string,
  kind: 'command' | 'blocking',
  name: string,
  password?: string,
): Redis {
  const common: RedisOptions = {
    // From REDIS_PASSWORD(_FILE); a password in the URL is used when this is not set.
    ...(password ? { password } : {}),
    connectionName: `flightdeck-${name}`,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    lazyConnect: false,
  };
  const opts: RedisOptions =
    kind === 'command'
      ? {
          ...common,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
        }
      : { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
  const redis = new Redis(url, opts);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  redis.on('error', () => {});
  return redis;
}

type ScriptArg = string | number;

/**
 * A Lua script called by its SHA (EVALSHA), its text sent (EVAL) only when Redis does not know it
 * yet (first call, or after a restart): not the whole text with every call. Plain commands, not
 * ioredis's defineCommand: a command defined while an auto-pipeline is open crashes ioredis
 * (redis/ioredis#1931, "results[i] is not iterable"), and the command connection auto-pipelines.
 */
export function luaScript(
  numberOfKeys: number,
  lua: string,
): (redis: Redis, ...keysThenArgs: ScriptArg[]) => Promise<unknown> {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, ...keysThenArgs) => {
    try {
      return await redis.evalsha(sha, numberOfKeys, ...keysThenArgs);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return redis.eval(lua, numberOfKeys, ...keysThenArgs);
    }
  };
}

/** Rejects after `ms` so a dead dependency never holds up a request. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

/** Resolves once the connection is ready (or after `ms`, to let callers report the failure). */
export function waitReady(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
