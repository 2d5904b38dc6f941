import type { FlightdeckConfig } from '../config/schema.js';
import type { EdgeStatus } from '../integrations/nginx-edge.js';
import type { ServiceState } from './schema.js';
import { textBar } from './weights.js';

/** `/traffic status`: every service's split as a small text bar, per environment. */
export function renderTrafficStatus(
  config: FlightdeckConfig,
  states: Map<string, ServiceState>,
  only?: string,
  /** A line per environment on the edge driver (renderEdges). */
  edges: ReadonlyMap<string, string> = new Map(),
): string {
  const lines: string[] = [];
  for (const [env, e] of Object.entries(config.environments)) {
    if (only && env !== only) continue;
    lines.push(`*${env}*`);
    const edgeLine = edges.get(env);
    if (edgeLine) lines.push(edgeLine);
    for (const svc of Object.keys(e.services)) {
      const s = states.get(`${env}/${svc}`);
      if (!s) continue;
      const live = `live ${s.live}${s.lastGood.image ? ` ${s.lastGood.image.split(':').at(-1)}` : ''}`;
      const flight = s.inFlight ? ` · 🔒 ${s.inFlight.what} by <@${s.inFlight.by}>` : '';
      lines.push(
        `\`${svc.padEnd(14)} blue ${textBar(s.weights.blue)}  green ${textBar(s.weights.green)}\` ${live}${flight}`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * The edges of an environment (nginx.driver: edge), one line: each replica, whether it serves the
 * published generation, since when, and its health; the ones that stopped reporting.
 */
export function renderEdges(status: EdgeStatus, now: number): string {
  const since = (ms: number) => {
    const s = Math.max(0, Math.round((now - ms) / 1000));
    return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  };
  const live = status.live.map((r) => {
    const current = r.generation === status.desired;
    const mark = current && r.health === 'ok' ? '✅' : '⚠️';
    const gen = `${current ? '' : 'old '}generation \`${r.generation.slice(0, 8)}\` for ${since(r.appliedAt)}`;
    return `${mark} ${r.name} ${gen}${r.health === 'ok' ? '' : ` (${r.health})`}`;
  });
  const missing = status.missing.map((m) => `❌ ${m.name} silent for ${since(m.lastSeen)}`);
  const all = [...live, ...missing];
  return `edges: ${all.length ? all.join(' · ') : 'none reporting'}`;
}
