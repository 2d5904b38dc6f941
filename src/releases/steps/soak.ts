import type { StepHandler } from '../release-context.js';

/** Wait at the current split; the due time is persisted so a restart resumes the same soak. */
export const soak: StepHandler = async (ctx, _r, step) => {
  const due = step.due ?? ctx.now() + (step.soakMs ?? 0);
  if (ctx.now() >= due) return { kind: 'done', detail: 'soaked' };
  return {
    kind: 'wait',
    until: due,
    detail: `until ${new Date(due).toISOString().slice(11, 19)} UTC`,
  };
};
