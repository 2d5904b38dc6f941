import type { Redis } from 'ioredis';
import { type ApplyResult, generationOf, NginxError, NginxReloadFailed, type Upstream } from './nginx.js';
import { edgeKeys } from './nginx-edge-render.js';
import { renderWeights } from './nginx-lua-render.js';

/** One nginx edge as it last reported itself. */
export interface EdgeReplica {
  name: string;
  generation: string;
  /** Version of the edge's static file (flightdeck edge-config). */
  config: string;
  /** When it took its generation (its own clock, ms). */
  appliedAt: number;
  /** "ok", or what is wrong with what it serves. */
  health: string;
}

export interface EdgeStatus {
  /** The generation flightdeck published, if any. */
  desired?: string;
  /** Replicas reporting now (within staleAfter). */
  live: EdgeReplica[];
  /** Replicas seen before (within forgetAfter) that no longer report: stopped, or cut off from Redis. */
  missing: Array<{ name: string; lastSeen: number }>;
}

export interface EdgeDriverOptions {
  redisPrefix: string;
  /** The edge group: nginx.upstreamPrefix. */
  group: string;
  /** How long every live replica has to report a new generation before the change fails. */
  confirmTimeoutMs: number;
  /** Fewer live replicas than this fail a change (the edges are down or cannot reach Redis). */
  minReplicas: number;
  /** A replica not seen for this long is forgotten (no longer reported missing). */
  forgetAfterMs?: number;
  pollMs?: number;
  now?: () => number;
}

/**
 * nginx.driver: edge. A change is published to Redis, and counts once every live edge replica
 * reports serving it (healthy) within confirmTimeout; otherwise the previous weights are published
 * again and the change fails, naming the replica. Moves towards safety (keepOnReloadFailure) keep
 * the new weights published: a replica that is late takes them when it next syncs.
 */
export class EdgeDriver {
  private readonly keys: ReturnType<typeof edgeKeys>;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly opts: EdgeDriverOptions,
  ) {
    this.keys = edgeKeys(opts.redisPrefix, opts.group);
    this.now = opts.now ?? Date.now;
  }

  async apply(upstreams: Upstream[], { keepOnReloadFailure = false } = {}): Promise<ApplyResult> {
    const started = performance.now();
    const generation = generationOf(JSON.stringify(upstreams));
    const weights = renderWeights(upstreams, generation);
    const previous = await this.redis.get(this.keys.desired);
    if (previous === weights) {
      const status = await this.status();
      if (this.confirmed(status, generation).ok) {
        return { changed: false, generation, ms: performance.now() - started, edges: summary(status) };
      }
    }
    await this.redis.set(this.keys.desired, weights);
    const outcome = await this.waitConfirmed(generation);
    if (!outcome.ok) {
      if (keepOnReloadFailure) {
        throw new NginxReloadFailed(
          `${outcome.why}; the new weights stay published and every edge takes them when it next syncs`,
        );
      }
      // The first weights ever published stay: there is nothing older to go back to, and an edge
      // that starts needs them before it can serve at all.
      if (previous === null) {
        throw new NginxError(`${outcome.why}; the weights stay published for the edges that start`);
      }
      // Every edge back on what it served: the change never happened.
      await this.redis.set(this.keys.desired, previous);
      const back = await this.waitConfirmed(/^generation (\S+)$/m.exec(previous)?.[1] ?? '');
      throw new NginxError(
        `${outcome.why}; the previous weights are published again${back.ok ? ' and every edge serves them' : ` (${back.why})`}`,
      );
    }
    return {
      changed: true,
      generation,
      ms: performance.now() - started,
      live: true,
      edges: summary(outcome.status),
    };
  }

  /** Every replica's last report, and the ones that stopped reporting. */
  async status(): Promise<EdgeStatus> {
    const [desired, names, seen] = await Promise.all([
      this.redis.get(this.keys.desired),
      this.redis.smembers(this.keys.members),
      this.redis.hgetall(this.keys.seen),
    ]);
    const sorted = [...names].sort();
    const reports = sorted.length
      ? await this.redis.mget(...sorted.map((n) => this.keys.replicaPrefix + n))
      : [];
    const now = this.now();
    const live: EdgeReplica[] = [];
    const missing: EdgeStatus['missing'] = [];
    const forgetAfter = this.opts.forgetAfterMs ?? 3_600_000;
    const seenNow: Record<string, string> = {};
    const forget: string[] = [];
    sorted.forEach((name, i) => {
      if (!EDGE_NAME.test(name)) return;
      const report = reports[i] ? parseReport(name, reports[i] as string) : undefined;
      if (report) {
        live.push(report);
        seenNow[name] = String(now);
      } else {
        const lastSeen = Number(seen[name] ?? 0);
        if (now - lastSeen > forgetAfter) forget.push(name);
        else missing.push({ name, lastSeen });
      }
    });
    if (Object.keys(seenNow).length) await this.redis.hset(this.keys.seen, seenNow);
    if (forget.length) {
      await this.redis.srem(this.keys.members, ...forget);
      await this.redis.hdel(this.keys.seen, ...forget);
    }
    return { desired: desired ? /^generation (\S+)$/m.exec(desired)?.[1] : undefined, live, missing };
  }

  /** Whether this status counts as every live edge serving `generation`, healthy; else why not. */
  confirmed(
    status: EdgeStatus,
    generation: string,
  ): { ok: true } | { ok: false; why: string; final?: boolean; sick?: boolean } {
    const refused = status.live.find((r) => r.health.includes(`refused generation ${generation}:`));
    if (refused) return { ok: false, final: true, why: `edge ${refused.name} ${refused.health}` };
    const sick = status.live.find((r) => r.generation === generation && r.health !== 'ok');
    if (sick)
      return {
        ok: false,
        sick: true,
        why: `edge ${sick.name} took generation ${generation} but ${sick.health}`,
      };
    const behind = status.live.filter((r) => r.generation !== generation);
    if (behind.length) {
      return {
        ok: false,
        why: behind
          .map((r) => `edge ${r.name} still serves generation ${r.generation} (${r.health})`)
          .join('; '),
      };
    }
    if (status.live.length < this.opts.minReplicas) {
      const gone = status.missing.map(
        (m) => `${m.name}, last report ${Math.round((this.now() - m.lastSeen) / 1000)} s ago`,
      );
      return {
        ok: false,
        why: `${status.live.length} edge${status.live.length === 1 ? '' : 's'} report${status.live.length === 1 ? 's' : ''}, at least ${this.opts.minReplicas} needed${gone.length ? ` (not reporting: ${gone.join('; ')})` : ''}`,
      };
    }
    return { ok: true };
  }

  private async waitConfirmed(
    generation: string,
  ): Promise<{ ok: true; status: EdgeStatus } | { ok: false; why: string; final?: boolean }> {
    const deadline = this.now() + this.opts.confirmTimeoutMs;
    let sickSince: number | undefined;
    for (;;) {
      const status = await this.status();
      const c = this.confirmed(status, generation);
      if (c.ok) return { ok: true, status };
      // A replica that refused the generation will not take it by waiting. One that took it but
      // reports a problem may be showing a report from before it synced, or a name not resolved
      // yet: it gets SICK_GRACE_MS to recover, not the whole confirmTimeout.
      if (c.final) return c;
      sickSince = c.sick ? (sickSince ?? this.now()) : undefined;
      if (sickSince !== undefined && this.now() - sickSince >= SICK_GRACE_MS) return c;
      if (this.now() >= deadline) {
        return {
          ok: false,
          why: `${c.why}, ${Math.round(this.opts.confirmTimeoutMs / 1000)} s after the change`,
        };
      }
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 50));
    }
  }
}

const SICK_GRACE_MS = 2_000;

/** An edge's name (its hostname) as flightdeck accepts it: it is shown in Slack and in metrics. */
const EDGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * "generation=g config=v applied=ms health=…" (health last: it may contain spaces). What an edge
 * writes is outside input: the health text is clipped and made inert for Slack mrkdwn.
 */
export function parseReport(name: string, text: string): EdgeReplica | undefined {
  if (!EDGE_NAME.test(name)) return undefined;
  const m = /^generation=([0-9a-z]{1,32}) config=([0-9a-z]{1,32}) applied=(\d{1,16}) health=(.*)$/.exec(text);
  if (!m) return undefined;
  const health = (m[4] as string)
    .replace(/[^\x20-\x7e]/g, '')
    .slice(0, 300)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
  return { name, generation: m[1] as string, config: m[2] as string, appliedAt: Number(m[3]), health };
}

function summary(status: EdgeStatus): NonNullable<ApplyResult['edges']> {
  return { live: status.live.map((r) => r.name), missing: status.missing.map((m) => m.name) };
}
