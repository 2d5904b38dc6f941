import type { Redis } from 'ioredis';
import { withRedisLock } from '../integrations/redis-lock.js';
import { type ServiceState, ServiceState as ServiceStateSchema } from './schema.js';

export const initialState = (): ServiceState => ({
  live: 'blue',
  weights: { blue: 100, green: 0 },
  images: {},
  lastGood: { colour: 'blue' },
  updatedAt: new Date(0).toISOString(),
});

/** Live colour, weights, last good image and the release lock of each (environment, service). */
export class ServiceStateStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly onLockWait: (ms: number) => void = () => {},
  ) {}

  private key(env: string, svc: string) {
    return `${this.prefix}:data:service:${env}:${svc}`;
  }

  async get(env: string, svc: string): Promise<ServiceState> {
    const raw = await this.redis.get(this.key(env, svc));
    return raw ? ServiceStateSchema.parse(JSON.parse(raw)) : initialState();
  }

  async getMany(pairs: Array<[string, string]>): Promise<ServiceState[]> {
    if (pairs.length === 0) return [];
    const raws = await this.redis.mget(pairs.map(([e, s]) => this.key(e, s)));
    return raws.map((r) => (r ? ServiceStateSchema.parse(JSON.parse(r)) : initialState()));
  }

  /** Frees the release lock, if `releaseId` still holds it. */
  async unlock(env: string, svc: string, releaseId: string): Promise<void> {
    await this.mutate(env, svc, (s) =>
      s.inFlight?.releaseId === releaseId
        ? { state: { ...s, inFlight: undefined }, result: undefined }
        : { result: undefined },
    );
  }

  /** Changes what the lock tells others (e.g. "paused release 1.2.0"), if `releaseId` still holds it. */
  async describeLock(env: string, svc: string, releaseId: string, what: string): Promise<void> {
    await this.mutate(env, svc, (s) =>
      s.inFlight?.releaseId === releaseId
        ? { state: { ...s, inFlight: { ...s.inFlight, what } }, result: undefined }
        : { result: undefined },
    );
  }

  /**
   * Changes one service's state under its mutex. `fn` returns the new state (or undefined for
   * no change) and a result; `after` runs still holding the mutex (e.g. applying nginx).
   */
  async mutate<T>(
    env: string,
    svc: string,
    fn: (
      s: ServiceState,
    ) => { state?: ServiceState; result: T } | Promise<{ state?: ServiceState; result: T }>,
  ): Promise<T> {
    return withRedisLock(
      this.redis,
      `${this.key(env, svc)}:mutex`,
      async () => {
        const cur = await this.get(env, svc);
        const { state, result } = await fn(structuredClone(cur));
        if (state)
          await this.redis.set(
            this.key(env, svc),
            JSON.stringify({ ...state, updatedAt: new Date().toISOString() }),
          );
        return result;
      },
      { ttlMs: 10_000, waitMs: 15_000, onWait: this.onLockWait },
    );
  }
}
