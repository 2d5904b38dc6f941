import { formatDistanceStrict } from 'date-fns';
import type { PromotionRule } from '../config/pipeline-schema.js';
import type { Running, TrailEntry } from './version-trail.js';

/** What is known of a version in the environment before the one it is deployed to. */
export interface PromotionFacts {
  environment: string;
  service: string;
  version: string;
  /** The pipeline's stage before `environment`; none for the first stage or an environment outside it. */
  previous?: string;
  rule?: PromotionRule;
  /** The version's trail: environment → completed / rolled back. */
  trail: Record<string, TrailEntry>;
  /** What runs in `previous` now. */
  runningThere?: Running;
  /** The last critical alert for the service in `previous`. */
  lastCritical?: { at: number; name: string };
  /** Why the post-deployment checklist of the release that put the version in `previous` is not complete. */
  postChecklistOpen?: string;
  now: number;
}

const ago = (at: number, now: number) => `${formatDistanceStrict(at, now)} ago`;

/** The environment before `environment` in the pipeline, if it has one. */
export function previousStage(pipeline: string[] | undefined, environment: string): string | undefined {
  const i = pipeline?.indexOf(environment) ?? -1;
  return i > 0 ? pipeline?.[i - 1] : undefined;
}

/**
 * Why the version may not enter the environment yet, or undefined. A version enters only after it
 * completed in the previous stage and was not rolled back there since; the environment's rule may
 * also ask for time live there, no critical alert since, and its post-deployment checklist done.
 */
export function promotionRefusal(f: PromotionFacts): string | undefined {
  if (!f.previous) return undefined;
  const { previous: prev, version: v, now } = f;
  const running = f.runningThere
    ? `; it runs ${f.runningThere.version} since ${formatDistanceStrict(f.runningThere.since, now)}`
    : '';
  const entry = f.trail[prev];
  if (!entry) return `${v} never completed in ${prev}${running}.`;
  if (entry.rolledBackAt !== undefined)
    return `${v} was rolled back in ${prev} ${ago(entry.rolledBackAt, now)}${entry.rolledBackBy ? ` by ${entry.rolledBackBy === 'flightdeck' ? 'flightdeck' : `<@${entry.rolledBackBy}>`}` : ''}${running}.`;
  const missing: string[] = [];
  if (f.rule?.minTimeLive) {
    // Live until something else replaced it there.
    const until = f.runningThere && f.runningThere.version !== v ? f.runningThere.since : now;
    const live = Math.max(0, until - entry.completedAt);
    if (live < f.rule.minTimeLive) {
      const need = formatDistanceStrict(0, f.rule.minTimeLive);
      missing.push(
        until === now
          ? `${v} is live in ${prev} for ${formatDistanceStrict(entry.completedAt, now)}; ${f.environment} needs ${need} (in ${formatDistanceStrict(now, entry.completedAt + f.rule.minTimeLive)})`
          : `${v} was live in ${prev} for ${formatDistanceStrict(0, live)} before ${f.runningThere?.version} replaced it; ${f.environment} needs ${need}`,
      );
    }
  }
  if (f.rule?.noCriticalAlerts && f.lastCritical && f.lastCritical.at >= entry.completedAt)
    missing.push(
      `critical alert ${f.lastCritical.name} fired for ${f.service} in ${prev} ${ago(f.lastCritical.at, now)}, after ${v} went live there`,
    );
  if (f.rule?.postChecklist && f.postChecklistOpen)
    missing.push(`its post-deployment checklist in ${prev} is not complete (${f.postChecklistOpen})`);
  return missing.length > 0 ? `${missing.join('; ')}.` : undefined;
}

/** “staging ✅ 3 days ago · preproduction ↩️ rolled back 1 hour ago”: the version's way through the pipeline. */
export function trailLine(
  pipeline: string[] | undefined,
  trail: Record<string, TrailEntry>,
  now: number,
  upTo?: string,
): string {
  const stages = pipeline ?? Object.keys(trail);
  const end = upTo ? stages.indexOf(upTo) : -1;
  const shown = end >= 0 ? stages.slice(0, end) : stages;
  return shown
    .map((env) => {
      const e = trail[env];
      if (!e) return `${env} —`;
      if (e.rolledBackAt !== undefined) return `${env} ↩️ rolled back ${ago(e.rolledBackAt, now)}`;
      return `${env} ✅ ${ago(e.completedAt, now)}`;
    })
    .join(' · ');
}
