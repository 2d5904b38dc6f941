import type { Colour } from '../config/schema.js';
import type { Weights } from './schema.js';

export const other = (c: Colour): Colour => (c === 'blue' ? 'green' : 'blue');

/** `percent` to `colour`, the rest to the other colour. */
export function weightsFor(colour: Colour, percent: number): Weights {
  return colour === 'blue'
    ? { blue: percent, green: 100 - percent }
    : { blue: 100 - percent, green: percent };
}

/** `█████░░░░░ 50%`: a split readable in Slack without images. */
export function textBar(percent: number, width = 10): string {
  const filled = Math.round((percent / 100) * width);
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${String(percent).padStart(3)}%`;
}

export function describeSplit(w: Weights): string {
  return `blue \`${textBar(w.blue)}\` · green \`${textBar(w.green)}\``;
}

/** Colours that receive any traffic under these weights. */
export function servingColours(w: Weights): Colour[] {
  return (['blue', 'green'] as const).filter((c) => w[c] > 0);
}
