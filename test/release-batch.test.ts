import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { colourService } from './helpers/config.js';
import { waitFor } from './helpers/ports.js';
import { releaseIds, releases, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait } from './helpers/swarm.js';

// A parallel `/deploy all`: one message for the batch, each release's own message in its thread.
const BASE = 36400;
const stack = new TestStack({ prefix: 'fdbatch', basePort: BASE });
const names: string[] = [];
const CHANNEL = 'C0RELEASES';

const svc = (name: string, port: number, env = 'staging') => colourService('fdbatch', env, name, port);
const services = {
  alpha: svc('alpha', BASE + 1),
  beta: svc('beta', BASE + 11),
  gamma: svc('gamma', BASE + 21),
};
// qa: delta runs on real Swarm; ghost has no Swarm services, so its release fails at its first step.
const qa = { delta: svc('delta', BASE + 101, 'qa'), ghost: svc('ghost', BASE + 111, 'qa') };

/** Every text the batch message showed, in order (posted, then each update). */
const shown = new Map<string, string[]>();

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, { checklists: { gateEnvironments: [] } });
      cfg.release.steps = [10, 100];
      cfg.release.soak = ['0s', '0s'];
      cfg.environments = {
        staging: { deployers: ['*'], services },
        qa: { deployers: ['*'], services: qa },
      } as typeof cfg.environments;
    },
  });
  stack.emulator.on('transcript', (e: { kind: string; channel?: string; ts?: string; text?: string }) => {
    if ((e.kind === 'message' || e.kind === 'update') && e.channel === CHANNEL && e.ts)
      shown.set(e.ts, [...(shown.get(e.ts) ?? []), e.text ?? '']);
  });
  names.push(...(await createColourServices([...Object.values(services), qa.delta])));
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const topLevel = () => stack.emulator.messages.filter((m) => m.channel === CHANNEL && !m.threadTs);

describe('a parallel /deploy all', () => {
  it("shows the batch's progress in one message, each release's detail in its thread, and ends completed", async () => {
    const before = topLevel().length;
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'all 1.1.0 to staging');
    const answer = await stack.answerTo('U0DEV', seen, /rel-/);
    expect(answer).toMatch(
      /3 releases of 1\.1\.0 to staging; the batch's progress is one message in <#C0RELEASES>/,
    );
    const ids = releaseIds(answer);
    expect(ids).toHaveLength(3);

    for (const id of ids) await waitRelease(stack, id, (r) => r.status === 'completed', 'completed', 120_000);
    for (const name of Object.keys(services)) {
      const res = await fetch(`http://127.0.0.1:${stack.nginx.port}/staging/${name}/version`);
      expect((await res.text()).trim()).toBe('1.1.0');
    }

    // The batch message ends showing every release completed, with a line per service.
    const final = await waitFor(
      () => {
        const m = topLevel()[before];
        const text = m ? renderBlocks(m.blocks, m.text) : '';
        return text.includes('✅ Released *3 services* `1.1.0` to *staging*: 3/3 completed')
          ? text
          : undefined;
      },
      { timeoutMs: 60_000, what: 'the batch message to show 3/3 completed' },
    );
    for (const name of Object.keys(services))
      expect(final).toMatch(new RegExp(`✅ <https://[^|>]+\\|${name}> — completed · 100% green`));
    // The whole batch took one post in the channel: the batch message.
    expect(topLevel()).toHaveLength(before + 1);
    const batchTs = topLevel()[before]?.ts as string;

    // Each release's own message is a reply in the batch message's thread, linked from its line,
    // and ends on its final state too.
    for (const id of ids) {
      const r = await waitRelease(stack, id, (x) => !!x.message, 'its message');
      expect(r.message?.thread).toBe(batchTs);
      const msg = stack.emulator.messages.find((m) => m.ts === r.message?.ts);
      expect(msg?.threadTs).toBe(batchTs);
      expect(final).toContain(`p${r.message?.ts.replace('.', '')}?thread_ts=${batchTs}`);
      await waitProgress(stack, id, /✅ Released: \*\w+\* `1\.1\.0` to \*staging\*/);
    }

    // On the way it showed the releases moving: counts by state, steps, the split.
    const history = shown.get(batchTs) ?? [];
    expect(
      history.some((t) => /🚀 Releasing \*3 services\*/.test(t) && /🔄 \d+ running|⏳ \d+ soaking/.test(t)),
    ).toBe(true);
    expect(history.at(-1)).toContain('3/3 completed');
    // Within Slack's limits: nothing was refused with a 429.
    expect(stack.emulator.calls.filter((c) => c.status === 429)).toHaveLength(0);
    // A release's state is unchanged by where its message is.
    for (const id of ids) expect((await releases(stack).get(id))?.batch?.id).toMatch(/^batch-/);
  }, 240_000);

  it('names a release that rolled back, and ends saying how many completed', async () => {
    const before = topLevel().length;
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'all 1.1.0 to qa');
    const ids = releaseIds(await stack.answerTo('U0DEV', seen, /rel-/));
    expect(ids).toHaveLength(2);
    const ended = await Promise.all(
      ids.map((id) =>
        waitRelease(stack, id, (r) => r.status === 'completed' || r.status === 'rolled_back', 'ended'),
      ),
    );
    expect(ended.map((r) => [r.service, r.status]).sort()).toEqual([
      ['delta', 'completed'],
      ['ghost', 'rolled_back'],
    ]);
    const final = await waitFor(
      () => {
        const m = topLevel()[before];
        const text = m ? renderBlocks(m.blocks, m.text) : '';
        return text.startsWith('⚠️ Batch finished: 1/2 completed') ? text : undefined;
      },
      { timeoutMs: 60_000, what: 'the batch message to say the batch finished with 1/2 completed' },
    );
    expect(final).toContain('✅ 1/2 completed · ↩️ 1 rolled back');
    expect(final).toContain('*Needs attention:* ghost (rolled back)');
    expect(final).toMatch(/↩️ <https:[^|>]+\|ghost> — rolled back · 0% green/);
    // The rolled-back release's own message says so at once (a state someone acts on).
    const ghost = ended.find((r) => r.service === 'ghost') as (typeof ended)[number];
    await waitProgress(stack, ghost.id, /↩️ Rolled back/);
    expect(stack.emulator.calls.filter((c) => c.status === 429)).toHaveLength(0);
  }, 180_000);
});
