import { releasePolicy } from '../../config/schema.js';
import { TASK_NAME_LABEL, TASK_RELEASE_LABEL, taskJobName } from '../../integrations/swarm.js';
import { formatDuration } from '../plan-steps.js';
import { type StepHandler, type StepOutcome, serviceDef } from '../release-context.js';
import type { StepTask } from '../task-schema.js';

/** How many of the job's last log lines go to the release's thread. */
export const TASK_LOG_LINES = 20;
/** Room for the lines in one Slack message (its text may hold far more; a thread reply stays readable). */
const THREAD_TEXT_LIMIT = 3_500;

type TaskResult = NonNullable<StepTask['result']>;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * A release task: a one-off Swarm job (a replicated job of one completion, never restarted) with the
 * release's image. Each run of this step looks at the job and records what it saw, so a process killed
 * at any point neither loses the job nor starts it twice:
 * 1. no job service and none created: create it (its name comes from the release id and task name,
 *    so a run after a crash finds it instead of making another);
 * 2. the job still runs: poll, until its timeout;
 * 3. it ended (or timed out): read its last log lines, queue them for the release's thread (once,
 *    by key), and record the result, with the job still there;
 * 4. a result is recorded: remove the job service, then pass on exit 0 or fail the step.
 */
export const runTask: StepHandler = async (ctx, r, step) => {
  const task = step.task;
  if (!task) return { kind: 'fail', reason: 'a task step without its task (a damaged release record)' };
  const swarm = ctx.swarmFor(r.environment);
  const colourService = serviceDef(ctx, r)[r.toColour].swarmService;
  const name = taskJobName(colourService, r.id, task.name);
  const poll = releasePolicy(ctx.config, r.environment).pollInterval;
  const now = ctx.now();

  if (task.result) {
    await swarm.removeService(name);
    return judged(task, task.result);
  }

  const found = await swarm.taskJob(name);
  if (!found) {
    if (task.createdAt !== undefined) {
      const result: TaskResult = {
        outcome: 'gone',
        durationMs: now - task.createdAt,
        message: `its job ${name} was removed before it finished; it is not run again`,
      };
      return {
        kind: 'fail',
        reason: `${task.name}: ${describeResult(task, result)}`,
        patch: (rel) => setResult(rel.steps[rel.stepIndex]?.task, result),
      };
    }
    const made = await swarm.createTaskJob({
      name,
      image: r.image,
      command: task.command,
      env: task.env,
      networks: task.networks,
      labels: {
        [TASK_RELEASE_LABEL]: r.id,
        [TASK_NAME_LABEL]: task.name,
        'flightdeck.environment': r.environment,
        'flightdeck.service': r.service,
      },
      like: colourService,
    });
    return {
      kind: 'wait',
      until: now + poll,
      detail: `${made === 'created' ? 'started' : 'found'} job ${name}`,
      patch: (_rel, s) => {
        if (s.task) s.task.createdAt ??= now;
      },
    };
  }

  // Found after a crash that came before createdAt was recorded: Swarm's own creation time.
  const createdAt = task.createdAt ?? found.createdAt ?? now;
  const elapsed = now - createdAt;
  let result: TaskResult;
  if (found.job.state === 'waiting') {
    if (elapsed < task.timeoutMs) {
      return {
        kind: 'wait',
        until: now + poll,
        detail: `job ${name}: ${found.job.detail} for ${seconds(elapsed)} (timeout ${formatDuration(task.timeoutMs)})`,
        patch: (_rel, s) => {
          if (s.task) s.task.createdAt ??= createdAt;
        },
      };
    }
    result = { outcome: 'timeout', durationMs: elapsed };
  } else if (found.job.state === 'exited') {
    result = { outcome: 'exited', exitCode: found.job.exitCode, durationMs: found.job.durationMs };
  } else {
    result = { outcome: 'rejected', message: found.job.message, durationMs: found.job.durationMs };
  }

  // The logs go with the job's service: read them first. A job without logs still gates.
  const lines = await swarm
    .serviceLogLines(name, TASK_LOG_LINES)
    .catch((err: Error) => [`(its logs could not be read: ${err.message})`]);
  await ctx.releaseThread?.(
    r.id,
    taskThreadText(task, result, lines, { job: name, image: r.image }),
    `${r.id}-task-${task.name}`,
  );
  return {
    kind: 'wait',
    until: now,
    detail: `${describeResult(task, result)}; removing job ${name}`,
    patch: (_rel, s) => {
      if (s.task) s.task.createdAt ??= createdAt;
      setResult(s.task, result);
    },
  };
};

function setResult(task: StepTask | undefined, result: TaskResult): void {
  if (task) task.result = result;
}

/** Exit 0 passes; anything else fails the step (a `before` task: the release stops with nothing moved). */
function judged(task: StepTask, result: TaskResult): StepOutcome {
  if (result.outcome === 'exited' && result.exitCode === 0)
    return { kind: 'done', detail: `exit 0 in ${seconds(result.durationMs)}` };
  return { kind: 'fail', reason: `${task.name}: ${describeResult(task, result)}` };
}

/** "exit 3 after 1.2 s — last lines in thread", "timed out after 10m …", "the job did not run (…)". */
export function describeResult(task: Pick<StepTask, 'timeoutMs'>, result: TaskResult): string {
  switch (result.outcome) {
    case 'exited':
      return result.exitCode === 0
        ? `exit 0 in ${seconds(result.durationMs)}`
        : `exit ${result.exitCode} after ${seconds(result.durationMs)} — last lines in thread`;
    case 'timeout':
      return `timed out after ${formatDuration(task.timeoutMs)}; its job was removed — last lines in thread`;
    case 'rejected':
      return `the job did not run (${result.message ?? 'no reason given'})`;
    case 'gone':
      return result.message ?? 'its job was removed before it finished';
  }
}

/**
 * The thread reply: what happened, then the last log lines in a code block. Log text is not
 * flightdeck's: &, < and > are escaped (so `<!channel>` stays inert) and a ``` in it cannot close the
 * block. Over the limit, the oldest lines go first: the end of a log says why it failed.
 */
export function taskThreadText(
  task: Pick<StepTask, 'name' | 'timeoutMs'>,
  result: TaskResult,
  lines: string[],
  where: { job: string; image: string },
  limit = THREAD_TEXT_LIMIT,
): string {
  const inert = (s: string) =>
    s
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/`{3,}/g, (m) => m.split('').join('\u200b'));
  const what = describeResult(task, result).replace(/ — last lines in thread$/, '');
  const head = `*Task ${task.name}*: ${inert(what)} (job \`${inert(where.job)}\`, ${inert(where.image)})`;
  const shown = lines.map(inert);
  const room = limit - head.length - 40;
  let body = shown.join('\n');
  let dropped = 0;
  while (body.length > room && shown.length > 1) {
    shown.shift();
    dropped += 1;
    body = shown.join('\n');
  }
  if (body.length > room) body = `…${body.slice(body.length - room + 1)}`;
  if (lines.length === 0) return `${head}\nIt wrote no output.`;
  const count = lines.length - dropped;
  return `${head}\nLast ${count} line${count === 1 ? '' : 's'} of its output:\n\`\`\`\n${body}\n\`\`\``;
}
