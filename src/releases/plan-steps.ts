import type { Colour, ReleasePolicy } from '../config/schema.js';
import type { Step } from './schema.js';

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
 * then for each traffic step shift, soak and gate; finally record the new live colour.
 */
export function planSteps(
  policy: ReleasePolicy,
  target: { swarmService: string; colour: Colour; image: string },
): Step[] {
  const steps: Step[] = [
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
  steps.push(step('finalize', `Record ${target.colour} as live`));
  return steps;
}

function step(kind: Step['kind'], label: string): Step {
  return { kind, label, status: 'pending', failures: 0 };
}
