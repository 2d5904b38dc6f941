import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { FlightdeckError } from '../errors.js';
import {
  acceptingWorkers,
  isMaster,
  masterOf,
  type ProcessTable,
  procTable,
  stillAccepting,
} from './nginx-workers.js';

const execFileAsync = promisify(execFile);

/** nginx is reachable when its probe URL answers at all (any HTTP status). */
export async function probeNginx(probeUrl: string, timeoutMs = 1_500): Promise<void> {
  const res = await fetch(probeUrl, { signal: AbortSignal.timeout(timeoutMs) });
  await res.body?.cancel();
}

/** Request headers for a probe of nginx's own answers: a new connection each time (see servedSteadily). */
export const FRESH_CONNECTION = { connection: 'close' };

/**
 * True once `url` answers `expected` several times in a row, each on a new connection, within
 * `timeoutMs`. After a reload nginx's old workers keep accepting connections for a moment (the
 * master waits before telling them to quit, and an idle old worker wins the accept), so one new
 * answer, or a kept-alive connection to a new worker, does not mean nginx serves the new config.
 */
export async function servedSteadily(
  url: string,
  expected: string,
  timeoutMs: number,
  inARow = 5,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let streak = 0;
  while (Date.now() < deadline) {
    const live = await answers(url, expected);
    streak = live ? streak + 1 : 0;
    if (streak >= inARow) return true;
    if (!live) await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** One probe on a new connection: does `url` answer `expected` (false if it does not answer at all)? */
export function answers(url: string, expected: string): Promise<boolean> {
  return fetch(url, { headers: FRESH_CONNECTION, signal: AbortSignal.timeout(1_000) })
    .then(async (res) => (await res.text()).trim() === expected)
    .catch(() => false);
}

export interface UpstreamServer {
  address: string;
  /** Percent of traffic, 0–100; 0 renders as `down` because nginx rejects weight=0. */
  weight: number;
  colour: string;
}

export interface Upstream {
  name: string;
  servers: UpstreamServer[];
  /** services.<svc>.upstream: keep-alive pool and nginx's max_fails / fail_timeout. */
  settings?: { keepalive: number; maxFails: number; failTimeoutMs: number };
  /** services.<svc>.sticky, when enabled (only the lua driver renders it). */
  sticky?: StickyUpstream;
}

/** Sticky canary sessions of one upstream: the bucket cookie and the tester's pin header. */
export interface StickyUpstream {
  cookie: string;
  maxAgeMs: number;
  secure: boolean;
  pinHeader: string;
  /** IPv4 CIDRs the pin header is honoured from; empty: never. */
  pinFrom: string[];
}

/** `max_fails`/`fail_timeout` of a server line, only where they differ from nginx's own (1, 10s). */
function failureParams(u: Upstream): string {
  const s = u.settings;
  if (!s) return '';
  const parts = [
    ...(s.maxFails !== 1 ? [`max_fails=${s.maxFails}`] : []),
    ...(s.failTimeoutMs !== 10_000
      ? [`fail_timeout=${Math.max(1, Math.round(s.failTimeoutMs / 1000))}s`]
      : []),
  ];
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/**
 * The nginx upstream of one service: `<prefix>_<environment>_<service>`, dashes → underscores.
 * Two services can map to the same name (`prod-eu`/`api` and `prod`/`eu-api`); the config schema
 * refuses that, using this same function.
 */
export function upstreamName(prefix: string, environment: string, service: string): string {
  return `${prefix}_${environment}_${service}`.replace(/-/g, '_');
}

/** nginx refused or did not take a change; the old config stays unless said otherwise. */
export class NginxError extends FlightdeckError {
  constructor(message: string) {
    super('nginx_failed', message, true);
  }
}

/**
 * The new files are valid but nginx could not be told (reload failed, admin endpoint down): with
 * `keepOnReloadFailure` they stay in place for nginx to use when it starts.
 */
export class NginxReloadFailed extends FlightdeckError {
  constructor(message: string) {
    super('nginx_reload_failed', message, true);
  }
}

/** The header the status server names its worker's pid in (see nginx-workers.ts). */
export const WORKER_HEADER = 'X-Flightdeck-Worker';

const MANAGED = '# Managed by flightdeck: rewritten on every traffic change. Do not edit by hand.';

/** The managed upstream file: pure, so tests and previews need no nginx. */
export function renderUpstreams(upstreams: Upstream[], generation: string, statusListen?: string): string {
  const lines = [MANAGED, `# generation ${generation}`, ''];
  for (const u of upstreams) {
    lines.push(`upstream ${u.name} {`);
    const params = failureParams(u);
    for (const s of u.servers) {
      lines.push(
        s.weight > 0
          ? `    server ${s.address} weight=${s.weight}${params}; # ${s.colour} ${s.weight}%`
          : `    server ${s.address} down; # ${s.colour} 0%`,
      );
    }
    if (u.settings?.keepalive) lines.push(`    keepalive ${u.settings.keepalive};`);
    lines.push('}', '');
  }
  if (statusListen) {
    // Answers the generation once the reloaded workers run this file.
    lines.push('server {', `    listen ${statusListen};`, '    access_log off;');
    // The answering worker's pid lets the reload driver find nginx's master and its old workers.
    lines.push(
      `    location = /flightdeck/generation { add_header ${WORKER_HEADER} $pid always; return 200 "${generation}"; }`,
      '}',
      '',
    );
  }
  return lines.join('\n');
}

export function generationOf(content: string): string {
  return createHash('sha256').update(content).digest('hex').slice(0, 16);
}

export interface NginxOptions {
  upstreamFile: string;
  testCommand: string[];
  reloadCommand: string[];
  statusListen?: string;
}

export interface ApplyResult {
  changed: boolean;
  generation: string;
  ms: number;
  /** True when nginx took the change without a reload (nginx.driver: lua and edge). */
  live?: boolean;
  /** nginx.driver: reload: old workers still taking new connections (old weights) when it returned. */
  lingering?: number[];
  /** nginx.driver: edge: the replicas that confirmed, and those seen before that no longer report. */
  edges?: { live: string[]; missing: string[] };
}

/** How a change reached nginx, for people: "reloaded in 84 ms", "updated live in 3 ms", "already there". */
export function describeApply(apply: ApplyResult): string {
  if (!apply.changed) return 'already there';
  const ms = Math.round(apply.ms);
  if (apply.edges) {
    const n = apply.edges.live.length;
    const missing = apply.edges.missing.length ? `; not reporting: ${apply.edges.missing.join(', ')}` : '';
    return `taken by ${n} edge${n === 1 ? '' : 's'} (${apply.edges.live.join(', ')}) in ${ms} ms${missing}`;
  }
  const lingering = apply.lingering?.length
    ? `; ⚠️ old nginx workers (pid ${apply.lingering.join(', ')}) still take connections with the old weights`
    : '';
  return `${apply.live ? 'updated live' : 'reloaded'} in ${ms} ms${lingering}`;
}

/**
 * Writes the upstream file atomically (temp file + rename), checks it with `nginx -t` and reloads;
 * on any failure the previous file is put back and nothing is reloaded. Argv only, never a shell.
 */
export class NginxDriver {
  /** nginx's master, once found (see acceptingNow). */
  private master: number | undefined;

  /**
   * `processes`: this machine's process table, where nginx runs here (not with nginx.exec, whose
   * nginx runs in containers with pids of their own).
   */
  constructor(
    private readonly opts: NginxOptions,
    private readonly run: (argv: string[]) => Promise<void> = runArgv,
    private readonly processes: ProcessTable | undefined = procTable,
  ) {}

  /**
   * `keepOnReloadFailure`: for moves towards safety (rollbacks). If the file passed `nginx -t` but
   * nginx could not be reloaded (e.g. it is down), keep the file so nginx starts on the safe side.
   */
  async apply(upstreams: Upstream[], { keepOnReloadFailure = false } = {}): Promise<ApplyResult> {
    const started = performance.now();
    // The generation is the hash of the upstreams alone, so identical state renders identically.
    const generation = generationOf(JSON.stringify(upstreams));
    const content = renderUpstreams(upstreams, generation, this.opts.statusListen);
    const previous = await readFile(this.opts.upstreamFile, 'utf8').catch(() => undefined);
    if (previous === content && (await this.isLive(generation))) {
      return { changed: false, generation, ms: performance.now() - started };
    }
    await writeAtomically(this.opts.upstreamFile, content);
    let lingering: number[] = [];
    try {
      await this.run(this.opts.testCommand).catch((err: Error) => {
        throw new NginxError(`nginx -t rejected the new upstreams; the old config stays: ${err.message}`);
      });
      // Until nginx's old workers are told to quit (100 ms or more after a reload) they accept new
      // connections with the old weights. That matters where a server stops taking traffic (a step
      // to 100%, a rollback): those workers are noted now and waited for. A change that only moves
      // weight between servers that keep serving (10% → 50%) is in place once new workers answer.
      const settle = takesServersOut(previous === undefined ? undefined : servingInFile(previous), upstreams);
      const old = settle ? await this.acceptingNow() : undefined;
      await this.run(this.opts.reloadCommand).catch((err: Error) => {
        throw new NginxReloadFailed(
          keepOnReloadFailure
            ? `nginx reload failed (${err.message}); the new upstream file is in place and nginx will use it when it starts`
            : `nginx reload failed; the old config stays: ${err.message}`,
        );
      });
      if (this.opts.statusListen) lingering = await this.waitServed(generation, settle, old);
    } catch (err) {
      if (!(keepOnReloadFailure && err instanceof NginxReloadFailed)) await this.restore(previous);
      throw err;
    }
    return {
      changed: true,
      generation,
      ms: performance.now() - started,
      ...(lingering.length > 0 ? { lingering } : {}),
    };
  }

  /**
   * Resolves once nginx serves `generation` and, with `settle`, no worker that ran before the reload
   * still accepts connections: known from the process table when nginx runs on this machine
   * (`old`), else judged from five answers of the new generation in a row. Returns the old workers
   * that still accept after 5 s (none, normally).
   */
  private async waitServed(
    generation: string,
    settle: boolean,
    old: number[] | undefined,
  ): Promise<number[]> {
    const url = `http://${this.opts.statusListen}/flightdeck/generation`;
    const deadline = Date.now() + 5_000;
    if (!(await servedSteadily(url, generation, 5_000, settle && !old ? 5 : 1))) {
      throw new NginxError(
        `nginx accepted the reload but is not serving generation ${generation} after 5 s (see nginx's error log); the old config stays`,
      );
    }
    if (!old || !this.processes) return [];
    for (;;) {
      const left = await stillAccepting(this.processes, old);
      // A worker that has not taken the quit signal in 5 s is wedged; the new config is served,
      // so the change stands (putting the old file back would be worse) and the result names it.
      if (left.length === 0 || Date.now() >= deadline) return left;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * The workers accepting connections before a reload, when nginx runs on this machine: its master
   * is found once from the status server's answer (the worker's pid) and remembered while it lives.
   */
  private async acceptingNow(): Promise<number[] | undefined> {
    const table = this.processes;
    if (!table || !this.opts.statusListen) return undefined;
    if (this.master === undefined || !(await isMaster(table, this.master))) {
      this.master = undefined;
      const pid = await fetch(`http://${this.opts.statusListen}/flightdeck/generation`, {
        headers: FRESH_CONNECTION,
        signal: AbortSignal.timeout(1_000),
      })
        .then(async (res) => {
          await res.body?.cancel();
          return Number(res.headers.get(WORKER_HEADER));
        })
        .catch(() => Number.NaN);
      if (Number.isInteger(pid) && pid > 0) this.master = await masterOf(table, pid);
    }
    if (this.master === undefined) return undefined;
    const workers = await acceptingWorkers(table, this.master);
    // None found (a kernel without /proc/<pid>/task/<pid>/children): not known, so not trusted.
    return workers.length > 0 ? workers : undefined;
  }

  private async restore(previous: string | undefined): Promise<void> {
    if (previous === undefined) await rm(this.opts.upstreamFile, { force: true });
    else await writeAtomically(this.opts.upstreamFile, previous);
  }

  private async isLive(generation: string): Promise<boolean> {
    if (!this.opts.statusListen) return true;
    return answers(`http://${this.opts.statusListen}/flightdeck/generation`, generation);
  }
}

/** Each server that takes traffic in `upstreams`, as upstream name and address. */
function servingServers(upstreams: Upstream[]): Set<string> {
  return new Set(
    upstreams.flatMap((u) => u.servers.filter((s) => s.weight > 0).map((s) => `${u.name} ${s.address}`)),
  );
}

/**
 * The servers taking traffic in an upstream file flightdeck rendered (the file is what the last
 * apply of any replica left, read under the nginx mutex); undefined for a file it did not render.
 */
export function servingInFile(content: string): Set<string> | undefined {
  if (!content.startsWith(MANAGED)) return undefined;
  const serving = new Set<string>();
  let upstream = '';
  for (const line of content.split('\n')) {
    const block = /^upstream (\S+) \{$/.exec(line);
    if (block) upstream = block[1] as string;
    const server = /^ {4}server (\S+) weight=/.exec(line);
    if (server) serving.add(`${upstream} ${server[1]}`);
  }
  return serving;
}

/** True unless every server that took traffic before (when known) still takes some in `upstreams`. */
export function takesServersOut(before: Set<string> | undefined, upstreams: Upstream[]): boolean {
  if (!before) return true;
  const after = servingServers(upstreams);
  for (const server of before) if (!after.has(server)) return true;
  return false;
}

export async function writeAtomically(file: string, content: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export async function runArgv(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('empty command');
  try {
    await execFileAsync(cmd, args, { timeout: 15_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error((e.stderr || e.message).trim().split('\n').slice(-3).join(' '));
  }
}
