import { withTimeout } from '../integrations/redis.js';

/** Resolves when the part answers (optionally with what it reports, e.g. each nginx edge); throws why not. */
export type Check = () => Promise<unknown>;

export interface Readiness {
  ready: boolean;
  failing: string[];
  checks: Record<string, string>;
}

/** Runs every dependency check in parallel, each bounded, and names the ones that failed. */
export async function checkReadiness(checks: Record<string, Check>, timeoutMs = 2_000): Promise<Readiness> {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(
    names.map((n) => withTimeout((checks[n] as Check)(), timeoutMs, n)),
  );
  const out: Readiness = { ready: true, failing: [], checks: {} };
  results.forEach((r, i) => {
    const name = names[i] as string;
    if (r.status === 'fulfilled') {
      out.checks[name] = typeof r.value === 'string' && r.value ? `ok: ${r.value}` : 'ok';
    } else {
      out.ready = false;
      out.failing.push(name);
      out.checks[name] = errorText(r.reason);
    }
  });
  return out;
}

/**
 * Checks of one part several /readyz entries share (one Docker endpoint for two environments): the
 * entries of one run wait for the same call instead of each making its own.
 */
export function sharedChecks(): (key: string, check: Check) => Check {
  const running = new Map<string, Promise<unknown>>();
  return (key, check) => () => {
    let p = running.get(key);
    if (!p) {
      p = check().finally(() => running.delete(key));
      running.set(key, p);
    }
    return p;
  };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ? `${err.message} (${cause.code})` : err.message;
  }
  return String(err);
}
