import { type ExecutionContext, type ExecutionResult, refused } from '../commands/execution.js';
import type { ChecklistCommand } from '../commands/schema.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import type { Checklists } from './checklist-service.js';
import { type GroupMembers, mayTickAll } from './may-tick.js';
import { todayIn } from './rollout-calendar.js';
import type { Rollouts } from './rollouts.js';

/** What checklist commands need. */
export interface ChecklistContext {
  rollouts: Rollouts;
  outbox: Outbox;
  /** Queues a run of a checklist instance's automatic items (a ref: `<rollout or release>/<checklist>`). */
  autocheck(ref: string): Promise<void>;
  now: () => number;
  /** Members of Slack user groups, for templates whose mayTick names one (group:S…). */
  userGroups?: GroupMembers;
}

const refused_ = (text: string): ExecutionResult => ({ text, outcome: 'refused' });

/** /checklist in a worker, and the checkboxes of checklist messages. */
export async function checklistCommand(
  cctx: ChecklistContext,
  cmd: Exclude<ChecklistCommand, { action: 'help' }>,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const { rollouts, outbox } = cctx;
  const channel = ec.reply.channelId;
  switch (cmd.action) {
    case 'list': {
      const all = await rollouts.list();
      if (all.length === 0)
        return {
          text: 'No rollout yet: a lead starts one with `/checklist start &lt;name&gt; [YYYY-MM-DD] [template]`.',
        };
      const boards = new Map((await rollouts.board()).map((b) => [b.id, b]));
      const line = (r: (typeof all)[number]) => {
        const b = boards.get(r.id);
        return r.status === 'active'
          ? `• *${r.id}* · ${b?.template ?? r.template} · day ${b?.day} of 28 · phase ${Math.min(Math.max(b?.phase ?? 1, 1), 4)}${b?.overdue ? ` · ${b.overdue} overdue` : ''}${r.channels.length ? ` · ${r.channels.map((c) => `<#${c}>`).join(' ')}` : ''}`
          : `• ${r.id} · finished ${r.finishedAt ? new Date(r.finishedAt).toISOString().slice(0, 10) : ''}`;
      };
      return { text: `*Rollouts (${all.length})*\n${all.map(line).join('\n')}` };
    }
    case 'status':
    case 'history': {
      const picked = await rollouts.resolve(channel, cmd.rollout, { finished: true });
      if ('error' in picked) return refused_(picked.error);
      if (cmd.action === 'status') return { text: await rollouts.forRollout(picked.rollout).status() };
      return { text: await historyText(rollouts, picked.rollout.id) };
    }
    case 'start': {
      const choices = rollouts.templateChoices();
      const template = cmd.template ? choices.get(cmd.template) : undefined;
      if (cmd.template && !template)
        return refused_(
          `There is no template *${cmd.template}*; choose one of ${[...choices.keys()].map((c) => `\`${c}\``).join(', ')}.`,
        );
      const date = cmd.date ?? todayIn(rollouts.config.timezone, new Date(cctx.now()));
      const existing = await rollouts.store.get(cmd.rollout);
      if (existing?.status === 'finished')
        return refused_(
          `Rollout *${cmd.rollout}* finished; it is kept with its ticks (\`/checklist history ${cmd.rollout}\`). Start a new one under another name.`,
        );
      if (existing) {
        // An active rollout: a lead moves its first day (its ticks stay); nothing else changes.
        if ((cmd.template && template !== existing.template) || cmd.services || cmd.environments)
          return refused_(
            `Rollout *${cmd.rollout}* is running; only its first day can change (\`/checklist start ${cmd.rollout} YYYY-MM-DD\`). Finish it first, or start another name.`,
          );
        const moved = await rollouts.store.update(cmd.rollout, (r) => ({ ...r, startDate: date }));
        const text = `🗓️ The rollout starts on ${date} (day 1 of 28): *${cmd.rollout}*, moved by <@${ec.userId}>; its ticks stay.`;
        return {
          text: `${text}\n${await rollouts.forRollout(moved ?? existing).status()}`,
          responseType: 'in_channel',
        };
      }
      const record = {
        id: cmd.rollout,
        template: template ?? rollouts.config.checklists.templates,
        startDate: date,
        channels: [channel],
        ...(cmd.services ? { services: cmd.services } : {}),
        ...(cmd.environments ? { environments: cmd.environments } : {}),
        status: 'active' as const,
        setBy: ec.userId,
        setAt: cctx.now(),
        overrides: {},
      };
      try {
        rollouts.template(record.template);
      } catch (err) {
        return refused_(
          `The template ${record.template} cannot be used: ${(err as Error).message.split('\n')[0]}`,
        );
      }
      if (!(await rollouts.store.create(record)))
        return refused_(
          `Rollout *${cmd.rollout}* was just started by someone else; \`/checklist status ${cmd.rollout}\` shows it.`,
        );
      return {
        text: `🗓️ The rollout starts on ${date} (day 1 of 28): *${cmd.rollout}*, set by <@${ec.userId}>; nothing is ticked yet.\n${await rollouts.forRollout(record).status()}`,
        responseType: 'in_channel',
      };
    }
    case 'finish': {
      const picked = await rollouts.resolve(channel, cmd.rollout);
      if ('error' in picked) return refused_(picked.error);
      await rollouts.finish(picked.rollout.id, ec.userId);
      return {
        text: `🏁 <@${ec.userId}> finished rollout *${picked.rollout.id}*; it is kept with every tick (\`/checklist history ${picked.rollout.id}\`), and no longer gates deploys.`,
        responseType: 'in_channel',
      };
    }
    case 'override': {
      const picked = await rollouts.resolve(channel, cmd.rollout);
      if ('error' in picked) return refused_(picked.error);
      const key = cmd.gate === 'pre' ? 'pre' : `phase-${cmd.gate.phase}`;
      await rollouts.store.override(picked.rollout.id, key, ec.userId, cmd.reason, cctx.now());
      const what =
        cmd.gate === 'pre'
          ? 'the production gate (pre-deployment checklist)'
          : `phase ${cmd.gate.phase}'s checklist`;
      return {
        text: `🔓 <@${ec.userId}> overrode ${what} of rollout *${picked.rollout.id}*: ${cmd.reason}`,
        responseType: 'in_channel',
      };
    }
    case 'show':
    case 'recheck': {
      let checklists: Checklists;
      if (cmd.action === 'recheck' && cmd.release) {
        const view = await rollouts.forRelease(cmd.release);
        if (!view) return refused_(`${cmd.release} has no post-deployment checklist (any more).`);
        checklists = view;
      } else {
        let picked = await rollouts.resolve(channel, cmd.rollout);
        // Showing pre, post or a phase before any rollout exists starts the rollout `default`
        // (today), as the single rollout of the previous version allowed.
        if (
          'error' in picked &&
          !cmd.rollout &&
          cmd.which !== 'current' &&
          (await rollouts.list()).length === 0
        )
          picked = { rollout: await rollouts.ensureDefault(ec.userId) };
        if ('error' in picked) return refused_(picked.error);
        checklists = rollouts.forRollout(picked.rollout);
      }
      const target = await checklists.resolve(cmd.which);
      if ('error' in target) return refused_(target.error);
      const ref = `${checklists.scope.id}/${target.id}`;
      if (cmd.action === 'show') await outbox.checklistPost(ref, channel);
      await cctx.autocheck(ref);
      const title = checklists.template.checklists[target.id]?.title ?? target.id;
      const of = checklists.scope.release ? '' : ` (rollout *${checklists.scope.id}*)`;
      return {
        text:
          cmd.action === 'show'
            ? `📋 ${title} is in this channel${of}; tick items there.`
            : `🤖 Re-checking the automatic items of ${title}${of}…`,
      };
    }
    case 'tick': {
      // The instance the message shows: a release's, a rollout's, or (messages from before named
      // rollouts) the rollout they were migrated to.
      const legacy =
        cmd.rollout || cmd.release ? undefined : await rollouts.store.legacyRollout(rollouts.legacySet);
      const scope = cmd.release ?? cmd.rollout ?? legacy;
      let checklists: Checklists | undefined;
      if (scope) checklists = (await rollouts.forRef(`${scope}/${cmd.checklistId}`))?.view;
      else {
        const picked = await rollouts.resolve(channel);
        if ('error' in picked) return refused_(picked.error);
        checklists = rollouts.forRollout(picked.rollout);
      }
      if (!checklists)
        return refused_(
          'That checklist is gone: it belonged to a rollout or release flightdeck no longer has.',
        );
      if (checklists.scope.rollout?.status === 'finished' && !checklists.scope.release)
        return refused_(`Rollout *${checklists.scope.id}* has finished: its ticks are kept as they were.`);
      // Rights depend on the checklist and its items (the template's mayTick): checked here, before
      // anything changes; one refused item refuses the whole click (audited as refused).
      const decision = await mayTickAll(
        ec.userId,
        cmd.checklistId,
        checklists.template.checklists[cmd.checklistId],
        cmd.changes,
        checklists.config,
        cctx.userGroups,
      );
      if (!decision.allowed) return refused(decision.reason);
      const applied = await checklists.tick(cmd.checklistId, cmd.changes, {
        id: ec.userId,
        name: ec.userName,
      });
      if (applied.length === 0) return { text: 'Nothing changed.', outcome: 'refused' };
      await outbox.checklistRefresh(`${checklists.scope.id}/${cmd.checklistId}`);
      // A release's checklist is listed, with its progress, in phase 4 of its rollouts.
      for (const r of checklists.scope.release?.rollouts ?? []) await outbox.checklistRefresh(`${r}/post`);
      return { text: applied.map((a) => `${a.ticked ? '☑️ Ticked' : '⬜ Unticked'}: ${a.text}`).join('\n') };
    }
  }
}

/** `/checklist history`: every tick and untick of a rollout, newest first (the last 40 shown). */
async function historyText(rollouts: Rollouts, id: string): Promise<string> {
  const [entries, total] = await Promise.all([
    rollouts.store.history(id, 40),
    rollouts.store.historyLength(id),
  ]);
  if (entries.length === 0) return `Rollout *${id}*: nothing ticked or unticked yet.`;
  const when = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  const lines = entries.map(
    (e) =>
      `• ${when(e.at)} UTC · <@${e.by}> ${e.ticked ? '☑️ ticked' : '⬜ unticked'} ${e.text ?? e.item} (${e.release ? `post-deployment of ${e.release}` : e.checklist})`,
  );
  return [
    `*History of rollout ${id}* (${total} change${total === 1 ? '' : 's'}, newest first)`,
    ...lines,
    ...(total > entries.length ? [`…and ${total - entries.length} older`] : []),
  ].join('\n');
}
