import { z } from 'zod';

/**
 * What flightdeck's DORA figures are computed from: one time-ordered list of events per environment
 * and service (src/releases/dora-log.ts keeps it in Redis). Each event has an `id`, so an event
 * written twice (a hook re-run after a crash) counts once.
 */
export const DoraEvent = z.discriminatedUnion('kind', [
  /** A release completed: the version is live. `requestedAt` is when it was asked for. */
  z.object({
    kind: z.literal('deploy'),
    id: z.string(),
    at: z.number(),
    releaseId: z.string(),
    version: z.string(),
    requestedAt: z.number(),
    /** The image's creation time (its `org.opencontainers.image.created` label, or the configured one). */
    imageCreatedAt: z.number().optional(),
  }),
  /** A release was rolled back during its rollout (a gate, a failure, an alert, a cancel): a failed change. */
  z.object({
    kind: z.literal('failed'),
    id: z.string(),
    /** When traffic was back on the stable colour. */
    at: z.number(),
    releaseId: z.string(),
    version: z.string(),
    requestedAt: z.number(),
    /** When the rollback began: the failure was seen then. */
    failedAt: z.number(),
  }),
  /** A /rollback of a completed release took `version` out. */
  z.object({
    kind: z.literal('rollback'),
    id: z.string(),
    at: z.number(),
    version: z.string().optional(),
    by: z.string(),
  }),
  /** A critical alert for the service started firing. */
  z.object({ kind: z.literal('critical'), id: z.string(), at: z.number(), name: z.string() }),
]);
export type DoraEvent = z.infer<typeof DoraEvent>;

export interface DoraFigures {
  /** Releases that completed in the window. */
  deployments: number;
  /** deployments ÷ days of the window. */
  perDay: number;
  /** Changes that reached the service: completed releases plus releases rolled back during their rollout. */
  changes: number;
  /** Of those changes, how many failed (rolled back, or followed by a /rollback or a critical alert). */
  failures: number;
  /** failures ÷ changes; undefined with no change. */
  changeFailureRate?: number;
  /** Median time from a failure to the next good state, over the failures restored; undefined with none. */
  timeToRestoreMs?: number;
  /** Failures restored (the samples of timeToRestoreMs). */
  restored: number;
  /** Median time from the image's creation to its release completing; undefined with no creation time known. */
  leadTimeMs?: number;
  /** Completed releases whose image had a creation time (the samples of leadTimeMs). */
  leadTimeSamples: number;
}

export interface DoraWindow {
  from: number;
  to: number;
  /** How long after a release a /rollback or critical alert still counts as that release failing. */
  failureWindowMs: number;
}

/** The per-failure and per-release samples; figures are computed from them (and merged per environment). */
export interface DoraSamples {
  days: number;
  deployments: number;
  changes: number;
  failures: number;
  restoreMs: number[];
  leadMs: number[];
}

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * The samples of one service in one environment. A change belongs to the window when it ended in it
 * (`from` < at ≤ `to`). A completed release failed when, after it went live and before the next
 * release of the service was requested, within `failureWindowMs`, a /rollback took it out or a
 * critical alert fired. Its failure starts at the first critical alert (or, with none, when it went
 * live) and ends at the next good state: the first /rollback after that, or the next release to
 * complete. A release rolled back during its rollout failed when its rollback began and was restored
 * when traffic was back on the stable colour.
 */
export function doraSamples(events: DoraEvent[], w: DoraWindow): DoraSamples {
  const seen = new Set<string>();
  const list = events
    .filter((e) => {
      if (seen.has(e.id)) return false;
      seen.add(e.id);
      return true;
    })
    .sort((a, b) => a.at - b.at);
  // What starts the next change after a completed release: the request of the next release.
  const changes = list.filter(
    (e): e is Extract<DoraEvent, { kind: 'deploy' | 'failed' }> => e.kind === 'deploy' || e.kind === 'failed',
  );
  const out: DoraSamples = {
    days: Math.max(1e-9, (w.to - w.from) / 86_400_000),
    deployments: 0,
    changes: 0,
    failures: 0,
    restoreMs: [],
    leadMs: [],
  };
  for (const c of changes) {
    if (c.at <= w.from || c.at > w.to) continue;
    out.changes += 1;
    if (c.kind === 'failed') {
      out.failures += 1;
      out.restoreMs.push(Math.max(0, c.at - c.failedAt));
      continue;
    }
    out.deployments += 1;
    if (c.imageCreatedAt !== undefined && c.imageCreatedAt <= c.at) out.leadMs.push(c.at - c.imageCreatedAt);
    const next = changes.find((n) => n !== c && n.requestedAt > c.requestedAt && n.at > c.at);
    const until = Math.min(
      c.at + w.failureWindowMs,
      next ? next.requestedAt : Number.POSITIVE_INFINITY,
      w.to,
    );
    const signals = list.filter(
      (e) =>
        e.at > c.at &&
        e.at <= until &&
        (e.kind === 'critical' ||
          (e.kind === 'rollback' && (e.version === undefined || e.version === c.version))),
    );
    const first = signals[0];
    if (!first) continue;
    out.failures += 1;
    // The failure began with the first critical alert; a /rollback with no alert before it: when the
    // version went live (nothing says it was good at any time since).
    const started = first.kind === 'critical' ? first.at : c.at;
    const restore = list.find(
      (e) => e.at >= started && e.at <= w.to && (e.kind === 'rollback' || (e.kind === 'deploy' && e !== c)),
    );
    if (restore) out.restoreMs.push(restore.at - started);
  }
  return out;
}

export function doraFigures(s: DoraSamples): DoraFigures {
  const f: DoraFigures = {
    deployments: s.deployments,
    perDay: s.deployments / s.days,
    changes: s.changes,
    failures: s.failures,
    restored: s.restoreMs.length,
    leadTimeSamples: s.leadMs.length,
  };
  if (s.changes > 0) f.changeFailureRate = s.failures / s.changes;
  const ttr = median(s.restoreMs);
  if (ttr !== undefined) f.timeToRestoreMs = ttr;
  const lead = median(s.leadMs);
  if (lead !== undefined) f.leadTimeMs = lead;
  return f;
}

/** Several services' samples as one (an environment's figures). */
export function mergeSamples(all: DoraSamples[], days: number): DoraSamples {
  return {
    days,
    deployments: all.reduce((n, s) => n + s.deployments, 0),
    changes: all.reduce((n, s) => n + s.changes, 0),
    failures: all.reduce((n, s) => n + s.failures, 0),
    restoreMs: all.flatMap((s) => s.restoreMs),
    leadMs: all.flatMap((s) => s.leadMs),
  };
}

export function computeDora(events: DoraEvent[], w: DoraWindow): DoraFigures {
  return doraFigures(doraSamples(events, w));
}

/** 90 s, 42 min, 3.5 h, 2.1 d. */
export function formatSpan(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7_200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

/** One line of figures, e.g. "4 deploys (0.13/day) · CFR 25% (1/4) · restore 12 min (1) · lead 2.0 h (3)". */
export function doraLine(f: DoraFigures): string {
  const cfr =
    f.changeFailureRate === undefined
      ? 'CFR —'
      : `CFR ${Math.round(f.changeFailureRate * 100)}% (${f.failures}/${f.changes})`;
  const ttr =
    f.timeToRestoreMs === undefined
      ? 'restore —'
      : `restore ${formatSpan(f.timeToRestoreMs)} (${f.restored})`;
  const lead =
    f.leadTimeMs === undefined ? 'lead —' : `lead ${formatSpan(f.leadTimeMs)} (${f.leadTimeSamples})`;
  const perDay = f.perDay >= 1 ? f.perDay.toFixed(1) : f.perDay.toFixed(2);
  return `${f.deployments} deploy${f.deployments === 1 ? '' : 's'} (${perDay}/day) · ${cfr} · ${ttr} · ${lead}`;
}
