import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ChecklistStore, MESSAGE_CAP } from '../src/checklists/checklist-store.js';
import { todayIn } from '../src/checklists/rollout-calendar.js';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { waitFor } from './helpers/ports.js';
import { TestPrometheus } from './helpers/prometheus-server.js';
import { releaseIds, soakingAt, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from './helpers/swarm.js';

// A template of our own (templates are replaceable by config): phase 1 has 50 items for the
// concurrency test; the gate has manual and automatic items.
const dir = mkdtempSync(join(tmpdir(), 'fd-template-'));
const templatePath = join(dir, 'team.yml');
const items = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}`, text: `${prefix} item ${i + 1}` }));
writeFileSync(
  templatePath,
  stringify({
    name: 'Test rollout',
    phases: [
      { phase: 1, title: 'Staging', checklist: 'big' },
      { phase: 2, title: 'Pre-production', checklist: 'small' },
      { phase: 3, title: 'Production', checklist: 'pre' },
      { phase: 4, title: 'After', checklist: 'post' },
    ],
    checklists: {
      big: {
        title: 'Big checklist',
        sections: [1, 2, 3, 4, 5].map((s) => ({ title: `Section ${s}`, items: items(`s${s}`, 10) })),
      },
      small: { title: 'Small checklist', sections: [{ title: 'Only', items: items('small', 2) }] },
      pre: {
        title: 'Pre-deployment checklist',
        sections: [
          {
            title: 'Readiness',
            items: [
              { id: 'runbook', text: 'Deployment runbook reviewed', owner: 'U0LEAD' },
              { id: 'rollback-tested', text: 'Rollback procedure tested' },
            ],
          },
          {
            title: 'Verified by flightdeck',
            items: [
              {
                id: 'api-converged',
                text: 'staging api converged in Swarm',
                check: { kind: 'swarm-converged', environment: 'staging', service: 'api' },
              },
              {
                id: 'api-healthy',
                text: 'staging api answers its health path',
                check: { kind: 'health', environment: 'staging', service: 'api' },
              },
              {
                id: 'scraped',
                text: 'Prometheus scrapes flightdeck',
                check: { kind: 'promql', query: 'min(up{job="flightdeck"})', min: 1 },
              },
            ],
          },
        ],
      },
      post: {
        title: 'Post-deployment checklist',
        sections: [{ title: 'Immediate verification', items: items('post', 2) }],
      },
    },
  }),
);

const stack = new TestStack({ prefix: 'fdcheck', basePort: 29000 });
const prom = new TestPrometheus();
const names: string[] = [];
let checklistQueue: Queue;

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, {
        checklists: { templates: templatePath, reminderHour: 9, gateEnvironments: ['production', 'staging'] },
        prometheus: { url: 'http://127.0.0.1:1' }, // replaced below once Prometheus runs
      });
      // Ticking needs a deployer of every gated environment (or a lead): on-call may deploy too here.
      Object.assign(cfg.environments.production as object, { deployers: ['U0DEV', 'U0ONCALL'] });
    },
  });
  // Prometheus scrapes flightdeck's own /metrics (a real target for the promql item).
  await prom.start([{ address: `127.0.0.1:${stack.apps[0]?.port}`, labels: { job: 'flightdeck' } }]);
  Object.assign(stack.config, { prometheus: { url: prom.url } });
  // Restart with the Prometheus URL (start() writes the config file anew).
  await stack.apps[0]?.stop();
  await stack.apps[0]?.start();
  names.push(...(await createStagingColourServices(stack, 'api')));
  checklistQueue = new Queue('checklists', { connection: stack.redis.client(), prefix: stack.prefix });
}, 180_000);

afterAll(async () => {
  await checklistQueue?.close();
  await stack.stop();
  await prom.destroy();
  await removeServicesAndWait(names);
});

// `/checklist start YYYY-MM-DD` starts (or re-dates) the rollout `default`.
const store = () => new ChecklistStore(stack.client, stack.prefix, 'default');

async function say(cmd: string, text: string, user: string, re: RegExp): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  const posted = stack.emulator.channelMessages('C0RELEASES').length;
  const sent = await stack.driver.command(cmd, text, { user });
  if (sent.body?.text && re.test(sent.body.text)) return sent.body.text;
  return waitFor(
    () => {
      const e = stack.emulator
        .ephemeralsFor(user)
        .slice(seen)
        .find((x) => re.test(x.text));
      if (e) return e.text;
      return stack.emulator
        .channelMessages('C0RELEASES')
        .slice(posted)
        .find((m) => re.test(m.text))?.text;
    },
    { what: `an answer matching ${re}` },
  );
}

/** The newest checklist message in the channel whose title matches. */
async function checklistMessage(title: string) {
  return waitFor(
    () =>
      [...stack.emulator.channelMessages('C0RELEASES')]
        .reverse()
        .find((m) => renderBlocks(m.blocks, m.text).includes(`## 📋 ${title}`)),
    { what: `the ${title} message` },
  );
}

/** Clicks one checkbox of a group, as Slack sends it: the group's whole new selection. */
async function tick(
  message: { channel: string; ts: string; blocks?: unknown[] },
  itemId: string,
  user: string,
) {
  const block = (message.blocks ?? []).find((b) =>
    ((b as { elements?: Array<{ options?: Array<{ value: string }> }> }).elements?.[0]?.options ?? []).some(
      (o) => o.value === itemId,
    ),
  ) as { block_id: string; elements: Array<{ initial_options?: Array<{ value: string }> }> };
  const selected = [...(block.elements[0]?.initial_options ?? []), { value: itemId }];
  return stack.driver.click(
    message,
    { action_id: 'checklist_tick', type: 'checkboxes', block_id: block.block_id, selected_options: selected },
    { user },
  );
}

describe('the 28-day rollout', () => {
  it('has not started until a lead sets the first day', async () => {
    expect(await say('/checklist', 'status', 'U0DEV', /No rollout has started/)).toBeTruthy();
    expect(await say('/checklist', 'start 2026-11-02', 'U0DEV', /Not done: only leads/)).toBeTruthy();
    // Day 1 is 14 days ago: the calendar says phase 3.
    const start = new Date(Date.now() - 14 * 86_400_000).toISOString().slice(0, 10);
    const answer = await say('/checklist', `start ${start}`, 'U0LEAD', /The rollout starts on/);
    expect(answer).toContain('day 15 of 28');
    expect(answer).toMatch(/The calendar says phase 3, but phase 1's checklist is not complete/);
    expect(todayIn('Europe/London', new Date())).toBeTruthy();
  });

  it('50 people ticking 50 different items at the same moment: all recorded, the message shows all', async () => {
    await say('/checklist', '', 'U0DEV', /Big checklist is in this channel/);
    const msg = await checklistMessage('Big checklist');
    const ids = [1, 2, 3, 4, 5].flatMap((s) => Array.from({ length: 10 }, (_, i) => `s${s}-${i + 1}`));
    // Everyone clicks on the message as it was first shown (none ticked).
    const snapshot = { ...msg, blocks: structuredClone(msg.blocks) };
    const users = ['U0DEV', 'U0LEAD', 'U0ONCALL'];
    const acks = await Promise.all(ids.map((id, i) => tick(snapshot, id, users[i % users.length] as string)));
    expect(acks.every((a) => a.status === 200 && a.ms < 3_000)).toBe(true);
    const states = await waitFor(
      async () => {
        const s = await store().items('big');
        return Object.values(s).filter((x) => x.ticked).length === 50 ? s : undefined;
      },
      { timeoutMs: 30_000, what: '50 ticks in Redis' },
    );
    expect(states['s3-7']?.by).toBe(users[26 % users.length]);
    const updated = await waitFor(
      () => {
        const m = stack.emulator.channelMessages('C0RELEASES').find((x) => x.ts === msg.ts);
        const text = m ? renderBlocks(m.blocks, m.text) : '';
        return (text.match(/\[x\]/g) ?? []).length === 50 ? text : undefined;
      },
      { timeoutMs: 30_000, what: 'the message updated in place with 50 ticks' },
    );
    expect(updated).toContain('50/50');
    const audit = await stack.audit.recent(500);
    expect(
      audit.filter((e) => e.text.startsWith('[button] checklist_tick +s')).length,
    ).toBeGreaterThanOrEqual(50);
  }, 60_000);

  it('keeps its state across a restart of flightdeck', async () => {
    await stack.apps[0]?.kill();
    await stack.apps[0]?.start();
    const status = await say('/checklist', 'status', 'U0DEV', /Phase 1 Staging/);
    expect(status).toMatch(/Phase 1 Staging .* 50\/50/);
    expect(status).toMatch(/Phase 2 Pre-production .* 0\/2/);
  });

  it('unticking records who and when too', async () => {
    const msg = await checklistMessage('Big checklist');
    const block = (msg.blocks ?? []).find((b) =>
      (b as { block_id?: string }).block_id?.startsWith('cl|default/big|0|'),
    ) as {
      block_id: string;
      elements: Array<{ initial_options?: Array<{ value: string }> }>;
    };
    const selected = (block.elements[0]?.initial_options ?? []).filter((o) => o.value !== 's1-1');
    await stack.driver.click(
      msg,
      {
        action_id: 'checklist_tick',
        type: 'checkboxes',
        block_id: block.block_id,
        selected_options: selected,
      },
      { user: 'U0ONCALL' },
    );
    const s = await waitFor(async () => {
      const st = (await store().items('big'))['s1-1'];
      return st && !st.ticked ? st : undefined;
    });
    expect(s.by).toBe('U0ONCALL');
  });
});

describe('the production gate', () => {
  it('refuses a gated deploy while the pre-deployment checklist is open, naming what is missing; a lead may override', async () => {
    const refused = await say('/deploy', 'api 1.1.0', 'U0DEV', /deploys wait/);
    expect(refused).toMatch(/staging deploys wait: the pre-deployment checklist is not complete \(0\/5\)/);
    expect(refused).toContain('• Readiness: Deployment runbook reviewed');
    expect(refused).toContain('• Verified by flightdeck: staging api converged in Swarm');
    expect(await say('/checklist', 'override pre because', 'U0DEV', /only leads can override/)).toBeTruthy();
    expect(await say('/checklist', 'override pre ok', 'U0LEAD', /needs a reason/)).toBeTruthy();
  });

  it('automatic items tick themselves against the real Swarm, nginx and Prometheus, with evidence', async () => {
    // Prometheus applies new targets after a few seconds: wait for a scrape of flightdeck that
    // succeeded (`up` is 0 after a failed one, e.g. a scrape timeout on a loaded machine).
    await waitFor(async () => (await prom.query('up{job="flightdeck"} == 1')).length > 0, {
      timeoutMs: 120_000,
      what: 'a successful scrape of flightdeck',
    });
    await say('/checklist', 'pre', 'U0DEV', /Pre-deployment checklist is in this channel/);
    const text = await waitFor(
      async () => {
        const m = await checklistMessage('Pre-deployment checklist');
        const t = renderBlocks(m.blocks, m.text);
        return (t.match(/🤖 ✅/g) ?? []).length === 3 ? t : undefined;
      },
      { timeoutMs: 40_000, what: 'three automatic items ticked' },
    ).catch(async (err) => {
      const m = await checklistMessage('Pre-deployment checklist');
      throw new Error(`${(err as Error).message}\n${renderBlocks(m.blocks, m.text)}`);
    });
    expect(text).toMatch(
      /🤖 ✅ staging api converged in Swarm — 1\/1: fdcheck-staging-api-blue 1\/1 running/,
    );
    expect(text).toMatch(/🤖 ✅ staging api answers its health path — 1\/1: api\/blue healthy/);
    expect(text).toMatch(/🤖 ✅ Prometheus scrapes flightdeck — 1\.00 \(≥ 1\)/);
    expect(text).toContain('[Re-check automatic items]');
  }, 200_000);

  it('opens once the checklist is done, and the post-deployment checklist opens after the release', async () => {
    const msg = await checklistMessage('Pre-deployment checklist');
    // The runbook item is the lead's: a deployer may not tick it for them, and is told why.
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await tick(msg, 'runbook', 'U0DEV');
    const why = await waitFor(
      () =>
        stack.emulator
          .ephemeralsFor('U0DEV')
          .slice(seen)
          .find((e) => e.text.includes('Not done'))?.text,
      { what: 'the refusal of the tick' },
    );
    expect(why).toContain('belongs to <@U0LEAD>: only they or a lead can tick or untick it');
    expect((await store().items('pre')).runbook).toBeUndefined();
    await tick(msg, 'runbook', 'U0LEAD');
    await waitFor(async () => (await store().items('pre')).runbook?.ticked);
    const refused = await say('/deploy', 'api 1.1.0', 'U0DEV', /deploys wait/);
    expect(refused).toMatch(/\(4\/5\)[\s\S]*Rollback procedure tested/);
    expect(refused).not.toContain('Deployment runbook reviewed');

    const override = await say(
      '/checklist',
      'override pre rollback drill done on Tuesday',
      'U0LEAD',
      /overrode the production gate/,
    );
    expect(override).toContain('rollback drill done on Tuesday');
    const audit = await stack.audit.recent(200);
    expect(
      audit.some(
        (e) => e.userId === 'U0LEAD' && e.command === '/checklist' && e.text.startsWith('override pre'),
      ),
    ).toBe(true);

    // The phases gate too: phase 3 on the calendar, but phases 1 and 2 have not passed.
    expect(await say('/deploy', 'api 1.1.0', 'U0DEV', /deploys wait/)).toMatch(
      /phase 1 \(Staging\) has not passed: 49\/50 ticked \(98%\), needs all; phase 2 \(Pre-production\) has not passed: 0\/2/,
    );
    await say('/checklist', 'override phase 1 staging verified by hand', 'U0LEAD', /overrode phase 1/);
    await say('/checklist', 'override phase 2 preprod verified by hand', 'U0LEAD', /overrode phase 2/);
    const started = await say('/deploy', 'api 1.1.0', 'U0DEV', /releasing api 1\.1\.0/);
    const [id] = releaseIds(started);
    for (const p of [10, 50, 100]) {
      await waitRelease(stack, id as string, soakingAt(p), `soaking at ${p}%`);
      await say('/deploy', 'promote api', 'U0DEV', /Promoted/);
    }
    const done = await waitRelease(stack, id as string, (r) => r.status === 'completed', 'completed');
    // The release's own post-deployment checklist, in the release's thread.
    const post = await waitFor(
      () =>
        stack.emulator
          .threadReplies('C0RELEASES', done.message?.ts ?? '')
          .find((m) => renderBlocks(m.blocks, m.text).includes('## 📋 Post-deployment checklist')),
      { what: "the post-deployment checklist in the release's thread" },
    );
    expect(renderBlocks(post.blocks, post.text)).toContain('Phase 4: After');
  }, 120_000);
});

describe('reminders and App Home', () => {
  it('the daily digest is scheduled once with two worker processes, and lists what is overdue', async () => {
    await stack.addApp('worker');
    await new Promise((r) => setTimeout(r, 1_000));
    const schedulers = await checklistQueue.getJobSchedulers();
    expect(schedulers.filter((s) => s.key === 'checklist-daily')).toHaveLength(1);
    expect(schedulers[0]).toMatchObject({ pattern: '0 9 * * *', tz: 'Europe/London' });
    const next = new Date(Number(schedulers[0]?.next));
    expect(
      new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Europe/London',
        hour: '2-digit',
        minute: '2-digit',
      }).format(next),
    ).toBe('09:00');
    expect(await checklistQueue.getDelayedCount()).toBe(1);

    await checklistQueue.add('daily', {});
    const digest = await waitFor(
      () => stack.emulator.channelMessages('C0RELEASES').find((m) => m.text.startsWith('🗓️ *Rollout day')),
      {
        what: 'the digest',
      },
    );
    expect(digest.text).toContain('Rollout day 15 of 28');
    expect(digest.text).toMatch(/\*Overdue \(\d+\)\*[\s\S]*phase 1 · s1 item 1/);
    expect(digest.text).toContain('phase 2 · small item 1');
  });

  it('App Home shows the rollout, releases in flight and open alerts', async () => {
    const ack = await stack.driver.event({
      type: 'app_home_opened',
      user: 'U0LEAD',
      channel: 'D0LEAD',
      tab: 'home',
    });
    expect(ack.status).toBe(200);
    const view = await waitFor(() => stack.emulator.homeViews.get('U0LEAD'), { what: 'the App Home' });
    const text = renderBlocks(view.blocks as unknown[], '');
    expect(text).toContain('Test rollout');
    expect(text).toContain('day 15 of 28');
    expect(text).toContain('*Releases in flight (0)*');
    expect(text).toContain('*Open alerts (0)*');
  });
});

describe('a checklist shown in more messages than the cap', () => {
  it('keeps the newest up to date and points the older ones to a newer one, within the chat.update budget', async () => {
    const from = stack.emulator.messages.length;
    const channels = ['C0RELEASES', 'C0ALERTS', 'C0ONCALL', 'C0PROD'];
    // 15 more than the cap: the pointers and refreshes need more chat.updates than one burst (20).
    const n = MESSAGE_CAP + 15;
    for (let i = 0; i < n; i++)
      await stack.driver.command('/checklist', 'phase 2', { user: 'U0DEV', channel: channels[i % 4] });
    const posted = () =>
      stack.emulator.messages
        .slice(from)
        .filter(
          (m) => m.via === 'chat.postMessage' && /^checklist:/.test(String(m.metadata?.event_payload?.key)),
        )
        .sort((a, b) => Number(a.ts.split('.')[1]) - Number(b.ts.split('.')[1]));
    await waitFor(() => posted().length === n, { timeoutMs: 60_000, what: `${n} checklist messages` });
    const all = posted();
    const newest = all.at(-1) as (typeof all)[number];
    await tick(newest, 'small-1', 'U0DEV');
    const link = (m: { channel: string; ts: string }) => `/archives/${m.channel}/p${m.ts.replace('.', '')}|`;
    const state = () =>
      all.map((m, i) => {
        const text = renderBlocks(m.blocks, m.text);
        if (i >= n - MESSAGE_CAP) return text.includes('[x] small item 1') ? 'ticked' : 'stale';
        const to = all.slice(i + 1).find((later) => text.includes(link(later)));
        return text.startsWith('📋 This checklist moved:') && to ? 'points' : 'stale';
      });
    await waitFor(() => state().every((s) => s !== 'stale'), {
      timeoutMs: 180_000,
      what: 'every message ticked (the newest) or pointing to a newer one (the older)',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}: ${state().join(' ')}`);
    });
    expect(state().filter((s) => s === 'points')).toHaveLength(n - MESSAGE_CAP);
    const shown = await store().messages('small');
    expect(shown.map((m) => m.ts).sort()).toEqual(
      all
        .slice(-MESSAGE_CAP)
        .map((m) => m.ts)
        .sort(),
    );
    expect(await store().moved('small')).toEqual([]);
    // Within Slack's budget all along.
    expect(stack.emulator.callCount('chat.update', 429)).toBe(0);
  }, 300_000);
});
