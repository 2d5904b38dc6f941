import { z } from 'zod';
import { Duration } from '../config/duration.js';

/*
 * Release tasks: one-off Swarm jobs (migrations, cache warm-ups) run with the release's image before
 * the idle colour is updated or after the last traffic step. config/schema.ts and
 * releases/schema.ts both import this module, so it imports neither back.
 */

export const DEFAULT_TASK_TIMEOUT_MS = 600_000;

/** Short enough that the job's Swarm service name (≤ 63 characters) keeps most of the colour's name. */
const TaskName = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,23}$/,
    'must be lower-case letters, digits and dashes, starting with a letter (at most 24)',
  );

export const TaskConfig = z.strictObject({
  name: TaskName,
  /** before: ahead of the idle colour's update (nothing has moved yet); after: once the last traffic step passed. */
  when: z.enum(['before', 'after'], { error: 'must be before or after' }),
  /** The container's command as argv (Docker's Command, replacing the image's entrypoint); never run through a shell. */
  command: z
    .array(z.string(), { error: 'must be a list of arguments, e.g. [./run-migrations.sh, --yes]' })
    .min(1, 'must name a program, e.g. [./run-migrations.sh]')
    .refine((a) => (a[0] ?? '') !== '', 'must start with a program name, not an empty string'),
  /** The job is removed and the step fails when it has not finished by then. */
  timeout: Duration.pipe(
    z.number().min(1_000, 'must be at least 1s').max(86_400_000, 'must be at most 24h'),
  ).default(DEFAULT_TASK_TIMEOUT_MS),
  /** Added to (and overriding) the environment variables of the colour's service. */
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name like DB_HOST'),
      z.string({ error: 'must be a string (quote numbers and booleans)' }),
    )
    .optional(),
  /** Swarm networks the job joins; without this key, the colour's service's networks. */
  networks: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a Docker network name'))
    .optional(),
});
export type TaskConfig = z.infer<typeof TaskConfig>;

/** A list of tasks whose names are unique (a service's entry replaces the environment's of that name). */
export const TaskList = z.array(TaskConfig).superRefine((tasks, ctx) => {
  const seen = new Map<string, number>();
  tasks.forEach((t, i) => {
    const first = seen.get(t.name);
    if (first !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: [i, 'name'],
        message: `${t.name} is already the name of task ${first}; task names must be unique`,
      });
    else seen.set(t.name, i);
  });
});

/**
 * The tasks of one service's release: the environment's, each replaced in place by the service's
 * task of the same name, then the service's other tasks.
 */
export function tasksFor(
  env: { tasks?: TaskConfig[]; services: Record<string, { tasks?: TaskConfig[] }> } | undefined,
  service: string,
): TaskConfig[] {
  const own = env?.services[service]?.tasks ?? [];
  const byName = new Map(own.map((t) => [t.name, t]));
  const merged = (env?.tasks ?? []).map((t) => byName.get(t.name) ?? t);
  return [...merged, ...own.filter((t) => !merged.includes(t))];
}

/** What a release's task step keeps: the task as configured when the release began, and how its job went. */
export const StepTask = z.object({
  name: z.string(),
  when: z.enum(['before', 'after']),
  command: z.array(z.string()),
  timeoutMs: z.number(),
  env: z.record(z.string(), z.string()).optional(),
  networks: z.array(z.string()).optional(),
  /** When its job service was created (or first found, after a crash before this was recorded). */
  createdAt: z.number().optional(),
  /**
   * How the job ended, recorded before its service is removed: a run after a crash finds the
   * result here once the service is gone, so a finished job is never lost nor run again.
   */
  result: z
    .object({
      outcome: z.enum(['exited', 'rejected', 'timeout', 'gone']),
      exitCode: z.number().int().optional(),
      durationMs: z.number(),
      /** Swarm's words for a task that did not exit (rejected, a removed job). */
      message: z.string().optional(),
    })
    .optional(),
});
export type StepTask = z.infer<typeof StepTask>;

/** The persisted form of a configured task (a config change during the release does not change it). */
export const stepTaskOf = (t: TaskConfig): StepTask => ({
  name: t.name,
  when: t.when,
  command: [...t.command],
  timeoutMs: t.timeout,
  ...(t.env ? { env: { ...t.env } } : {}),
  ...(t.networks ? { networks: [...t.networks] } : {}),
});
