import type { FlightdeckConfig } from '../config/schema.js';
import type { ServiceState } from './schema.js';
import { textBar } from './weights.js';

/** `/traffic status`: every service's split as a small text bar, per environment. */
export function renderTrafficStatus(
  config: FlightdeckConfig,
  states: Map<string, ServiceState>,
  only?: string,
): string {
  const lines: string[] = [];
  for (const [env, e] of Object.entries(config.environments)) {
    if (only && env !== only) continue;
    lines.push(`*${env}*`);
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
