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

/** A setWeights call waiting for its nginx's mutex (see Traffic.setWeights). */
interface WeightChange {
  env: string;
  svc: string;
  weights: Weights;
  guard: (s: ServiceState) => string | undefined;
  extra: (s: ServiceState) => ServiceState;
  keep: boolean;
  resolve: (v: { before: Weights; apply: ApplyResult }) => void;
  reject: (err: Error) => void;
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
    // One environment's recorded state (a release's finalize): any apply that begins after this
    // call renders it, so it joins the next round of setWeights (50 finalizes, not 50 applies).
    if (opts.environment && !opts.keepOnReloadFailure) {
      const g = this.group(opts.environment);
      const result = await new Promise<ApplyResult>((resolve, reject) => {
        this.refreshes.set(g.id, [...(this.refreshes.get(g.id) ?? []), { resolve, reject }]);
        if (!this.draining.has(g.id)) void this.drain(g);
      });
      return [result];
    }
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

  /** The recorded weights of the group's services, except `overrides`: rendered and applied. */
  private async applyHoldingMutex(
    group: NginxGroup & { driver: NginxApplier },
    opts: { keepOnReloadFailure?: boolean },
    overrides: ReadonlyArray<{ env: string; svc: string; weights: Weights }> = [],
  ): Promise<ApplyResult> {
    const pairs = this.pairs().filter(([env]) => group.environments.includes(env));
    const override = new Map(overrides.map((o) => [pairKey(o.env, o.svc), o.weights]));
    const weights = (await this.states.getMany(pairs)).map(
      (s, i) =>
        override.get(pairKey(pairs[i]?.[0] ?? '', pairs[i]?.[1] ?? '')) ?? (s as ServiceState).weights,
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

  /** Changes waiting for their nginx's mutex in this process, per nginx group. */
  private readonly waiting = new Map<string, WeightChange[]>();
  private readonly draining = new Set<string>();
  /** apply({ environment }) calls waiting for the next round, per nginx group. */
  private readonly refreshes = new Map<
    string,
    Array<{ resolve: (r: ApplyResult) => void; reject: (err: Error) => void }>
  >();

  /**
   * Sets one service's weights: nginx first, then the record, both under the nginx mutex, so the
   * state never names weights nginx does not serve. `guard` may refuse (returns why) after seeing
   * the current state. If nginx refuses the change, nothing but `extra` is recorded; with
   * `keepOnReloadFailure` (moves to safety) a file that passed `nginx -t` but could not be
   * reloaded (nginx down) is recorded too, since nginx serves it when it starts.
   *
   * Changes of several services that wait for the same nginx at once (a `/deploy all`: 50
   * releases shifting traffic together) go into one render, test and reload, then each is
   * recorded, or refused, as if it had been applied alone: one reload behind the mutex, not 50.
   */
  setWeights(
    env: string,
    svc: string,
    weights: Weights,
    guard: (s: ServiceState) => string | undefined = () => undefined,
    extra: (s: ServiceState) => ServiceState = (s) => s,
    opts: { keepOnReloadFailure?: boolean } = {},
  ): Promise<{ before: Weights; apply: ApplyResult }> {
    const group = this.group(env);
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(group.id) ?? [];
      list.push({
        env,
        svc,
        weights,
        guard,
        extra,
        keep: opts.keepOnReloadFailure === true,
        resolve,
        reject,
      });
      this.waiting.set(group.id, list);
      if (!this.draining.has(group.id)) void this.drain(group);
    });
  }

  /** Takes the mutex and applies what waits, round after round, until nothing waits. */
  private async drain(group: NginxGroup & { driver: NginxApplier }): Promise<void> {
    this.draining.add(group.id);
    try {
      const pending = () =>
        (this.waiting.get(group.id) ?? []).length + (this.refreshes.get(group.id) ?? []).length;
      while (pending() > 0) {
        let taken = false;
        try {
          await withRedisLock(
            this.redis,
            this.mutexKey(group),
            async () => {
              taken = true;
              const refreshes = this.refreshes.get(group.id) ?? [];
              this.refreshes.set(group.id, []);
              await this.applyRound(group, this.takeRound(group.id), refreshes);
            },
            { ttlMs: 30_000, waitMs: 60_000 },
          );
        } catch (err) {
          // The mutex could not be had (held elsewhere past the wait, Redis down): every change
          // waiting fails with that, as each would have alone. (A round, once taken, settles itself.)
          if (!taken) {
            const failed = [...(this.waiting.get(group.id) ?? []), ...(this.refreshes.get(group.id) ?? [])];
            this.waiting.set(group.id, []);
            this.refreshes.set(group.id, []);
            for (const c of failed) c.reject(err as Error);
          }
        }
      }
    } finally {
      this.draining.delete(group.id);
    }
  }

  /**
   * What one apply takes, once the mutex is held (so all that arrived while waiting joins): one
   * change per service, and moves to safety (kept on a failed reload) apart from the others and
   * before them, so a failed reload keeps a round's file for all of it or none.
   */
  private takeRound(groupId: string): WeightChange[] {
    const all = this.waiting.get(groupId) ?? [];
    // Moves to safety (rollbacks) go first: the way back never waits behind a round of releases.
    const keep = all.some((c) => c.keep);
    const round: WeightChange[] = [];
    const rest: WeightChange[] = [];
    const seen = new Set<string>();
    for (const c of all) {
      const k = pairKey(c.env, c.svc);
      if (c.keep === keep && !seen.has(k)) {
        seen.add(k);
        round.push(c);
      } else rest.push(c);
    }
    this.waiting.set(groupId, rest);
    return round;
  }

  /** One apply for the round's changes, then each recorded (or refused) as setWeights promises. */
  private async applyRound(
    group: NginxGroup & { driver: NginxApplier },
    round: WeightChange[],
    refreshes: Array<{ resolve: (r: ApplyResult) => void; reject: (err: Error) => void }> = [],
  ): Promise<void> {
    const settled: Array<{ c: WeightChange; ok?: { before: Weights; apply: ApplyResult }; err?: Error }> = [];
    // What the refreshes hear: the apply that rendered the recorded state (the last of the round).
    let refreshed: ApplyResult | Error = new Error('not applied');
    try {
      const keep = round[0]?.keep ?? false;
      const current = await this.states.getMany(round.map((c) => [c.env, c.svc] as [string, string]));
      const live: WeightChange[] = [];
      for (const [i, c] of round.entries()) {
        const why = c.guard(current[i] as ServiceState);
        if (why) settled.push({ c, err: new TrafficRefused(why) });
        else live.push(c);
      }
      if (live.length === 0 && refreshes.length === 0) return;
      let applied: ApplyResult | undefined;
      let failure: Error | undefined;
      try {
        applied = await this.applyHoldingMutex(group, { keepOnReloadFailure: keep }, live);
      } catch (err) {
        failure = err as Error;
      }
      refreshed = applied ?? failure ?? refreshed;
      const kept = failure !== undefined && keep && failure instanceof NginxReloadFailed;
      let reapply = false;
      for (const c of live) {
        try {
          const outcome = await this.states.mutate<{ refusal?: string; before: Weights }>(
            c.env,
            c.svc,
            (s) => {
              const refusal = c.guard(s);
              if (refusal) return { result: { refusal, before: s.weights } };
              const next = applied || kept ? { ...s, weights: c.weights } : s;
              return { state: c.extra(next), result: { before: s.weights } };
            },
          );
          if (outcome.refusal) {
            // Someone changed the service meanwhile: nginx goes back to what is recorded (below).
            if (applied) reapply = true;
            settled.push({ c, err: new TrafficRefused(outcome.refusal) });
          } else if (failure || !applied) {
            settled.push({ c, err: failure ?? new Error('nginx apply gave no result') });
          } else settled.push({ c, ok: { before: outcome.before, apply: applied } });
        } catch (err) {
          // Its record could not be written: nginx serves weights no record names, so it goes back.
          if (applied) reapply = true;
          settled.push({ c, err: err as Error });
        }
      }
      if (reapply) {
        try {
          refreshed = await this.applyHoldingMutex(group, {});
        } catch (err) {
          // As alone: a refused change's caller hears why nginx could not be put back.
          for (const x of settled) if (x.err) x.err = err as Error;
          refreshed = err as Error;
        }
      }
    } catch (err) {
      // Redis failed before the apply: nothing changed; every change not settled fails with it.
      for (const c of round) if (!settled.some((x) => x.c === c)) settled.push({ c, err: err as Error });
      refreshed = err as Error;
    } finally {
      for (const r of refreshes) {
        if (refreshed instanceof Error) r.reject(refreshed);
        else r.resolve(refreshed);
      }
      for (const x of settled) {
        if (x.ok) x.c.resolve(x.ok);
        else x.c.reject(x.err ?? new Error('not applied'));
      }
      // Anything of the round not settled (cannot happen, but a caller must never hang).
      for (const c of round) if (!settled.some((x) => x.c === c)) c.reject(new Error('not applied'));
    }
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

const pairKey = (env: string, svc: string) => `${env}\u0000${svc}`;
