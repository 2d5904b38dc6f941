import { Queue } from 'bullmq';
import { format } from 'date-fns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChecklistStore } from '../../src/checklists/checklist-store.js';
import type { Release } from '../../src/releases/schema.js';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { SIGNING_SECRET } from '../helpers/flightdeck-process.js';
import { waitFor } from '../helpers/ports.js';
import { releases } from '../helpers/release.js';
import { TestStack } from '../helpers/stack.js';
import { FOREIGN_MENTIONS, USERS } from './helpers/abuse-inputs.js';
import {
  auditByRequest,
  type ClickSpec,
  clickAs,
  commandRequestId,
  jobTotal,
  postRaw,
} from './helpers/abuse-requests.js';
import { validNotification } from './helpers/abuse-webhook.js';

const TOKEN = 'abuse-authz-webhook-token';
const stack = new TestStack({ prefix: 'fdabuse', basePort: 29900 });
let rollbackQueue: Queue;

beforeAll(async () => {
  await stack.start({ env: { ALERTMANAGER_WEBHOOK_TOKEN: TOKEN } });
  rollbackQueue = new Queue('rollbacks', { connection: stack.redis.client(), prefix: stack.prefix });
});
afterAll(async () => {
  await rollbackQueue?.close();
  await stack.stop();
});

/** Every denied attempt, and whether the audit log has it as refused or rejected. */
const attempts: Array<{ what: string; audited: boolean; outcome: string }> = [];

async function deniedEntry(requestId: string): Promise<string | undefined> {
  const entries = await waitFor(
    async () => {
      const e = (await auditByRequest(stack)).get(requestId) ?? [];
      return e.find((x) => x.outcome === 'refused' || x.outcome === 'rejected') ? e : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `a denial in the audit log for ${requestId}` },
  ).catch(() => undefined);
  return entries?.find((x) => x.outcome === 'refused' || x.outcome === 'rejected')?.outcome;
}

/** A slash command that must be turned down in the ack itself, queue nothing, and be audited. */
async function slashDenied(user: string, command: string, text: string): Promise<string> {
  const before = await stack.jobCount();
  const sent = await stack.driver.command(command, text, { user });
  const ack = String(sent.body?.text ?? '');
  const outcome = await deniedEntry(commandRequestId(stack, sent));
  attempts.push({
    what: `${user} ${command} ${JSON.stringify(text)}`,
    audited: !!outcome,
    outcome: outcome ?? 'none',
  });
  expect(sent.status).toBe(200);
  expect(ack, `${command} ${text}`).toMatch(/^(:no_entry: Not done: |:x: )/);
  expect(outcome, `audit for ${user} ${command} ${text}`).toBeDefined();
  expect(await stack.jobCount()).toBe(before);
  return ack;
}

/** A click (however doctored) that must change nothing; the worker's refusal must be audited. */
async function clickDenied(what: string, spec: ClickSpec): Promise<void> {
  const res = await clickAs(stack, SIGNING_SECRET, spec);
  const outcome = await deniedEntry(res.requestId);
  attempts.push({ what: `${spec.user} ${what}`, audited: !!outcome, outcome: outcome ?? 'none' });
  expect(res.status, what).toBe(200);
  expect(outcome, `audit for ${spec.user} ${what}`).toBeDefined();
}

/** Waits for the worker's answer (to the user, or in_channel) to a slash command sent from its own channel. */
async function answer(user: string, command: string, text: string, channel: string): Promise<string> {
  await stack.driver.command(command, text, { user, channel });
  return waitFor(
    () =>
      [
        ...stack.emulator
          .ephemeralsFor(user, channel)
          .filter((e) => e.via !== 'ack')
          .map((e) => e.text),
        ...stack.emulator.channelMessages(channel).map((m) => m.text),
      ].at(-1),
    { timeoutMs: 20_000, what: `the answer to ${command} ${text}` },
  );
}

describe('a user without rights, however they phrase it', () => {
  it('cannot override the production gate or set the rollout start', async () => {
    for (const user of [USERS.dev, USERS.guest, USERS.oncall]) {
      for (const text of [
        'override pre shipping it anyway',
        'OVERRIDE PRE shipping it anyway',
        '\u3000override\u00a0pre\tshipping it anyway ',
        'Override Phase 3 we are late',
        'override pre <@U0LEAD> said it is fine',
        'override pre --as U0LEAD approved',
        'start 2026-05-01',
      ]) {
        await slashDenied(user, '/checklist', text);
      }
    }
    // The gate is still closed for the one production deployer: no lead started a rollout.
    const gated = await answer(USERS.dev, '/deploy', 'api 1.2.3 to production', 'C0AUTHZ1');
    expect(gated).toMatch(/production deploys wait: no active rollout covers api in production/);
    expect(await releases(stack).recent(10)).toEqual([]);
  });

  it('cannot tick or untick the gate or a phase checklist, by text or by doctored checkboxes', async () => {
    // There is no text form of a tick: every phrasing is bad input, answered in the ack, queued nowhere.
    for (const text of [
      'tick pre env-vars',
      'pre tick all',
      'pre env-vars done',
      'untick pre rollback-tested',
      'phase 1 tick containers-healthy',
      'tick phase 1 all --as U0LEAD',
    ]) {
      await slashDenied(USERS.guest, '/checklist', text);
    }
    // Reading is open: the guest shows the gate's checklist and phase 1's in the channel.
    const shown = async (which: string, title: string) => {
      await stack.driver.command('/checklist', which, { user: USERS.guest, channel: 'C0RELEASES' });
      return waitFor(
        () =>
          [...stack.emulator.channelMessages('C0RELEASES')]
            .reverse()
            .find((m) => renderBlocks(m.blocks, m.text).includes(`## 📋 ${title}`)),
        { timeoutMs: 20_000, what: `the ${title} message` },
      );
    };
    const pre = await shown('pre', 'Pre-deployment checklist');
    const phase1 = await shown('phase 1', 'Staging validation');
    type Group = {
      block_id: string;
      elements: Array<{ options?: Array<{ value: string }>; initial_options?: Array<{ value: string }> }>;
    };
    const groups = (m: { blocks?: unknown[] }, id: string) =>
      ((m.blocks ?? []) as Group[]).filter((b) => b.block_id?.startsWith(`cl|default/${id}|`));
    const checkbox = (g: Group, selected: Array<{ value: string }>) => ({
      type: 'checkboxes',
      action_id: 'checklist_tick',
      block_id: g.block_id,
      selected_options: selected,
    });
    // A lead ticks one item (allowed), so that there is something to untick.
    const envVars = groups(pre, 'pre').find((g) =>
      g.elements[0]?.options?.some((o) => o.value === 'env-vars'),
    ) as Group;
    await stack.driver.click(pre, checkbox(envVars, [{ value: 'env-vars' }]), { user: USERS.lead });
    const store = new ChecklistStore(stack.client, stack.prefix, 'default');
    await waitFor(async () => (await store.items('pre'))['env-vars']?.ticked, { what: "the lead's tick" });

    const on = (m: typeof pre) => ({ channel: m.channel, ts: m.ts, blocks: m.blocks as unknown[] });
    const asLead = {
      user: { id: USERS.guest, username: 'lena', name: 'lena', real_name: 'Lena Lead' },
      user_id: USERS.lead,
    };
    for (const [id, m] of [
      ['pre', pre],
      ['staging', phase1],
    ] as const) {
      for (const g of groups(m, id)) {
        const all = (g.elements[0]?.options ?? []).map((o) => ({ value: o.value }));
        await clickDenied(`ticks every box of ${g.block_id}`, {
          user: USERS.guest,
          message: on(m),
          actions: [checkbox(g, all)],
        });
        await clickDenied(`ticks every box of ${g.block_id} as "lena"`, {
          user: USERS.guest,
          message: on(m),
          actions: [checkbox(g, all)],
          extra: asLead,
        });
      }
    }
    // Doctored messages: the click claims the box was shown ticked, so clearing it is an untick.
    const shownTicked = (g: Group, items: string[]) => ({
      ...on(pre),
      blocks: [
        {
          type: 'actions',
          block_id: g.block_id,
          elements: [
            {
              type: 'checkboxes',
              action_id: 'checklist_tick',
              options: items.map((value) => ({ value })),
              initial_options: items.map((value) => ({ value })),
            },
          ],
        },
      ],
    });
    await clickDenied("unticks the lead's tick", {
      user: USERS.guest,
      message: shownTicked(envVars, ['env-vars']),
      actions: [checkbox(envVars, [])],
    });
    await clickDenied('unticks and ticks in one click', {
      user: USERS.oncall,
      message: shownTicked(envVars, ['env-vars', 'firewall-rules']),
      actions: [checkbox(envVars, [{ value: 'firewall-rules' }]), checkbox(envVars, [])],
    });
    await clickDenied('ticks the gate from a group it made up', {
      user: USERS.stranger,
      message: {
        ...on(pre),
        blocks: shownTicked(envVars, []).blocks.map((b) => ({ ...b, block_id: 'cl|default/pre|3|0' })),
      },
      actions: [{ ...checkbox(envVars, [{ value: 'env-vars' }]), block_id: 'cl|default/pre|3|0' }],
    });

    // Nothing changed: only the lead's tick is recorded, and the gate still refuses the deploy.
    const states = { ...(await store.items('pre')), ...(await store.items('staging')) };
    expect(Object.entries(states).filter(([, s]) => s.by !== 'flightdeck' && s.by !== USERS.lead)).toEqual(
      [],
    );
    expect(states['env-vars']).toMatchObject({ ticked: true, by: USERS.lead });
    const gated = await answer(USERS.dev, '/deploy', 'api 1.2.3 to production', 'C0AUTHZ6');
    expect(gated).toMatch(
      /production deploys wait: [\s\S]*pre-deployment checklist is not complete \(1\/\d+\)/,
    );
    expect(await releases(stack).recent(10)).toEqual([]);
    // And the guest was told why, privately.
    const told = stack.emulator
      .ephemeralsFor(USERS.guest, 'C0RELEASES')
      .filter((e) => e.via !== 'ack' && /Not done: only leads and deployers of \*production\*/.test(e.text));
    expect(told.length).toBeGreaterThan(0);
  }, 120_000);

  it('cannot deploy to, roll back or shift traffic in production', async () => {
    for (const user of [USERS.guest, USERS.oncall, USERS.stranger]) {
      for (const [command, text] of [
        ['/deploy', 'api 1.2.3 to production'],
        ['/deploy', 'API 1.2.3 TO PRODUCTION'],
        ['/deploy', 'all 1.2.3 in production'],
        ['/deploy', 'web 1.2.3 on Production'],
        ['/deploy', '  api\u00a01.2.3\tto\u3000production '],
        ['/deploy', 'api 1.2.3 to production as U0DEV'],
        ['/deploy', 'api 1.2.3 to production <@U0LEAD>'],
        ['/deploy', 'api 1.2.3 --env production'],
        ['/deploy', 'api 1.2.3 to pro\u200bduction'],
        ['/deploy', 'cancel api in production'],
        ['/deploy', 'ABORT api in production'],
        ['/deploy', 'promote api in production'],
        ['/rollback', 'api production'],
        ['/rollback', 'api in PRODUCTION'],
        ['/rollback', 'all production'],
        ['/rollback', 'ALL production'],
        ['/traffic', 'api 100 green to production'],
        ['/traffic', 'web 0 to PRODUCTION'],
      ] as const) {
        await slashDenied(user, command, text);
      }
    }
    expect(await releases(stack).recent(10)).toEqual([]);
    expect(await jobTotal(rollbackQueue)).toBe(0);
  });

  it('cannot approve, reject, abort or roll back a production release by clicking, nor approve their own', async () => {
    // A lead opens the gate legitimately and asks for a production release: it waits for another lead.
    const today = format(new Date(), 'yyyy-MM-dd');
    expect(await answer(USERS.lead, '/checklist', `start ${today}`, 'C0AUTHZ2')).toMatch(/rollout starts on/);
    // Its free-text reason is shown to the channel: mention syntax in it must not ping anyone.
    const overrode = await answer(
      USERS.lead,
      '/checklist',
      `override pre abuse drill ${FOREIGN_MENTIONS.join(' ')} {{1337*7331}}`,
      'C0AUTHZ3',
    );
    expect(overrode).toMatch(/overrode the production gate/);
    expect(FOREIGN_MENTIONS.filter((m) => overrode.includes(m))).toEqual([]);
    const status = await answer(USERS.lead, '/checklist', 'status', 'C0AUTHZ5');
    expect(status).toMatch(/Production gate overridden/);
    expect(FOREIGN_MENTIONS.filter((m) => status.includes(m))).toEqual([]);
    // The rollout is in its phase 1, which holds production deploys: the lead deploys past it, on record.
    expect(
      await answer(USERS.lead, '/deploy', 'api 1.2.3 to production override abuse drill', 'C0AUTHZ4'),
    ).toMatch(/waits for a lead other than you to approve/);
    const [release] = (await releases(stack).active()) as Release[];
    expect(release?.status).toBe('awaiting_approval');
    const id = release?.id as string;
    const message = await waitFor(
      () => stack.emulator.messages.find((m) => JSON.stringify(m.blocks ?? []).includes(`"value":"${id}"`)),
      { what: 'the release message with its buttons' },
    );
    const on = { channel: message.channel, ts: message.ts, blocks: message.blocks as unknown[] };
    const button = (action_id: string, value: string) => ({ action_id, value });

    await clickDenied('approves their own release', {
      user: USERS.lead,
      message: on,
      actions: [button('release_approve', id)],
    });
    await clickDenied('rejects their own release', {
      user: USERS.lead,
      message: on,
      actions: [button('release_reject', id)],
    });
    for (const user of [USERS.dev, USERS.guest]) {
      await clickDenied('approves', { user, message: on, actions: [button('release_approve', id)] });
      await clickDenied('approves as "lena"', {
        user,
        message: on,
        actions: [button('release_approve', id)],
        extra: {
          user: { id: user, username: 'lena', name: 'lena', real_name: 'Lena Lead' },
          user_id: USERS.lead,
        },
      });
      await clickDenied('approves twice in one click', {
        user,
        message: on,
        actions: [button('release_approve', id), button('release_approve', id)],
      });
      await clickDenied('approves an upper-cased id', {
        user,
        message: on,
        actions: [button('release_approve', id.toUpperCase())],
      });
      await clickDenied('approves a padded id', {
        user,
        message: on,
        actions: [button('release_approve', ` ${id} `)],
      });
      await clickDenied('approves with a user id in the value', {
        user,
        message: on,
        actions: [button('release_approve', `${id}|${USERS.lead}`)],
      });
      await clickDenied('rejects', { user, message: on, actions: [button('release_reject', id)] });
    }
    for (const action of ['Release_Approve', 'release_approve ', 'release_approve_all', 'approve']) {
      await clickDenied(`clicks a made-up ${JSON.stringify(action)}`, {
        user: USERS.guest,
        message: on,
        actions: [button(action, id)],
      });
    }
    for (const action of ['release_abort', 'release_promote', 'release_pause']) {
      await clickDenied(`clicks ${action}`, {
        user: USERS.guest,
        message: on,
        actions: [button(action, id)],
      });
    }
    // The /rollback confirmation button, forged by someone who may not roll back production.
    for (const value of [
      'production|api',
      'production|all',
      'PRODUCTION|api',
      'production|db',
      'constructor|api',
    ]) {
      await clickDenied(`confirms a rollback of ${value}`, {
        user: USERS.guest,
        message: on,
        actions: [button('rollback_confirm', value)],
      });
    }
    await slashDenied(USERS.dev, '/deploy', `approve ${id}`);
    await slashDenied(USERS.guest, '/deploy', `promote api in production ${id}`);

    const after = await releases(stack).get(id);
    expect(after?.status).toBe('awaiting_approval');
    expect(after?.approvedBy).toBeUndefined();
    expect(await jobTotal(rollbackQueue)).toBe(0);
  });

  it('cannot roll back from an alert, nor tick an item flightdeck verifies itself', async () => {
    // The alert names production api, whose release (above) is in flight: its message offers a rollback.
    const res = await postRaw(
      `${stack.apps[0]?.url}/alerts/alertmanager`,
      JSON.stringify({
        ...validNotification('0bad0bad'),
        alerts: [
          {
            ...validNotification('0bad0bad').alerts[0],
            labels: {
              alertname: 'ApiErrors',
              severity: 'warning',
              environment: 'production',
              service: 'api',
            },
          },
        ],
      }),
      { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    );
    expect(res.status).toBe(200);
    const alert = await waitFor(
      () =>
        stack.emulator
          .channelMessages('C0ALERTS')
          .find((m) => JSON.stringify(m.blocks ?? []).includes('alert_rollback')),
      { timeoutMs: 20_000, what: 'the alert message' },
    );
    const on = { channel: alert.channel, ts: alert.ts, blocks: alert.blocks as unknown[] };
    await clickDenied('rolls back from an alert', {
      user: USERS.guest,
      message: on,
      actions: [{ action_id: 'alert_rollback', value: '0bad0bad' }],
    });
    await clickDenied('rolls back from an unknown alert', {
      user: USERS.dev,
      message: on,
      actions: [{ action_id: 'alert_rollback', value: 'deadbeef' }],
    });
    expect(await jobTotal(rollbackQueue)).toBe(0);

    // Checkboxes: the click claims an automatic item (or one of an unknown checklist) was ticked.
    const forgedTick = (checklist: string, item: string) => ({
      message: {
        channel: 'C0RELEASES',
        ts: '1.000001',
        blocks: [
          {
            type: 'actions',
            block_id: `cl|${checklist}|0|0`,
            elements: [{ type: 'checkboxes', action_id: 'checklist_tick', options: [{ value: item }] }],
          },
        ],
      },
      actions: [
        {
          type: 'checkboxes',
          action_id: 'checklist_tick',
          block_id: `cl|${checklist}|0|0`,
          selected_options: [{ value: item }],
        },
      ],
    });
    await clickDenied('ticks the automatic health-checks item of the gate', {
      user: USERS.guest,
      ...forgedTick('pre', 'health-checks'),
    });
    await clickDenied('ticks an item of an unknown checklist', {
      user: USERS.guest,
      ...forgedTick('gate', 'all-done'),
    });
    await clickDenied('ticks an unknown item of the gate', {
      user: USERS.guest,
      ...forgedTick('pre', 'override'),
    });
    const pre = await new ChecklistStore(stack.client, stack.prefix, 'default').items('pre');
    expect(pre['health-checks']?.by).not.toBe(USERS.guest);
    expect(pre.override).toBeUndefined();
  });

  it('left every attempt in the audit log', () => {
    const audited = attempts.filter((a) => a.audited).length;
    console.log(
      `ABUSE authorisation: denied attempts ${attempts.length} (slash ${attempts.filter((a) => a.what.includes(' /')).length}, clicks ${attempts.filter((a) => !a.what.includes(' /')).length}), audited ${audited}/${attempts.length} (refused ${attempts.filter((a) => a.outcome === 'refused').length}, rejected ${attempts.filter((a) => a.outcome === 'rejected').length}); releases approved 0, rollbacks queued 0`,
    );
    expect(attempts.filter((a) => !a.audited).map((a) => a.what)).toEqual([]);
    expect(attempts.length).toBeGreaterThan(100);
  });
});
