// Who may tick, and the seed's thresholds as automatic checks, end to end: flightdeck as a real
// process with its Redis, the Slack emulator, and a real Prometheus scraping a metrics backend of the
// test's own (the seed's metric names: an HTTP histogram, cAdvisor's container_* series).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { waitFor } from './helpers/ports.js';
import { TestPrometheus } from './helpers/prometheus-server.js';
import { TestStack } from './helpers/stack.js';

/** What the backend reports; counters grow with time at these rates, so rate() is exact. */
const backend = { cpuCores: 0.25, memoryBytes: 400e6, limitBytes: 1e9, started: Date.now() };
function metricsText(): string {
  const t = (Date.now() - backend.started) / 1000 + 1;
  // 100 requests/s: 90% within 0.25 s, all within 0.5 s: p95 = 0.375 s; mean 0.2 s.
  const lines = [
    '# TYPE http_request_duration_seconds histogram',
    `http_request_duration_seconds_bucket{le="0.25"} ${90 * t}`,
    `http_request_duration_seconds_bucket{le="0.5"} ${100 * t}`,
    `http_request_duration_seconds_bucket{le="+Inf"} ${100 * t}`,
    `http_request_duration_seconds_sum ${20 * t}`,
    `http_request_duration_seconds_count ${100 * t}`,
    '# TYPE container_cpu_usage_seconds_total counter',
    `container_cpu_usage_seconds_total{name="api-blue"} ${backend.cpuCores * t}`,
    `container_cpu_usage_seconds_total{name="api-green"} ${0.05 * t}`,
    '# TYPE container_memory_working_set_bytes gauge',
    `container_memory_working_set_bytes{name="api-blue"} ${backend.memoryBytes}`,
    `container_memory_working_set_bytes{name="api-green"} ${100e6}`,
    '# TYPE container_spec_memory_limit_bytes gauge',
    `container_spec_memory_limit_bytes{name="api-blue"} ${backend.limitBytes}`,
    `container_spec_memory_limit_bytes{name="api-green"} ${backend.limitBytes}`,
    // A container without a limit is left out of the memory check.
    `container_memory_working_set_bytes{name="sidecar"} ${5e9}`,
    'container_spec_memory_limit_bytes{name="sidecar"} 0',
  ];
  return `${lines.join('\n')}\n`;
}

// A template of the team's own for the tick lists not in the shipped ones (a user group, a user).
const dir = mkdtempSync(join(tmpdir(), 'fd-perm-'));
const ownTemplate = join(dir, 'own.yml');
const list = (id: string, title: string, extra: Record<string, unknown> = {}) => ({
  title,
  ...extra,
  sections: [{ title: 'Only', items: [{ id: `${id}-1`, text: `${title} item` }] }],
});
writeFileSync(
  ownTemplate,
  stringify({
    name: 'Own rollout',
    phases: [
      { phase: 1, title: 'QA', checklist: 'qa' },
      { phase: 2, title: 'Two', checklist: 'two' },
      { phase: 3, title: 'Three', checklist: 'pre' },
      { phase: 4, title: 'Four', checklist: 'post' },
    ],
    checklists: {
      qa: {
        title: 'QA sign-off',
        sections: [
          {
            title: 'Release managers',
            mayTick: ['group:S0RELEASE'],
            items: [
              { id: 'sign-off', text: 'QA signed off' },
              { id: 'guest-note', text: 'Release notes proofread', mayTick: ['U0GUEST'] },
            ],
          },
        ],
      },
      two: list('two', 'Two'),
      pre: list('pre', 'Pre-deployment checklist'),
      post: list('post', 'Post-deployment checklist'),
    },
  }),
);

const stack = new TestStack({ prefix: 'fdperm', basePort: 33400 });
const prom = new TestPrometheus();
let metrics: Server;

beforeAll(async () => {
  metrics = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(metricsText());
  });
  await new Promise<void>((r) => metrics.listen(0, '127.0.0.1', r));
  const port = (metrics.address() as AddressInfo).port;
  await prom.start([{ address: `127.0.0.1:${port}`, labels: { job: 'app', environment: 'staging' } }]);
  await stack.start({
    emulator: { userGroups: [{ id: 'S0RELEASE', handle: 'release-managers', users: ['U0ONCALL'] }] },
    // The shipped bizosaas template (the default), production's deployer U0DEV, staging open to all.
    configure: (cfg) => Object.assign(cfg, { prometheus: { url: prom.url } }),
  });
  const start = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
  await say('/checklist', `start ${start}`, 'U0LEAD', /starts on/);
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await prom.destroy();
  await new Promise((r) => metrics?.close(r));
});

async function say(cmd: string, text: string, user: string, re: RegExp): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  const posted = stack.emulator.messages.length;
  const sent = await stack.driver.command(cmd, text, { user });
  if (sent.body?.text && re.test(sent.body.text)) return sent.body.text;
  return waitFor(
    () =>
      stack.emulator
        .ephemeralsFor(user)
        .slice(seen)
        .find((x) => re.test(x.text))?.text ??
      stack.emulator.messages.slice(posted).find((m) => re.test(m.text))?.text,
    { timeoutMs: 20_000, what: `an answer matching ${re}` },
  );
}

/** The newest message of a checklist, by its title. */
function checklistMessage(title: string) {
  return waitFor(
    () =>
      [...stack.emulator.channelMessages('C0RELEASES')]
        .reverse()
        .find((m) => renderBlocks(m.blocks, m.text).includes(`## 📋 ${title}`)),
    { what: `the ${title} message` },
  );
}

/** One click on one checkbox, as Slack sends it: the group's whole new selection. */
async function click(title: string, itemId: string, user: string, on = true) {
  const message = await checklistMessage(title);
  const block = (message.blocks ?? []).find((b) =>
    ((b as { elements?: Array<{ options?: Array<{ value: string }> }> }).elements?.[0]?.options ?? []).some(
      (o) => o.value === itemId,
    ),
  ) as { block_id: string; elements: Array<{ initial_options?: Array<{ value: string }> }> };
  const before = block.elements[0]?.initial_options ?? [];
  const selected = on ? [...before, { value: itemId }] : before.filter((o) => o.value !== itemId);
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.click(
    message,
    { action_id: 'checklist_tick', type: 'checkboxes', block_id: block.block_id, selected_options: selected },
    { user },
  );
  return waitFor(
    () =>
      stack.emulator
        .ephemeralsFor(user)
        .slice(seen)
        .find((e) => e.via !== 'ack' && /Not done|Ticked|Unticked|Nothing changed/.test(e.text))?.text,
    { timeoutMs: 20_000, what: `the answer to ${user}'s click on ${itemId}` },
  );
}

const itemLine = (text: string, item: string) => text.split('\n').find((l) => l.includes(item)) ?? '';

/** The description under a checkbox (who ticked or unticked it, and when). */
function description(message: { blocks?: unknown[] }, itemId: string): string | undefined {
  for (const b of message.blocks ?? []) {
    const options =
      (b as { elements?: Array<{ options?: Array<{ value: string; description?: { text: string } }> }> })
        .elements?.[0]?.options ?? [];
    const o = options.find((x) => x.value === itemId);
    if (o) return o.description?.text;
  }
  return undefined;
}

describe('who may tick (the shipped bizosaas template)', () => {
  it('refuses a guest’s and a non-deployer’s tick of the production gate, with the reason, audited', async () => {
    await say('/checklist', 'pre', 'U0DEV', /Pre-deployment checklist.* is in this channel/);
    for (const user of ['U0GUEST', 'U0ONCALL']) {
      const answer = await click('Pre-deployment checklist', 'env-vars', user);
      expect(answer).toContain('Not done');
      expect(answer).toContain(
        'only leads and deployers of *production* can tick or untick items of the Pre-deployment checklist',
      );
      expect(answer).toContain('`environments.production.deployers`');
    }
    const refusals = (await stack.audit.recent(200)).filter(
      (e) => e.text.startsWith('[button] checklist_tick +env-vars') && e.outcome === 'refused',
    );
    expect(refusals.map((e) => e.userId).sort()).toEqual(['U0GUEST', 'U0ONCALL']);
    expect(refusals[0]?.detail).toContain('only leads and deployers of *production*');
    const text = renderBlocks((await checklistMessage('Pre-deployment checklist')).blocks, '');
    expect(itemLine(text, 'Production environment variables configured')).toContain('[ ]');
  });

  it('a deployer of production ticks; an untick keeps who unticked and when, and the message shows it', async () => {
    expect(await click('Pre-deployment checklist', 'env-vars', 'U0DEV')).toContain(
      '☑️ Ticked: Production environment variables configured',
    );
    await waitFor(async () =>
      itemLine(
        renderBlocks((await checklistMessage('Pre-deployment checklist')).blocks, ''),
        'Production environment variables',
      ).includes('[x]'),
    );
    // A guest cannot untick it either.
    expect(await click('Pre-deployment checklist', 'env-vars', 'U0GUEST', false)).toContain('Not done');
    expect(await click('Pre-deployment checklist', 'env-vars', 'U0LEAD', false)).toContain(
      '⬜ Unticked: Production environment variables configured',
    );
    const shown = await waitFor(async () => {
      const d = description(await checklistMessage('Pre-deployment checklist'), 'env-vars');
      return d?.startsWith('unticked') ? d : undefined;
    });
    expect(shown).toMatch(/^unticked by lena \d\d-\d\d \d\d:\d\d UTC$/);
    const done = (await stack.audit.recent(200)).filter(
      (e) => e.text.startsWith('[button] checklist_tick -env-vars') && e.outcome === 'done',
    );
    expect(done.map((e) => e.userId)).toContain('U0LEAD');
  });
});

describe('the seed’s thresholds against a real Prometheus', () => {
  it('phase 1’s response time, memory and CPU are measured in staging, each with its value', async () => {
    // Two scrapes at least, so that rate() has data.
    await waitFor(
      async () => (await prom.query('rate(container_cpu_usage_seconds_total[5m])')).length === 2,
      {
        timeoutMs: 60_000,
        what: 'two scrapes of the backend',
      },
    );
    await say('/checklist', 'phase 1', 'U0DEV', /Staging validation.* is in this channel/);
    const text = await waitFor(
      async () => {
        const t = renderBlocks((await checklistMessage('Staging validation')).blocks, '');
        return /CPU usage normal .*— CPU/.test(t) ? t : undefined;
      },
      { timeoutMs: 40_000, what: 'the automatic items measured' },
    );
    expect(itemLine(text, 'Response time acceptable')).toMatch(
      /🤖 ✅ Response time acceptable \(< 2 s\) — p95 0\.375 s \(< 2 s\)/,
    );
    expect(itemLine(text, 'Memory usage normal')).toMatch(
      /🤖 ✅ Memory usage normal \(< 80%\) — memory 40% \(< 80%, worst of 2\)/,
    );
    // rate(…[5m]) of a series younger than 5 minutes is its increase over 300 s (Prometheus
    // extrapolates only a little past the samples): under the 25% of one core it settles at.
    const cpu = /🤖 ✅ CPU usage normal \(< 70%\) — CPU ([\d.]+)% \(< 70%, worst of 2\)/.exec(
      itemLine(text, 'CPU usage normal'),
    );
    expect(Number(cpu?.[1])).toBeGreaterThan(0);
    expect(Number(cpu?.[1])).toBeLessThanOrEqual(25.1);
    // Penetration testing is no machine's call: still a checkbox.
    expect(itemLine(text, 'Penetration testing passes')).toMatch(/\[ \]/);
  }, 120_000);

  it('a breach shows the measured value on the next re-check', async () => {
    backend.memoryBytes = 910e6;
    await waitFor(
      async () => (await prom.query('max(container_memory_working_set_bytes{name="api-blue"})'))[0] === 910e6,
      { timeoutMs: 30_000, what: 'the new memory figure scraped' },
    );
    await say('/checklist', 'recheck phase 1', 'U0DEV', /Re-checking/);
    const line = await waitFor(
      async () => {
        const l = itemLine(
          renderBlocks((await checklistMessage('Staging validation')).blocks, ''),
          'Memory usage normal',
        );
        return l.includes('❌') ? l : undefined;
      },
      { timeoutMs: 30_000, what: 'the memory item failing' },
    );
    expect(line).toContain('memory 91% (< 80%, worst of 2)');
  }, 60_000);

  it('an environment’s own query replaces the default', async () => {
    Object.assign(stack.config.environments.staging as object, {
      // The app's containers together against their limits (the sidecar has none).
      checks: {
        memory:
          '100 * sum(container_memory_working_set_bytes{environment="{{environment}}",name=~"api-.*"}) / sum(container_spec_memory_limit_bytes{environment="{{environment}}",name=~"api-.*"})',
      },
    });
    await stack.apps[0]?.stop();
    await stack.apps[0]?.start();
    await say('/checklist', 'recheck phase 1', 'U0DEV', /Re-checking/);
    const line = await waitFor(
      async () => {
        const l = itemLine(
          renderBlocks((await checklistMessage('Staging validation')).blocks, ''),
          'Memory usage normal',
        );
        return l.includes('✅') ? l : undefined;
      },
      { timeoutMs: 30_000, what: 'the memory item from the override' },
    );
    // (910 + 100) MB of 2 × 1 GB: one series, so no "worst of".
    expect(line).toMatch(/🤖 ✅ Memory usage normal \(< 80%\) — memory 50\.5% \(< 80%\) \(/);
  }, 60_000);
});

describe('who may tick (a template of the team’s own)', () => {
  it('a Slack user group and a named user, from usergroups.users.list', async () => {
    // A fresh Redis prefix: a rollout of its own with this template, nothing of the first one.
    Object.assign(stack.config, { checklists: { templates: ownTemplate }, redis: { prefix: 'fdperm2' } });
    await stack.apps[0]?.stop();
    await stack.apps[0]?.start();
    const start = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    await say('/checklist', `start ${start}`, 'U0LEAD', /starts on/);
    await say('/checklist', 'phase 1', 'U0DEV', /QA sign-off.* is in this channel/);
    // U0DEV deploys to production but is not in the group the section names.
    const dev = await click('QA sign-off', 'sign-off', 'U0DEV');
    expect(dev).toContain(
      'only leads and members of <!subteam^S0RELEASE> can tick or untick “QA signed off”',
    );
    expect(await click('QA sign-off', 'sign-off', 'U0ONCALL')).toContain('☑️ Ticked: QA signed off');
    // The item names its own: the guest, and only the guest (or a lead).
    expect(await click('QA sign-off', 'guest-note', 'U0ONCALL')).toContain('only leads and <@U0GUEST>');
    expect(await click('QA sign-off', 'guest-note', 'U0GUEST')).toContain(
      '☑️ Ticked: Release notes proofread',
    );
    expect(stack.emulator.callCount('usergroups.users.list')).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
