import { type ExecutionContext, type ExecutionResult, refused } from '../commands/execution.js';
import type { ChecklistCommand } from '../commands/schema.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import type { Checklists } from './checklist-service.js';
import { mayTick } from './may-tick.js';

/** What checklist commands need. */
export interface ChecklistContext {
  checklists: Checklists;
  outbox: Outbox;
  /** Queues a run of a checklist's automatic items. */
  autocheck(checklistId: string): Promise<void>;
  now: () => number;
}

/** /checklist in a worker, and the checkboxes of checklist messages. */
export async function checklistCommand(
  cctx: ChecklistContext,
  cmd: Exclude<ChecklistCommand, { action: 'help' }>,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const { checklists, outbox } = cctx;
  switch (cmd.action) {
    case 'status':
      return { text: await checklists.status() };
    case 'start': {
      await checklists.store.setRollout({
        startDate: cmd.date,
        setBy: ec.userId,
        setAt: cctx.now(),
        overrides: {},
      });
      return {
        text: `🗓️ The rollout starts on ${cmd.date} (day 1 of 28), set by <@${ec.userId}>.\n${await checklists.status()}`,
        responseType: 'in_channel',
      };
    }
    case 'override': {
      if (!(await checklists.rollout())) return { text: 'No rollout has started yet.', outcome: 'refused' };
      if (!(await checklists.store.rollout())) {
        // The start date came from the config: keep it, now with the override.
        const r = await checklists.rollout();
        if (r) await checklists.store.setRollout(r);
      }
      const key = cmd.gate === 'pre' ? 'pre' : `phase-${cmd.gate.phase}`;
      await checklists.store.override(key, ec.userId, cmd.reason);
      const what =
        cmd.gate === 'pre'
          ? 'the production gate (pre-deployment checklist)'
          : `phase ${cmd.gate.phase}'s checklist`;
      return { text: `🔓 <@${ec.userId}> overrode ${what}: ${cmd.reason}`, responseType: 'in_channel' };
    }
    case 'show':
    case 'recheck': {
      const target = await checklists.resolve(cmd.which);
      if ('error' in target) return { text: target.error, outcome: 'refused' };
      if (cmd.action === 'show') await outbox.checklistPost(target.id, ec.reply.channelId);
      await cctx.autocheck(target.id);
      const title = checklists.template.checklists[target.id]?.title ?? target.id;
      return {
        text:
          cmd.action === 'show'
            ? `📋 ${title} is in this channel; tick items there.`
            : `🤖 Re-checking the automatic items of ${title}…`,
      };
    }
    case 'tick': {
      // Rights depend on the checklist and its items: checked here, before anything changes; one
      // refused item refuses the whole click.
      const cl = checklists.template.checklists[cmd.checklistId];
      const items = new Map(cl?.sections.flatMap((s) => s.items.map((i) => [i.id, i] as const)) ?? []);
      for (const c of cmd.changes) {
        const item = items.get(c.itemId);
        if (!cl || !item || item.check) continue; // nothing tick() would change
        const decision = mayTick(
          ec.userId,
          { id: cmd.checklistId, title: cl.title },
          item,
          checklists.config,
        );
        if (!decision.allowed) return refused(decision.reason);
      }
      const applied = await checklists.tick(cmd.checklistId, cmd.changes, {
        id: ec.userId,
        name: ec.userName,
      });
      if (applied.length === 0) return { text: 'Nothing changed.', outcome: 'refused' };
      await outbox.checklistRefresh(cmd.checklistId);
      return { text: applied.map((a) => `${a.ticked ? '☑️ Ticked' : '⬜ Unticked'}: ${a.text}`).join('\n') };
    }
  }
}
