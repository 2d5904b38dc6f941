import type { Redis } from 'ioredis';
import { type NginxGroup, nginxGroups, nginxOf } from '../config/infrastructure.js';
import type { Colour, FlightdeckConfig } from '../config/schema.js';
import { FlightdeckError } from '../errors.js';
import { checkBackend } from '../integrations/http-check.js';
import {
  type ApplyResult,
  type NginxDriver,
  NginxReloadFailed,
  type Upstream,
  upstreamName,
} from '../integrations/nginx.js';
import type { EdgeDriver, EdgeStatus } from '../integrations/nginx-edge.js';
import { withRedisLock } from '../integrations/redis-lock.js';
import type { ServiceState, Weights } from './schema.js';
import type { ServiceStateStore } from './service-state-store.js';
import { servingColours } from './weights.js';

/** The change is not allowed now (a release holds the service, a colour is unhealthy): retrying will not help. */
export class TrafficRefused extends FlightdeckError {
  constructor(message: string) {
    super('traffic_refused', message, false);
  }
}

/** What Traffic needs of one nginx (see integrations/nginx-driver.ts). */
export type NginxApplier = Pick<NginxDriver, 'apply'> & { edges?: Pick<EdgeDriver, 'status'> };

/**
 * nginx weights from flightdeck's state: every change goes state → render → nginx -t → reload.
 * Environments are grouped by the nginx they use; each group has its own driver and mutex and
 * renders only its own services, so a change in one environment never touches another's nginx.
 */
export class Traffic {
  private readonly groups: Array<NginxGroup & { driver: NginxApplier }>;
  private readonly groupOf = new Map<string, NginxGroup & { driver: NginxApplier }>();

  constructor(
    private readonly config: FlightdeckConfig,
    private readonly states: ServiceStateStore,
    driverFor: (group: NginxGroup) => NginxApplier,
    private readonly redis: Redis,
    private readonly onApplied: (env: string, svc: string, w: Weights) => void = () => {},
  ) {
    this.groups = nginxGroups(config).map((g) => ({ ...g, driver: driverFor(g) }));
    for (const g of this.groups) for (const env of g.environments) this.groupOf.set(env, g);
  }

  /** nginx.driver: edge: the replicas of `env`'s edges as they report (undefined for other drivers). */
  edgeStatus(env: string): Promise<EdgeStatus> | undefined {
    return this.group(env).driver.edges?.status();
  }

  upstreamName(env: string, svc: string): string {
    return upstreamName(nginxOf(this.config, env).upstreamPrefix, env, svc);
  }

  /** The top-level nginx keeps the key it always had, so replicas of an older version share it. */
  private mutexKey(group: NginxGroup): string {
    const base = `${this.config.redis.prefix}:data:nginx:mutex`;
    return group.id === 'default' ? base : `${base}:${group.id}`;
  }

  private group(env: string): NginxGroup & { driver: NginxApplier } {
    const g = this.groupOf.get(env);
    if (!g) throw new Error(`unknown environment ${env}`);
    return g;
  }

  /**
   * Renders every configured service's weights and applies them, one nginx after the other, each
   * with one writer at a time across replicas; only `environment`'s nginx when given. An nginx that
   * fails does not stop the others: the error, after all were tried, names each that failed.
   */
  async apply(opts: { keepOnReloadFailure?: boolean; environment?: string } = {}): Promise<ApplyResult[]> {
    const groups = opts.environment ? [this.group(opts.environment)] : this.groups;
    const results: ApplyResult[] = [];
    const failures: string[] = [];
    for (const g of groups) {
      try {
        results.push(
          await withRedisLock(this.redis, this.mutexKey(g), () => this.applyHoldingMutex(g, opts), {
            ttlMs: 30_000,
            waitMs: 60_000,
          }),
        );
      } catch (err) {
        if (groups.length === 1) throw err;
        failures.push(`nginx of ${g.environments.join(', ')}: ${(err as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(failures.join('; '));
    return results;
  }

  /** The recorded weights of the group's services, except `override` for one: rendered and applied. */
  private async applyHoldingMutex(
    group: NginxGroup & { driver: NginxApplier },
    opts: { keepOnReloadFailure?: boolean },
    override?: { env: string; svc: string; weights: Weights },
  ): Promise<ApplyResult> {
    const pairs = this.pairs().filter(([env]) => group.environments.includes(env));
    const weights = (await this.states.getMany(pairs)).map((s, i) =>
      override && pairs[i]?.[0] === override.env && pairs[i]?.[1] === override.svc
        ? override.weights
        : (s as ServiceState).weights,
    );
    const upstreams: Upstream[] = pairs.map(([env, svc], i) => {
      const def = this.config.environments[env]?.services[svc];
      return {
        name: this.upstreamName(env, svc),
        servers: (['blue', 'green'] as const).map((colour) => ({
          colour,
          address: def?.[colour].address ?? '127.0.0.1:1',
          weight: (weights[i] as Weights)[colour],
        })),
        ...(def
          ? {
              settings: {
                keepalive: def.upstream.keepalive,
                maxFails: def.upstream.maxFails,
                failTimeoutMs: def.upstream.failTimeout,
              },
              ...(def.sticky?.enabled
                ? {
                    sticky: {
                      cookie: def.sticky.cookie,
                      maxAgeMs: def.sticky.maxAge,
                      secure: def.sticky.secure,
                      pinHeader: def.sticky.pinHeader,
                      pinFrom: def.sticky.pinFrom,
                    },
                  }
                : {}),
            }
          : {}),
      };
    });
    const result = await group.driver.apply(upstreams, { keepOnReloadFailure: opts.keepOnReloadFailure });
    for (const [i, [env, svc]] of pairs.entries()) this.onApplied(env, svc, weights[i] as Weights);
    return result;
  }

  /**
   * Sets one service's weights: nginx first, then the record, both under the nginx mutex, so the
   * state never names weights nginx does not serve. `guard` may refuse (returns why) after seeing
   * the current state. If nginx refuses the change, nothing but `extra` is recorded; with
   * `keepOnReloadFailure` (moves to safety) a file that passed `nginx -t` but could not be
   * reloaded (nginx down) is recorded too, since nginx serves it when it starts.
   */
  async setWeights(
    env: string,
    svc: string,
    weights: Weights,
    guard: (s: ServiceState) => string | undefined = () => undefined,
    extra: (s: ServiceState) => ServiceState = (s) => s,
    opts: { keepOnReloadFailure?: boolean } = {},
  ): Promise<{ before: Weights; apply: ApplyResult }> {
    const group = this.group(env);
    return withRedisLock(
      this.redis,
      this.mutexKey(group),
      async () => {
        const refusedEarly = guard(await this.states.get(env, svc));
        if (refusedEarly) throw new TrafficRefused(refusedEarly);
        let applied: ApplyResult | undefined;
        let failure: Error | undefined;
        try {
          applied = await this.applyHoldingMutex(group, opts, { env, svc, weights });
        } catch (err) {
          failure = err as Error;
        }
        const keep = failure && opts.keepOnReloadFailure && failure instanceof NginxReloadFailed;
        const outcome = await this.states.mutate<{ refusal?: string; before: Weights }>(env, svc, (s) => {
          const refusal = guard(s);
          if (refusal) return { result: { refusal, before: s.weights } };
          const next = applied || keep ? { ...s, weights } : s;
          return { state: extra(next), result: { before: s.weights } };
        });
        if (outcome.refusal) {
          // Someone changed the service meanwhile: put nginx back on what is recorded.
          if (applied) await this.applyHoldingMutex(group, {});
          throw new TrafficRefused(outcome.refusal);
        }
        if (failure || !applied) throw failure;
        return { before: outcome.before, apply: applied };
      },
      { ttlMs: 30_000, waitMs: 60_000 },
    );
  }

  /** Is every colour that would get traffic healthy? Returns the failures. */
  async unhealthyServing(env: string, svc: string, weights: Weights, timeoutMs = 2_000): Promise<string[]> {
    const checks = await Promise.all(
      servingColours(weights).map((c) => this.checkColour(env, svc, c, timeoutMs, 'any')),
    );
    return checks.filter((c) => !c.ok).map((c) => c.detail);
  }

  /**
   * Health of one colour. An address by name (a dnsrr service, `tasks.<service>`) is every task it
   * resolves to: `all` of them must answer for a release's new colour, `any` is enough for a move
   * to safety (a rollback, the stable colour), so one sick task never blocks the way back.
   */
  checkColour(env: string, svc: string, colour: Colour, timeoutMs = 2_000, require: 'all' | 'any' = 'all') {
    const def = this.config.environments[env]?.services[svc];
    if (!def)
      return Promise.resolve({ ok: false, status: 0, ms: 0, detail: `${svc} is not configured in ${env}` });
    return checkBackend(def[colour].address, def.healthPath, { timeoutMs, require });
  }

  pairs(): Array<[string, string]> {
    return Object.entries(this.config.environments).flatMap(([env, e]) =>
      Object.keys(e.services).map((svc): [string, string] => [env, svc]),
    );
  }
}
