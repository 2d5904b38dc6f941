import type { Redis } from 'ioredis';
import type { Colour, FlightdeckConfig } from '../config/schema.js';
import { httpCheck } from '../integrations/http-check.js';
import { type ApplyResult, type NginxDriver, type Upstream } from '../integrations/nginx.js';
import { withRedisLock } from '../integrations/redis-lock.js';
import type { ServiceState, Weights } from './schema.js';
import type { ServiceStateStore } from './service-state-store.js';
import { servingColours } from './weights.js';

export class TrafficRefused extends Error {
  readonly code = 'traffic_refused';
}

/** nginx weights from flightdeck's state: every change goes state → render → nginx -t → reload. */
export class Traffic {
  constructor(
    private readonly config: FlightdeckConfig,
    private readonly states: ServiceStateStore,
    private readonly nginx: NginxDriver,
    private readonly redis: Redis,
    private readonly onApplied: (env: string, svc: string, w: Weights) => void = () => {},
  ) {}

  upstreamName(env: string, svc: string): string {
    return `${this.config.nginx.upstreamPrefix}_${env}_${svc}`.replace(/-/g, '_');
  }

  /** Renders every configured service's weights and applies them; one writer at a time across replicas. */
  async apply(opts: { keepOnReloadFailure?: boolean } = {}): Promise<ApplyResult> {
    return withRedisLock(
      this.redis,
      `${this.config.redis.prefix}:data:nginx:mutex`,
      async () => {
        const pairs = this.pairs();
        const states = await this.states.getMany(pairs);
        const upstreams: Upstream[] = pairs.map(([env, svc], i) => {
          const s = states[i] as ServiceState;
          const def = this.config.environments[env]?.services[svc];
          return {
            name: this.upstreamName(env, svc),
            servers: (['blue', 'green'] as const).map((colour) => ({
              colour,
              address: def?.[colour].address ?? '127.0.0.1:1',
              weight: s.weights[colour],
            })),
          };
        });
        const result = await this.nginx.apply(upstreams, opts);
        pairs.forEach(([env, svc], i) => this.onApplied(env, svc, (states[i] as ServiceState).weights));
        return result;
      },
      { ttlMs: 30_000, waitMs: 60_000 },
    );
  }

  /**
   * Sets one service's weights and applies them. `guard` may refuse (returns why) after seeing the
   * current state; if nginx refuses the change, the previous weights are restored.
   */
  async setWeights(
    env: string,
    svc: string,
    weights: Weights,
    guard: (s: ServiceState) => string | undefined = () => undefined,
    extra: (s: ServiceState) => ServiceState = (s) => s,
    opts: { keepOnReloadFailure?: boolean } = {},
  ): Promise<{ before: Weights; apply: ApplyResult }> {
    const before = await this.states.mutate(env, svc, (s) => {
      const refusal = guard(s);
      if (refusal) throw new TrafficRefused(refusal);
      const prev = s.weights;
      return { state: extra({ ...s, weights }), result: prev };
    });
    try {
      return { before, apply: await this.apply(opts) };
    } catch (err) {
      if (opts.keepOnReloadFailure && (err as Error).cause === 'reload') throw err;
      // nginx kept the old config: make the state say so too.
      await this.states.mutate(env, svc, (s) =>
        s.weights.blue === weights.blue && s.weights.green === weights.green
          ? { state: { ...s, weights: before }, result: undefined }
          : { result: undefined },
      );
      throw err;
    }
  }

  /** Is every colour that would get traffic healthy? Returns the failures. */
  async unhealthyServing(env: string, svc: string, weights: Weights, timeoutMs = 2_000): Promise<string[]> {
    const checks = await Promise.all(
      servingColours(weights).map((c) => this.checkColour(env, svc, c, timeoutMs)),
    );
    return checks.filter((c) => !c.ok).map((c) => c.detail);
  }

  checkColour(env: string, svc: string, colour: Colour, timeoutMs = 2_000) {
    const def = this.config.environments[env]?.services[svc];
    if (!def)
      return Promise.resolve({ ok: false, status: 0, ms: 0, detail: `${svc} is not configured in ${env}` });
    return httpCheck(`http://${def[colour].address}${def.healthPath}`, { timeoutMs });
  }

  pairs(): Array<[string, string]> {
    return Object.entries(this.config.environments).flatMap(([env, e]) =>
      Object.keys(e.services).map((svc): [string, string] => [env, svc]),
    );
  }
}
