import type { Colour, ReleasePolicy } from '../config/schema.js';
import type { Step } from './schema.js';
import { stepTaskOf, type TaskConfig } from './task-schema.js';

export const formatDuration = (ms: number) =>
  ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0
      ? `${ms / 60_000}m`
      : ms % 1_000 === 0
        ? `${ms / 1_000}s`
        : `${ms}ms`;

/**
 * The seed's Phase 3 as data: update the idle colour, wait for convergence and health, smoke-check,
 * then for each traffic step shift, soak and gate; finally record the new live colour. Release tasks
 * run first (`before`: nothing has moved yet, as the seed's run-migrations.sh) or after the last
 * gate (`after`: still before finalize, so a failure rolls the release back).
 */
export function planSteps(
  policy: ReleasePolicy,
  target: { swarmService: string; colour: Colour; image: string },
  tasks: readonly TaskConfig[] = [],
): Step[] {
  const taskSteps = (when: TaskConfig['when']) =>
    tasks.filter((t) => t.when === when).map((t) => ({ ...step('task', taskLabel(t)), task: stepTaskOf(t) }));
  const steps: Step[] = [
    ...taskSteps('before'),
    step('update', `Update ${target.colour} (${target.swarmService}) to ${target.image}`),
    step('converge', `Swarm converges on ${target.image}`),
    step('health', `Health checks of ${target.colour}`),
  ];
  if (policy.smoke.length > 0) steps.push(step('smoke', `Smoke checks (${policy.smoke.length})`));
  policy.steps.forEach((percent, i) => {
    const soakMs = policy.soak[i] ?? 0;
    steps.push({ ...step('shift', `Traffic ${percent}% → ${target.colour}`), percent });
    steps.push({ ...step('soak', `Soak ${formatDuration(soakMs)} at ${percent}%`), percent, soakMs });
    steps.push({ ...step('gate', `Gate at ${percent}%`), percent });
  });
  steps.push(...taskSteps('after'));
  steps.push(step('finalize', `Record ${target.colour} as live`));
  return steps;
}

/** "Task migrate: `./run-migrations.sh --yes`" (config text, kept inert in mrkdwn and its code span). */
export function taskLabel(t: Pick<TaskConfig, 'name' | 'command'>): string {
  const argv = t.command.join(' ');
  const shown = argv.length > 60 ? `${argv.slice(0, 59)}…` : argv;
  const inert = shown.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/`/g, "'");
  return `Task ${t.name}: \`${inert}\``;
}

function step(kind: Step['kind'], label: string): Step {
  return { kind, label, status: 'pending', failures: 0 };
}
