import { ReleaseStore } from '../../src/releases/release-store.js';
import type { Release } from '../../src/releases/schema.js';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { waitFor } from './ports.js';
import type { TestStack } from './stack.js';

/** What these helpers need of a suite: TestStack, or the multi-node suite's EdgeBed. */
export type Suite = Pick<TestStack, 'emulator' | 'driver' | 'client' | 'prefix' | 'answerTo'>;

export function releases(stack: Suite): ReleaseStore {
  return new ReleaseStore(stack.client, stack.prefix);
}

/** Waits until a release satisfies `pred` (reading Redis as any replica would). */
export async function waitRelease(
  stack: Suite,
  id: string,
  pred: (r: Release) => boolean,
  what: string,
  timeoutMs = 90_000,
): Promise<Release> {
  const store = releases(stack);
  let last: Release | undefined;
  return waitFor(
    async () => {
      last = await store.get(id);
      return last && pred(last) ? last : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `${id}: ${what}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast state: ${JSON.stringify(last, null, 1)?.slice(0, 4000)}`);
  });
}

export const soakingAt = (percent: number) => (r: Release) => {
  const s = r.steps[r.stepIndex];
  return r.status === 'running' && s?.kind === 'soak' && s.status === 'waiting' && s.percent === percent;
};

/** Counts which colour answers, through nginx. */
export async function measureSplit(
  url: string,
  n = 200,
): Promise<{ blue: number; green: number; other: number }> {
  const counts = { blue: 0, green: 0, other: 0 };
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { headers: { connection: 'close' } });
    const body = (await res.text()).trim();
    if (body === 'blue' || body === 'green') counts[body] += 1;
    else counts.other += 1;
  }
  return counts;
}

/** The progress message of a release as a user sees it in the emulator. */
export function progressText(stack: Suite, r: Release): string {
  if (!r.message) return '';
  const msg = stack.emulator.messages.find((m) => m.channel === r.message?.channel && m.ts === r.message?.ts);
  return msg ? renderBlocks(msg.blocks, msg.text) : '';
}

export async function waitProgress(
  stack: Suite,
  id: string,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<string> {
  const store = releases(stack);
  let text = '';
  return waitFor(
    async () => {
      const r = await store.get(id);
      text = r ? progressText(stack, r) : '';
      return pattern.test(text) ? text : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `progress message of ${id} to match ${pattern}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nmessage now:\n${text}`);
  });
}

export const releaseIds = (text: string): string[] =>
  [...text.matchAll(/`(rel-[a-z0-9-]+)`/g)].map((m) => m[1] as string);

/** `/deploy <text>` as U0DEV; resolves to the release id from the "releasing" answer. */
export async function deployRelease(stack: Suite, text: string): Promise<string> {
  const seen = stack.emulator.ephemeralsFor('U0DEV').length;
  await stack.driver.command('/deploy', text);
  const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
  return id as string;
}

/** `/deploy promote <service>` as U0DEV, once it is answered "Promoted". */
export async function promoteRelease(stack: Suite, service: string): Promise<void> {
  const seen = stack.emulator.ephemeralsFor('U0DEV').length;
  await stack.driver.command('/deploy', `promote ${service}`);
  await stack.answerTo('U0DEV', seen, /Promoted/);
}
