import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import Docker from 'dockerode';
import { z } from 'zod';
import type { DockerEndpoint } from '../config/infrastructure.js';
import { FlightdeckError } from '../errors.js';

/**
 * dockerode's options for one endpoint: a unix socket, or tcp with TLS from the endpoint's files
 * (read now). Every connection key is set, even to undefined: docker-modem fills the ones left out
 * from DOCKER_HOST / DOCKER_CERT_PATH itself, and the endpoint flightdeck resolved must win.
 */
export function dockerOptions(
  endpoint: DockerEndpoint,
  read: (file: string) => Buffer = (file) => readFileSync(file),
): Docker.DockerOptions & { agent?: Agent } {
  const base = {
    version: 'v1.41',
    timeout: 15_000,
    socketPath: undefined,
    host: undefined,
    port: undefined,
    protocol: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
  };
  if (endpoint.transport === 'unix') return { ...base, socketPath: endpoint.socketPath };
  const plain = { ...base, host: endpoint.hostname, port: endpoint.port };
  if (!endpoint.tls) return { ...plain, protocol: 'http' };
  const { caFile, certFile, keyFile, verify } = endpoint.tls;
  const material = {
    ca: caFile ? read(caFile) : undefined,
    cert: certFile ? read(certFile) : undefined,
    key: keyFile ? read(keyFile) : undefined,
  };
  return {
    ...plain,
    protocol: 'https',
    ...material,
    // docker-modem passes no rejectUnauthorized of its own; an agent's options win over a request's.
    ...(verify ? {} : { agent: new Agent({ ...material, rejectUnauthorized: false }) }),
  };
}

/** Docker Engine API client of one endpoint, pinned to API 1.41 (Debian's docker.io 20.10). */
export function createDocker(endpoint: DockerEndpoint): Docker {
  return new Docker(dockerOptions(endpoint));
}

/** One `GET /_ping`, given up after `timeoutMs` (an endpoint that drops packets would hang for 15 s). */
export async function pingDocker(docker: Docker, timeoutMs = 2_000): Promise<void> {
  // dockerode takes an abortSignal here; its types do not say so.
  const ping = docker.ping as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
  await ping.call(docker, { abortSignal: AbortSignal.timeout(timeoutMs) });
}

export class SwarmServiceMissing extends FlightdeckError {
  constructor(readonly service: string) {
    super(
      'swarm_service_missing',
      `Swarm service ${service} does not exist; create it first (see docs/release-engine.md)`,
      false,
    );
  }
}

/** The Docker engine did not answer; it may be back on the next attempt. */
export class DockerUnavailable extends FlightdeckError {
  constructor(message: string) {
    super('docker_unavailable', message, true);
  }
}

export interface ServiceInfo {
  id: string;
  name: string;
  version: number;
  image: string;
  previousImage?: string;
  replicas: number;
  /** The replicas to come back to: the spec's, or while it is scaled to 0 the count it had (at least 1). */
  restoreReplicas: number;
  updateState?: string;
  updateMessage?: string;
}

/**
 * `tasks`: the IDs of the tasks running the image once there are as many as desired (while Swarm
 * still monitors the update, and when converged), so health checks made in that window can be
 * matched with the tasks that converged. `starting`: tasks of the image about to run.
 */
export type Convergence =
  | { state: 'converged'; running: number; desired: number; tasks?: string[] }
  | {
      state: 'converging';
      running: number;
      desired: number;
      detail: string;
      tasks?: string[];
      starting?: number;
    }
  | { state: 'failed'; detail: string };

/** Image references compare without a pinned digest (the CLI pins one, the API does not). */
export const stripDigest = (image: string) => image.replace(/@sha256:[a-f0-9]+$/, '');

// biome-ignore lint/suspicious/noExplicitAny: Docker's service and task JSON (dockerode's types lag the API); each field read is checked where it is used.
type Spec = Record<string, any>;

/** The service label where a colour scaled to 0 keeps the replica count it had, to come back to it. */
export const REPLICAS_LABEL = 'flightdeck.replicas';

/** Sets the replica count, remembering the current one in REPLICAS_LABEL when it goes to 0. */
function withReplicas(spec: Spec, replicas: number): Spec {
  const next = structuredClone(spec);
  const current = spec.Mode?.Replicated?.Replicas ?? 1;
  const labels: Record<string, string> = { ...(next.Labels ?? {}) };
  if (replicas === 0 && current > 0) labels[REPLICAS_LABEL] = String(current);
  if (replicas > 0) delete labels[REPLICAS_LABEL];
  next.Labels = labels;
  next.Mode = { Replicated: { Replicas: replicas } };
  return next;
}

const FAILED_TASK_STATES = ['failed', 'rejected', 'complete'];
/** A task in this state runs within moments (its container is being started; 'preparing' may be a long pull). */
const STARTING_TASK_STATES = ['starting'];

/** Node ID → hostname (from `GET /nodes`), to say where a task ran. */
export type NodeNames = ReadonlyMap<string, string>;

/** The failed tasks of `image`, newest first. */
function failedTasksOf(tasks: Spec[], image: string): Spec[] {
  return tasks
    .filter(
      (t) =>
        stripDigest(t.Spec?.ContainerSpec?.Image ?? '') === image &&
        FAILED_TASK_STATES.includes(t.Status?.State),
    )
    .sort((a, b) => String(b.Status?.Timestamp).localeCompare(String(a.Status?.Timestamp)));
}

/**
 * What the newest failed task of `image` says, from the task list: Swarm's task error and the
 * container's exit code, e.g. "the new task exited with code 3 (task: non-zero exit (3))".
 */
export function describeFailedTasks(tasks: Spec[], image: string): string | undefined {
  const failed = failedTasksOf(tasks, image);
  const last = failed[0];
  if (!last) return undefined;
  const err = last.Status?.Err || last.Status?.Message || 'no error given';
  const code = last.Status?.ContainerStatus?.ExitCode;
  const what =
    typeof code === 'number' && last.Status?.State !== 'rejected'
      ? `exited with code ${code} (${err})`
      : `was ${last.Status?.State} (${err})`;
  return failed.length === 1 ? `the new task ${what}` : `${failed.length} new tasks failed; the last ${what}`;
}

/**
 * Where the failed tasks of `image` ran, by hostname ("on node fdmn3", "on nodes fdmn1, fdmn3, the
 * last on fdmn3"); a node missing from `nodes` by its short ID. On several nodes, a task failing
 * everywhere (a bad image) reads differently from one node's problem (its disk, a missing pull).
 */
export function describeFailedNodes(tasks: Spec[], image: string, nodes: NodeNames): string | undefined {
  const names = failedTasksOf(tasks, image)
    .map((t) =>
      typeof t.NodeID === 'string' && t.NodeID ? (nodes.get(t.NodeID) ?? t.NodeID.slice(0, 12)) : '',
    )
    .filter(Boolean);
  if (names.length === 0) return undefined;
  const distinct = [...new Set(names)].sort();
  return distinct.length === 1
    ? `on node ${distinct[0]}`
    : `on nodes ${distinct.join(', ')}, the last on ${names[0]}`;
}

/**
 * Where a Swarm service stands against the image a release gave it, from its inspect and its task
 * list: converged (every desired task runs the image and the update completed), still converging,
 * or failed, saying why (tasks that exited, Swarm pausing or rolling the update back, a change made
 * outside the release).
 */
export function judgeConvergence(
  svc: ServiceInfo,
  image: string,
  tasks: Spec[],
  nodes: NodeNames = new Map(),
): Convergence {
  const exited = describeFailedTasks(tasks, image);
  // Where they ran goes last: the message up to Swarm's words keeps its shape for a single node.
  const where = exited && describeFailedNodes(tasks, image, nodes);
  const cite = (detail: string) => (where ? `${detail}; ${where}` : detail);
  // Swarm's own words, after what the tasks said (a rollback by hand has no failed task to cite).
  const swarmDid = (what: string) =>
    cite(
      [exited, `Swarm ${what} (${svc.updateState}: ${svc.updateMessage ?? 'no message'})`]
        .filter(Boolean)
        .join(', and '),
    );
  if (svc.updateState?.startsWith('rollback_')) {
    const to = svc.image !== image ? ` to ${svc.image}` : '';
    return { state: 'failed', detail: swarmDid(`rolled the update back${to}`) };
  }
  if (svc.image !== image)
    return {
      state: 'failed',
      detail: `${svc.name} now specifies ${svc.image}, not ${image} (changed outside this release)`,
    };
  if (svc.updateState === 'paused') {
    return { state: 'failed', detail: swarmDid('paused the update') };
  }
  if (svc.replicas === 0)
    return { state: 'failed', detail: `${svc.name} is scaled to 0 replicas: no task can run ${image}` };
  const ofImage = tasks.filter((t) => stripDigest(t.Spec?.ContainerSpec?.Image ?? '') === image);
  const runningTasks = ofImage.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running');
  const running = runningTasks.length;
  const failures = ofImage.filter((t) => FAILED_TASK_STATES.includes(t.Status?.State)).length;
  if (failures >= 3) return { state: 'failed', detail: exited ? cite(exited) : `${failures} tasks failed` };
  const updateDone = !svc.updateState || svc.updateState === 'completed';
  const ids = runningTasks.map((t) => t.ID).filter((id): id is string => typeof id === 'string');
  const all = running >= svc.replicas && ids.length === running ? { tasks: ids.sort() } : {};
  if (running >= svc.replicas && updateDone)
    return { state: 'converged', running, desired: svc.replicas, ...all };
  const starting = ofImage.filter(
    (t) => t.DesiredState === 'running' && STARTING_TASK_STATES.includes(t.Status?.State),
  ).length;
  return {
    state: 'converging',
    running,
    desired: svc.replicas,
    detail: `${running}/${svc.replicas} tasks running ${image}${svc.updateState ? `, update ${svc.updateState}` : ''}${failures ? `, ${failures} failed` : ''}`,
    ...all,
    ...(starting > 0 ? { starting } : {}),
  };
}

/** Labels of a release task's job service: what finds it again after a crash and removes it with its release. */
export const TASK_RELEASE_LABEL = 'flightdeck.release';
export const TASK_NAME_LABEL = 'flightdeck.task';

/**
 * The job service of one task of one release: `<colour service without -blue/-green>-task-<task>-<hash>`,
 * at most 63 characters (Swarm's limit). Derived from the release id and task name only, so a run
 * after a crash finds the job it created instead of creating a second one.
 */
export function taskJobName(colourService: string, releaseId: string, task: string): string {
  const base = colourService.replace(/[-_.](blue|green)$/i, '');
  const hash = createHash('sha256').update(`${releaseId}\n${task}`).digest('hex').slice(0, 8);
  const suffix = `-task-${task}-${hash}`;
  return `${base.slice(0, 63 - suffix.length).replace(/[-_.]+$/, '')}${suffix}`;
}

/** Where a one-off job stands, from its task list (one task: RestartPolicy none, one completion). */
export type TaskJobState =
  | { state: 'waiting'; detail: string }
  | { state: 'exited'; exitCode: number; durationMs: number }
  | { state: 'rejected'; message: string; durationMs: number };

const JOB_ENDED = ['complete', 'failed', 'rejected', 'shutdown', 'orphaned', 'remove'];

export function judgeTaskJob(tasks: Spec[]): TaskJobState {
  const task = [...tasks].sort((a, b) => String(b.CreatedAt).localeCompare(String(a.CreatedAt)))[0];
  if (!task) return { state: 'waiting', detail: 'no task scheduled yet' };
  const state = String(task.Status?.State ?? 'new');
  if (!JOB_ENDED.includes(state))
    return { state: 'waiting', detail: task.Status?.Err ? `${state} (${task.Status.Err})` : state };
  const ended = Date.parse(task.Status?.Timestamp ?? '');
  const created = Date.parse(task.CreatedAt ?? '');
  const durationMs = Number.isFinite(ended) && Number.isFinite(created) ? Math.max(0, ended - created) : 0;
  // ExitCode is omitted from the JSON when it is 0 (Go's omitempty).
  const code = task.Status?.ContainerStatus?.ExitCode;
  if (state === 'complete')
    return { state: 'exited', exitCode: typeof code === 'number' ? code : 0, durationMs };
  if (state === 'failed' && typeof code === 'number' && code !== 0)
    return { state: 'exited', exitCode: code, durationMs };
  return {
    state: 'rejected',
    message: `${state}: ${task.Status?.Err || task.Status?.Message || 'no error given'}`,
    durationMs,
  };
}

/**
 * The text of a non-TTY container log: Docker frames each chunk with an 8-byte header (stream,
 * 0, 0, 0, big-endian length). Anything that does not start like a frame is taken as plain text.
 */
export function demuxDockerLog(data: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= data.length) {
    const stream = data[i] as number;
    if (stream > 2 || data[i + 1] !== 0 || data[i + 2] !== 0 || data[i + 3] !== 0) break;
    const size = data.readUInt32BE(i + 4);
    parts.push(data.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  if (i < data.length) parts.push(data.subarray(i));
  return Buffer.concat(parts).toString('utf8');
}

/** The last `n` lines of a log, with terminal escapes and other control characters removed. */
export function lastLogLines(text: string, n: number): string[] {
  const lines = text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .split('\n')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
    .map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ''));
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines.slice(-n);
}

/** A release task's job: run once with the release's image, in the colour's service's environment. */
export interface TaskJobRequest {
  name: string;
  image: string;
  command: string[];
  env?: Record<string, string>;
  /** Without them, the networks of `like`. */
  networks?: string[];
  labels: Record<string, string>;
  /** The colour's service whose environment, secrets, configs, networks and placement the job gets. */
  like: string;
}

/** The job service's spec: a replicated job of one completion that Swarm never restarts. */
export function taskJobSpec(req: TaskJobRequest, like: Spec): Spec {
  const template = like.TaskTemplate ?? {};
  const container = template.ContainerSpec ?? {};
  const env = new Map<string, string>();
  for (const e of (container.Env ?? []) as string[]) {
    const at = e.indexOf('=');
    env.set(at < 0 ? e : e.slice(0, at), at < 0 ? '' : e.slice(at + 1));
  }
  for (const [k, v] of Object.entries(req.env ?? {})) env.set(k, v);
  const networks = req.networks
    ? req.networks.map((n) => ({ Target: n }))
    : (template.Networks ?? like.Networks ?? []).map((n: Spec) => ({ Target: n.Target, Aliases: n.Aliases }));
  return {
    Name: req.name,
    Labels: req.labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: req.image,
        Command: req.command,
        Env: [...env].map(([k, v]) => `${k}=${v}`),
        ...(container.Secrets ? { Secrets: container.Secrets } : {}),
        ...(container.Configs ? { Configs: container.Configs } : {}),
        ...(container.User ? { User: container.User } : {}),
        Labels: req.labels,
      },
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
      ...(template.Placement ? { Placement: template.Placement } : {}),
      ...(networks.length > 0 ? { Networks: networks } : {}),
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
  };
}

/** The part of one `GET /events` line flightdeck reads; anything else on the line is ignored. */
const DockerEvent = z.object({
  Type: z.string(),
  Action: z.string(),
  Actor: z.object({ Attributes: z.record(z.string(), z.string()).nullish() }).nullish(),
});

/**
 * The Swarm service an event is about: a service event names it, a container event of a task
 * carries it as a label. Only actions that move a convergence count (no exec, attach, …).
 */
export function serviceOfEvent(line: unknown): string | undefined {
  const e = DockerEvent.safeParse(line);
  if (!e.success) return undefined;
  const attrs = e.data.Actor?.Attributes ?? {};
  if (e.data.Type === 'service' && e.data.Action === 'update') return attrs.name || undefined;
  if (e.data.Type === 'container' && CONTAINER_ACTIONS.includes(e.data.Action))
    return attrs['com.docker.swarm.service.name'] || undefined;
  return undefined;
}

const CONTAINER_ACTIONS = ['start', 'die'];

interface Waiter {
  service: string;
  mark: number;
  fire: () => void;
  timer: NodeJS.Timeout;
}

export interface SwarmEventsOptions {
  /** How long the stream stays open after the last interest in it (a look or a waiter). */
  idleMs?: number;
  /** The first and the longest pause before reconnecting a dropped stream. */
  retryMs?: readonly [number, number];
}

/**
 * One Docker endpoint's event stream (`GET /events`, service updates and task containers starting
 * or dying), so a release waiting for Swarm moves on when Swarm reports a change instead of at its
 * next poll. Opened on first use and closed when idle; its socket never keeps the process alive.
 *
 * Events only hurry a poll, never replace it: a stream that drops (a restarted or remote engine)
 * can miss some, so every waiter also has its own poll. A waiter registered before the stream
 * (re)connected fires when it connects, since what it waited for may have gone by meanwhile.
 * Service events come from the manager; container events only for tasks on the endpoint's own node,
 * so on several nodes a task starting elsewhere is seen at the next poll.
 */
export class SwarmEvents {
  private seq = 0;
  /** Service → the seq of its latest event. */
  private readonly changed = new Map<string, number>();
  /** Service → the seq when its state was last read (what a later event is news against). */
  private readonly looked = new Map<string, number>();
  /** The seq at which the open stream connected; undefined while there is none. */
  private connectedAt: number | undefined;
  private readonly waiters = new Set<Waiter>();
  private stream: (NodeJS.ReadableStream & { destroy(): void }) | undefined;
  private opening = false;
  private retry: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private readonly idleMs: number;
  private readonly retryMs: readonly [number, number];

  constructor(
    private readonly docker: Docker,
    opts: SwarmEventsOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 120_000;
    this.retryMs = opts.retryMs ?? [500, 30_000];
  }

  get connected(): boolean {
    return this.connectedAt !== undefined;
  }

  /** Called just before reading a service's state: an event after this is news. */
  lookingAt(service: string): void {
    this.want();
    this.looked.set(service, this.seq);
  }

  /**
   * Calls `fire` once: at the first event of `service` since it was last looked at (at once if one
   * came already), or when the stream (re)connects after that look; never after `untilMs`. While the
   * stream is down nothing fires: the caller's poll is the fallback. Returns a cancel.
   */
  whenChanged(service: string, untilMs: number, fire: () => void): () => void {
    const delay = untilMs - Date.now();
    if (delay <= 0 || this.closed) return () => {};
    this.want();
    const mark = this.looked.get(service) ?? this.seq;
    const w: Waiter = { service, mark, fire, timer: setTimeout(() => this.waiters.delete(w), delay) };
    w.timer.unref();
    this.waiters.add(w);
    if (this.missed(w)) setImmediate(() => this.release(w));
    return () => {
      clearTimeout(w.timer);
      this.waiters.delete(w);
    };
  }

  /** Stops for good (a process shutting down): the stream, its retries and every waiter. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    clearTimeout(this.idle);
    clearTimeout(this.retry);
    this.disconnect();
  }

  private missed(w: Waiter): boolean {
    if ((this.changed.get(w.service) ?? -1) > w.mark) return true;
    return this.connectedAt !== undefined && this.connectedAt > w.mark;
  }

  private release(w: Waiter): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    try {
      w.fire();
    } catch {
      // A waiter's own failure is its business; the others still fire.
    }
  }

  /** Someone is interested: the stream opens (or stays open) until idleMs after the last interest. */
  private want(): void {
    if (this.closed) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.idleCheck(), this.idleMs);
    this.idle.unref();
    if (!this.stream && !this.opening && !this.retry) void this.open();
  }

  private idleCheck(): void {
    if (this.waiters.size > 0) {
      this.idle = setTimeout(() => this.idleCheck(), this.idleMs);
      this.idle.unref();
      return;
    }
    this.idle = undefined;
    clearTimeout(this.retry);
    this.retry = undefined;
    this.disconnect();
  }

  private disconnect(): void {
    const s = this.stream;
    this.stream = undefined;
    this.connectedAt = undefined;
    s?.destroy();
  }

  private async open(): Promise<void> {
    this.opening = true;
    try {
      const filters = { type: ['service', 'container'], event: ['update', ...CONTAINER_ACTIONS] };
      const stream = (await this.docker.getEvents({
        filters,
      } as never)) as unknown as NodeJS.ReadableStream & {
        destroy(): void;
        socket?: { setTimeout(ms: number): void; unref(): void };
      };
      this.opening = false;
      if (this.closed || !this.idle) {
        stream.destroy();
        return;
      }
      // The client's 15 s request timeout would cut a quiet stream; and it must not hold the process open.
      stream.socket?.setTimeout(0);
      stream.socket?.unref();
      this.stream = stream;
      this.failures = 0;
      this.connectedAt = ++this.seq;
      let buffered = '';
      stream.on('data', (chunk: Buffer | string) => {
        buffered += chunk.toString();
        // A line never gets this long; a stream that is not line-delimited JSON is dropped.
        if (buffered.length > 1_000_000) buffered = '';
        for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
          const line = buffered.slice(0, i);
          buffered = buffered.slice(i + 1);
          this.onLine(line);
        }
      });
      const ended = () => {
        if (this.stream !== stream) return;
        this.stream = undefined;
        this.connectedAt = undefined;
        this.scheduleRetry();
      };
      stream.on('end', ended);
      stream.on('close', ended);
      stream.on('error', ended);
      for (const w of [...this.waiters]) if (this.missed(w)) this.release(w);
    } catch {
      this.opening = false;
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.closed || !this.idle || this.retry) return;
    const [first, longest] = this.retryMs;
    const delay = Math.min(longest, first * 2 ** this.failures);
    this.failures += 1;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.closed && this.idle && !this.stream && !this.opening) void this.open();
    }, delay);
    this.retry.unref();
  }

  private onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    const service = serviceOfEvent(parsed);
    if (!service) return;
    this.seq += 1;
    this.changed.set(service, this.seq);
    for (const w of [...this.waiters]) if (w.service === service) this.release(w);
  }
}

/** Environments on one endpoint share its Docker client, and with it one event stream. */
const eventStreams = new WeakMap<Docker, SwarmEvents>();

function eventsOf(docker: Docker): SwarmEvents {
  let events = eventStreams.get(docker);
  if (!events) {
    events = new SwarmEvents(docker);
    eventStreams.set(docker, events);
  }
  return events;
}

/** The narrow slice of the Docker Engine API a release needs, through dockerode (never the CLI). */
export class Swarm {
  /** `where` names the endpoint in messages, e.g. "staging's Docker endpoint unix:///run/docker.sock". */
  constructor(
    private readonly docker: Docker,
    private readonly where?: string,
  ) {}

  async inspect(name: string): Promise<ServiceInfo & { spec: Spec }> {
    const raw = await this.call(() => this.docker.getService(name).inspect(), name);
    const spec = raw.Spec as Spec;
    const replicas = spec.Mode?.Replicated?.Replicas ?? 1;
    const remembered = Number(spec.Labels?.[REPLICAS_LABEL]);
    return {
      id: raw.ID,
      name,
      version: raw.Version.Index,
      image: stripDigest(spec.TaskTemplate?.ContainerSpec?.Image ?? ''),
      previousImage: raw.PreviousSpec
        ? stripDigest(raw.PreviousSpec.TaskTemplate?.ContainerSpec?.Image ?? '')
        : undefined,
      replicas,
      restoreReplicas:
        replicas > 0 ? replicas : Number.isInteger(remembered) && remembered > 0 ? remembered : 1,
      updateState: raw.UpdateStatus?.State,
      updateMessage: raw.UpdateStatus?.Message,
      spec,
    };
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.inspect(name);
      return true;
    } catch (err) {
      if (err instanceof SwarmServiceMissing) return false;
      throw err;
    }
  }

  /**
   * Sets the image, and a colour scaled to 0 (`afterRelease: scale-down`) back to its replicas in the
   * same update; a no-op when the spec already has both (so a resumed step has no second effect).
   */
  async updateImage(
    name: string,
    image: string,
  ): Promise<{ changed: boolean; previous: string; scaledTo?: number }> {
    const svc = await this.inspect(name);
    // Opens the event stream now, so it is connected by the time the release waits on it.
    this.events.lookingAt(name);
    const scaledTo = svc.replicas === 0 ? svc.restoreReplicas : undefined;
    if (svc.image === image && scaledTo === undefined)
      return { changed: false, previous: svc.previousImage ?? svc.image };
    const spec = scaledTo === undefined ? structuredClone(svc.spec) : withReplicas(svc.spec, scaledTo);
    spec.TaskTemplate.ContainerSpec.Image = image;
    // dockerode puts top-level keys in the query string: keep version there and the spec in the body.
    await this.call(
      () => this.docker.getService(name).update({ _query: { version: svc.version }, _body: spec } as never),
      name,
    );
    return { changed: true, previous: svc.image, scaledTo };
  }

  /** Server-side rollback to PreviousSpec (`rollback=previous`). */
  async rollbackToPrevious(name: string): Promise<{ changed: boolean; image: string }> {
    const svc = await this.inspect(name);
    if (!svc.previousImage) return { changed: false, image: svc.image };
    await this.call(
      () =>
        this.docker
          .getService(name)
          .update({ _query: { version: svc.version, rollback: 'previous' }, _body: svc.spec } as never),
      name,
    );
    return { changed: true, image: svc.previousImage };
  }

  /** Sets the replica count; scaling to 0 remembers the count it had (see `restoreReplicas`). */
  async scale(name: string, replicas: number): Promise<void> {
    const svc = await this.inspect(name);
    if (svc.replicas === replicas) return;
    const spec = withReplicas(svc.spec, replicas);
    await this.call(
      () => this.docker.getService(name).update({ _query: { version: svc.version }, _body: spec } as never),
      name,
    );
  }

  /** The endpoint's event stream (shared by the environments on it). */
  get events(): SwarmEvents {
    return eventsOf(this.docker);
  }

  /**
   * Calls `fire` once when Swarm reports a change to `name` after the last convergence() of it, or
   * not at all (no change before `untilMs`, or no event stream): the caller polls anyway.
   */
  whenChanged(name: string, untilMs: number, fire: () => void): () => void {
    return this.events.whenChanged(name, untilMs, fire);
  }

  /** All desired tasks running the image and the update completed; failed if Swarm gave up or tasks keep failing. */
  async convergence(name: string, image: string): Promise<Convergence> {
    // Before the read: an event after this point is a change this read may not have seen.
    this.events.lookingAt(name);
    const svc = await this.inspect(name);
    const tasks = (await this.call(
      () => this.docker.listTasks({ filters: { service: [name] } }),
      name,
    )) as Spec[];
    const c = judgeConvergence(svc, image, tasks);
    // Only a failure names nodes: the node list is one more call, not worth making on every poll.
    if (c.state !== 'failed' || !tasks.some((t) => t.NodeID)) return c;
    return judgeConvergence(svc, image, tasks, await this.nodeNames());
  }

  /**
   * Creates a release task's job service; 'exists' when one of that name is already there (created
   * before a crash), so a task is never started twice.
   */
  async createTaskJob(req: TaskJobRequest): Promise<'created' | 'exists'> {
    const like = await this.inspect(req.like);
    try {
      await this.docker.createService(taskJobSpec(req, like.spec) as never);
      return 'created';
    } catch (err) {
      const e = err as { statusCode?: number; json?: { message?: string } };
      if (e.statusCode === 409) return 'exists';
      // A spec Docker refuses (an unknown network, a bad name) stays refused: no retry helps.
      if (e.statusCode === 400 || e.statusCode === 404)
        throw new FlightdeckError(
          'task_job_refused',
          `Docker refused the job ${req.name}: ${e.json?.message ?? (err as Error).message}`,
          false,
        );
      return this.call(() => Promise.reject(err), req.name);
    }
  }

  /** A task's job service (undefined when there is none): when it was created and how its task stands. */
  async taskJob(name: string): Promise<{ createdAt?: number; job: TaskJobState } | undefined> {
    let raw: Spec;
    try {
      raw = await this.call(() => this.docker.getService(name).inspect(), name);
    } catch (err) {
      if (err instanceof SwarmServiceMissing) return undefined;
      throw err;
    }
    const tasks = (await this.call(
      () => this.docker.listTasks({ filters: { service: [raw.ID] } }),
      name,
    )) as Spec[];
    const created = Date.parse(raw.CreatedAt ?? '');
    return { createdAt: Number.isFinite(created) ? created : undefined, job: judgeTaskJob(tasks) };
  }

  /** The last `tail` lines of a service's stdout and stderr (read before the job is removed). */
  async serviceLogLines(name: string, tail: number): Promise<string[]> {
    const data = await this.call(
      () =>
        this.docker.getService(name).logs({
          stdout: true,
          stderr: true,
          follow: false,
          tail,
          abortSignal: AbortSignal.timeout(10_000),
        } as never) as unknown as Promise<Buffer | string | object>,
      name,
    );
    const buf = Buffer.isBuffer(data)
      ? data
      : Buffer.from(typeof data === 'string' ? data : JSON.stringify(data));
    return lastLogLines(demuxDockerLog(buf), tail);
  }

  /**
   * When the image was created, from its `label` (RFC 3339, e.g. `org.opencontainers.image.created`)
   * or, for `docker:created`, the image's own Created time; undefined when the engine does not have
   * the image, the label is absent or unreadable, or the engine does not answer within `timeoutMs`.
   */
  async imageCreatedAt(image: string, label: string, timeoutMs = 5_000): Promise<number | undefined> {
    try {
      let timer: NodeJS.Timeout | undefined;
      const raw = (await Promise.race([
        this.docker.getImage(image).inspect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer))) as {
        Created?: string;
        Config?: { Labels?: Record<string, string> | null };
      };
      const value = label === 'docker:created' ? raw.Created : raw.Config?.Labels?.[label];
      const at = value ? Date.parse(value) : Number.NaN;
      return Number.isFinite(at) ? at : undefined;
    } catch {
      return undefined;
    }
  }

  /** Removes a service; false when it was already gone. */
  async removeService(name: string): Promise<boolean> {
    try {
      await this.call(() => this.docker.getService(name).remove(), name);
      return true;
    } catch (err) {
      if (err instanceof SwarmServiceMissing) return false;
      throw err;
    }
  }

  /** Removes every task job service of a release still there (a release that stopped mid-task); their names. */
  async removeTaskJobs(releaseId: string): Promise<string[]> {
    const services = (await this.call(
      () => this.docker.listServices({ filters: { label: [`${TASK_RELEASE_LABEL}=${releaseId}`] } }),
      releaseId,
    )) as Spec[];
    const names = services.map((s) => String(s.Spec?.Name ?? s.ID));
    for (const n of names) await this.removeService(n);
    return names;
  }

  /** Node ID → hostname; empty when the engine cannot list nodes (not a manager), so IDs are shown. */
  private async nodeNames(): Promise<NodeNames> {
    try {
      const nodes = (await this.docker.listNodes()) as Spec[];
      return new Map(nodes.map((n) => [String(n.ID), String(n.Description?.Hostname ?? n.ID)]));
    } catch {
      return new Map();
    }
  }

  private async call<T>(fn: () => Promise<T>, service: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { statusCode?: number; code?: string; message?: string; json?: { message?: string } };
      if (e.statusCode === 404) throw new SwarmServiceMissing(service);
      if (
        e.code === 'ECONNREFUSED' ||
        e.code === 'ENOENT' ||
        e.code === 'EACCES' ||
        e.code === 'ECONNRESET'
      ) {
        throw new DockerUnavailable(
          this.where
            ? `Docker engine unreachable (${e.code}): ${this.where} does not answer; is dockerd running there?`
            : `Docker engine unreachable (${e.code}): is dockerd running on this Swarm manager?`,
        );
      }
      const message = e.json?.message ?? e.message ?? String(err);
      // An engine shutting down (or restarting) leaves the swarm first and answers 503 for a while:
      // a state to wait out, not Docker's advice to run `docker swarm init`.
      if (e.statusCode === 503 && /not a swarm manager/i.test(message)) {
        throw new DockerUnavailable(
          `Docker engine not ready: ${this.where ?? 'this node'} is not a Swarm manager right now (the engine is restarting, or it left the swarm)`,
        );
      }
      throw new Error(`Docker API: ${message}`);
    }
  }
}
