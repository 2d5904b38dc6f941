// Rollouts as things of their own (issue 15, items 2, 3 and 5), end to end: flightdeck as a real
// process, Redis, Swarm, nginx and the Slack emulator. Two rollouts at once with separate ticks and
// channels; the phase gate of production (refused in phase 1, allowed once phase 2 passes at 95%);
// a post-deployment checklist per release in its thread; finish, history, and a new rollout clean.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ChecklistStore } from '../src/checklists/checklist-store.js';
import { RolloutStore } from '../src/checklists/rollout-store.js';
import type { StoredMessage } from '../tools/slack-emulator/emulator.js';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { waitFor } from './helpers/ports.js';
import { releaseIds, soakingAt, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from './helpers/swarm.js';

const dir = mkdtempSync(join(tmpdir(), 'fd-rollouts-'));
const templatePath = join(dir, 'gates.yml');
const items = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}`, text: `${prefix} item ${i + 1}` }));
writeFileSync(
  templatePath,
  stringify({
    name: 'Gated rollout',
    phases: [
      { phase: 1, title: 'Staging', checklist: 'staging' },
      { phase: 2, title: 'Pre-production', checklist: 'preprod', passRate: 0.95 },
      { phase: 3, title: 'Production', checklist: 'pre' },
      { phase: 4, title: 'Monitoring', checklist: 'post' },
    ],
    checklists: {
      staging: { title: 'Staging validation', sections: [{ title: 'Checks', items: items('st', 2) }] },
      preprod: {
        title: 'Pre-production validation',
        sections: [{ title: 'Thresholds', items: items('pp', 20) }],
      },
      pre: { title: 'Pre-deployment checklist', sections: [{ title: 'Readiness', items: items('pre', 1) }] },
      post: { title: 'Post-deployment checklist', sections: [{ title: 'Verify', items: items('post', 2) }] },
    },
  }),
);

const stack = new TestStack({ prefix: 'fdroll', basePort: 29300 });
const names: string[] = [];
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, {
        checklists: { templates: templatePath, reminderHour: 9, gateEnvironments: ['production', 'staging'] },
      });
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const items$ = (scope: string, checklist: string) =>
  new ChecklistStore(stack.client, stack.prefix, scope).items(checklist);

/** A command and its answer (to the user, or in the channel). */
async function say(
  text: string,
  re: RegExp,
  { user = 'U0LEAD', channel = 'C0RELEASES', cmd = '/checklist' } = {},
) {
  const seen = stack.emulator.ephemeralsFor(user).length;
  const posted = stack.emulator.messages.length;
  const sent = await stack.driver.command(cmd, text, { user, channel });
  if (sent.body?.text && re.test(sent.body.text)) return sent.body.text as string;
  return waitFor(
    () =>
      stack.emulator
        .ephemeralsFor(user)
        .slice(seen)
        .find((e) => re.test(e.text))?.text ??
      stack.emulator.messages.slice(posted).find((m) => m.channel === channel && re.test(m.text))?.text,
    { what: `an answer to ${cmd} ${text} matching ${re}` },
  );
}

/** The newest message (in a channel or a thread) whose title matches, as it is now. */
async function shown(title: string, channel: string, opts: { thread?: string; context?: string } = {}) {
  return waitFor(
    () =>
      [
        ...(opts.thread
          ? stack.emulator.threadReplies(channel, opts.thread)
          : stack.emulator.channelMessages(channel)),
      ]
        .reverse()
        .find((m) => {
          const t = renderBlocks(m.blocks, m.text);
          return t.includes(`## 📋 ${title}`) && (!opts.context || t.includes(opts.context));
        }),
    { what: `the ${title} message in ${channel}` },
  );
}

/** Ticks items of one checkbox group at once, as Slack sends it: the group's new selection. */
async function tick(message: StoredMessage, ids: string[], user = 'U0LEAD') {
  const block = (message.blocks ?? []).find((b) =>
    ((b as { elements?: Array<{ options?: Array<{ value: string }> }> }).elements?.[0]?.options ?? []).some(
      (o) => o.value === ids[0],
    ),
  ) as { block_id: string; elements: Array<{ initial_options?: Array<{ value: string }> }> };
  const selected = [...(block.elements[0]?.initial_options ?? []), ...ids.map((value) => ({ value }))];
  const ack = await stack.driver.click(
    message,
    { action_id: 'checklist_tick', type: 'checkboxes', block_id: block.block_id, selected_options: selected },
    { user },
  );
  expect(ack.status).toBe(200);
  return block.block_id;
}

describe('two rollouts at once', () => {
  it('each has its own calendar, channel, ticks and messages; bad input changes nothing', async () => {
    expect(
      await say(`start alpha ${daysAgo(14)} for api in staging`, /The rollout starts on .*: \*alpha\*/),
    ).toMatch(/day 15 of 28/);
    const beta = await say('start beta gates', /The rollout starts on .*: \*beta\*/, { channel: 'C0PROD' });
    expect(beta).toContain('nothing is ticked yet');
    expect(beta).toContain('day 1 of 28');

    // Each channel's /checklist pre is its own rollout's.
    await say('pre', /Pre-deployment checklist is in this channel \(rollout \*alpha\*\)/);
    const alphaPre = await shown('Pre-deployment checklist', 'C0RELEASES', { context: 'rollout *alpha*' });
    expect((await tick(alphaPre, ['pre-1'])).startsWith('cl|alpha/pre|')).toBe(true);
    await waitFor(async () => (await items$('alpha', 'pre'))['pre-1']?.ticked, { what: "alpha's tick" });
    await say('pre', /rollout \*beta\*/, { channel: 'C0PROD' });
    const betaPre = await shown('Pre-deployment checklist', 'C0PROD', { context: 'rollout *beta*' });
    expect(renderBlocks(betaPre.blocks, betaPre.text)).toContain('[ ] pre item 1');
    expect(await items$('beta', 'pre')).toEqual({});
    // alpha's message shows its tick; beta's does not.
    await waitFor(
      () => {
        const m = stack.emulator.channelMessages('C0RELEASES').find((x) => x.ts === alphaPre.ts);
        return m && renderBlocks(m.blocks, m.text).includes('[x] pre item 1');
      },
      { what: "alpha's message updated" },
    );

    // A channel bound to neither asks which; names pick one.
    expect(await say('status', /Which rollout\?/, { channel: 'C0ONCALL' })).toContain('*alpha*, *beta*');
    expect(await say('status beta', /\*beta\* · Gated rollout/, { channel: 'C0ONCALL' })).toMatch(
      /Covers every service in every environment/,
    );
    // Bad input: a clear message, nothing changed.
    expect(await say('status nosuch', /There is no rollout \*nosuch\*/)).toContain('Active: *alpha*, *beta*');
    expect(await say(`start gamma ${daysAgo(1)} nosuch`, /There is no template \*nosuch\*/)).toContain(
      '`gates`',
    );
    expect(await say('start gamma 2026-02-30', /is not a date/)).toBeTruthy();
    expect(
      await say('start beta for web', /only its first day can change/, { channel: 'C0PROD' }),
    ).toBeTruthy();
    expect(await say('start delta', /only leads can start a rollout/, { user: 'U0DEV' })).toBeTruthy();
    const all = await new RolloutStore(stack.client, stack.prefix).all();
    expect(all.map((r) => r.id)).toEqual(['alpha', 'beta']);
    expect(all[1]).toMatchObject({ channels: ['C0PROD'], startDate: daysAgo(0) });
  }, 90_000);
});

describe('the phases gate production', () => {
  it('refuses in phase 1, and after phase 3 starts until phases 1 and 2 pass; phase 2 passes at 95%', async () => {
    const deploy = (re: RegExp) =>
      say('api 1.2.0 to production', re, { user: 'U0DEV', channel: 'C0PROD', cmd: '/deploy' });
    const inPhase1 = await deploy(/deploys wait/);
    expect(inPhase1).toContain('the pre-deployment checklist is not complete (0/1) of rollout *beta*');
    expect(inPhase1).toMatch(
      /the rollout is in phase 1 \(day 1 of 28\); production deploys open in phase 3, on/,
    );
    // alpha covers only api in staging: it does not hold production.
    expect(inPhase1).not.toContain('*alpha*');

    // A lead moves beta's first day back: the calendar says phase 3, but phases 1 and 2 have not passed.
    expect(
      await say(`start beta ${daysAgo(14)}`, /moved by <@U0LEAD>; its ticks stay/, { channel: 'C0PROD' }),
    ).toContain('day 15 of 28');
    expect(await deploy(/deploys wait/)).toMatch(
      /phase 1 \(Staging\) has not passed: 0\/2 ticked \(0%\), needs all; phase 2 \(Pre-production\) has not passed: 0\/20/,
    );

    await say('phase 1', /Staging validation is in this channel \(rollout \*beta\*\)/, { channel: 'C0PROD' });
    await tick(await shown('Staging validation', 'C0PROD'), ['st-1', 'st-2']);
    await say('phase 2', /Pre-production validation is in this channel \(rollout \*beta\*\)/, {
      channel: 'C0PROD',
    });
    const pp = await shown('Pre-production validation', 'C0PROD');
    await tick(
      pp,
      items('pp', 10).map((i) => i.id),
    );
    await waitFor(async () => Object.keys(await items$('beta', 'preprod')).length === 10, {
      what: '10 ticks',
    });
    const pp2 = await waitFor(
      () => {
        const m = stack.emulator.channelMessages('C0PROD').find((x) => x.ts === pp.ts);
        return m && renderBlocks(m.blocks, m.text).includes('10/20') ? m : undefined;
      },
      { what: 'the phase 2 message with 10 ticks' },
    );
    await tick(pp2, ['pp-11', 'pp-12', 'pp-13', 'pp-14', 'pp-15', 'pp-16', 'pp-17', 'pp-18']);
    await waitFor(async () => Object.keys(await items$('beta', 'preprod')).length === 18, {
      what: '18 ticks',
    });
    await tick(await shown('Pre-deployment checklist', 'C0PROD'), ['pre-1']);
    await waitFor(async () => (await items$('beta', 'pre'))['pre-1']?.ticked, { what: "beta's pre tick" });
    // 18 of 20 is 90%: not enough.
    const at90 = await deploy(/deploys wait/);
    expect(at90).toContain('phase 2 (Pre-production) has not passed: 18/20 ticked (90%), needs 95% (19)');
    expect(at90).not.toContain('phase 1');
    expect(at90).not.toContain('pre-deployment');
    // The 19th item: 95%, production opens (it waits for the approval production needs).
    const pp3 = await waitFor(
      () => {
        const m = stack.emulator.channelMessages('C0PROD').find((x) => x.ts === pp.ts);
        return m && renderBlocks(m.blocks, m.text).includes('18/20') ? m : undefined;
      },
      { what: 'the phase 2 message with 18 ticks' },
    );
    await tick(pp3, ['pp-19']);
    await waitFor(async () => Object.keys(await items$('beta', 'preprod')).length === 19, {
      what: '19 ticks',
    });
    expect(await deploy(/waits for a lead other than you to approve|deploys wait/)).toMatch(
      /api 1\.2\.0 to production waits for a lead other than you to approve/,
    );
    const status = await say('status beta', /Phase 2 Pre-production/);
    expect(status).toMatch(/Phase 2 Pre-production .* 19\/20 · passes at 95%/);
  }, 120_000);
});

describe('a post-deployment checklist per release', () => {
  it("opens in the release's thread with its own ticks; phase 4 lists the rollout's releases", async () => {
    // alpha (api in staging) is in phase 3; a lead lets its phases pass, its pre is ticked already.
    await say(
      'override alpha phase 1 staging verified by hand',
      /overrode phase 1's checklist of rollout \*alpha\*/,
    );
    await say(
      'override alpha phase 2 preprod verified by hand',
      /overrode phase 2's checklist of rollout \*alpha\*/,
    );
    const release = async (version: string) => {
      const started = await say(`api ${version}`, /releasing api/, { user: 'U0DEV', cmd: '/deploy' });
      const [id] = releaseIds(started);
      for (const p of [10, 50, 100]) {
        await waitRelease(stack, id as string, soakingAt(p), `soaking at ${p}%`);
        await say('promote api', /Promoted/, { user: 'U0DEV', cmd: '/deploy' });
      }
      return waitRelease(stack, id as string, (r) => r.status === 'completed', 'completed');
    };
    const first = await release('1.1.0');
    const post1 = await shown('Post-deployment checklist', 'C0RELEASES', { thread: first.message?.ts });
    const text1 = renderBlocks(post1.blocks, post1.text);
    expect(text1).toContain('release of *api* `1.1.0` to *staging* · rollout *alpha*');
    await tick(post1, ['post-1'], 'U0LEAD');
    await waitFor(async () => (await items$(first.id, 'post'))['post-1']?.ticked, {
      what: "the release's tick",
    });
    expect(await items$('alpha', 'post')).toEqual({});

    const second = await release('1.2.0');
    const post2 = await shown('Post-deployment checklist', 'C0RELEASES', { thread: second.message?.ts });
    expect(renderBlocks(post2.blocks, post2.text)).toContain('[ ] post item 1');
    expect(await items$(second.id, 'post')).toEqual({});

    const status = await say('status alpha', /Post-deployment checklists of its releases \(2\)/);
    expect(status).toMatch(/⏳ api `1\.2\.0` → staging · 0\/2/);
    expect(status).toMatch(/⏳ api `1\.1\.0` → staging · 1\/2/);
    await say('post alpha', /Post-deployment checklist is in this channel \(rollout \*alpha\*\)/);
    const phase4 = await shown('Post-deployment checklist', 'C0RELEASES', {
      context: 'Releases of this rollout (2)',
    });
    expect(renderBlocks(phase4.blocks, phase4.text)).toContain('api `1.1.0` → staging · 1/2');
  }, 240_000);
});

describe('finishing a rollout', () => {
  it('keeps it with every tick for history; a new rollout starts with nothing ticked', async () => {
    const history = await say('history alpha', /History of rollout alpha/);
    expect(history).toMatch(/<@U0LEAD> ☑️ ticked post item 1 \(post-deployment of rel-staging-api-/);
    expect(history).toMatch(/<@U0LEAD> ☑️ ticked pre item 1 \(pre\)/);
    expect(await say('finish alpha', /only leads can finish a rollout/, { user: 'U0DEV' })).toBeTruthy();
    expect(await say('finish alpha', /finished rollout \*alpha\*/)).toContain('/checklist history alpha');
    expect(await say('status alpha', /\*alpha\*/)).toMatch(/finished by <@U0LEAD>/);
    expect(await say('start alpha', /Rollout \*alpha\* finished/)).toBeTruthy();
    expect(await say('pre alpha', /Rollout \*alpha\* finished/)).toBeTruthy();
    // The history survives the finish, and a restart.
    await stack.apps[0]?.kill();
    await stack.apps[0]?.start();
    expect(await say('history alpha', /History of rollout alpha/)).toContain('pre item 1');

    const fresh = await say(
      `start alpha-2 ${daysAgo(14)} for api in staging`,
      /The rollout starts on .*: \*alpha-2\*/,
    );
    expect(fresh).toMatch(/Phase 3 Production .* 0\/1/);
    expect(fresh).toMatch(/Phase 1 Staging .* 0\/2/);
    expect(await items$('alpha-2', 'pre')).toEqual({});
    const list = await say('list', /Rollouts \(3\)/);
    expect(list).toMatch(/• alpha · finished/);
    expect(list).toMatch(/\*alpha-2\* · Gated rollout · day 15 of 28/);
  }, 120_000);
});
