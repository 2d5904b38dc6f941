import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { FlightdeckError } from '../errors.js';

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
    lines.push(`    location = /flightdeck/generation { return 200 "${generation}"; }`, '}', '');
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
  return `${apply.live ? 'updated live' : 'reloaded'} in ${ms} ms`;
}

/**
 * Writes the upstream file atomically (temp file + rename), checks it with `nginx -t` and reloads;
 * on any failure the previous file is put back and nothing is reloaded. Argv only, never a shell.
 */
export class NginxDriver {
  constructor(
    private readonly opts: NginxOptions,
    private readonly run: (argv: string[]) => Promise<void> = runArgv,
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
    try {
      await this.run(this.opts.testCommand).catch((err: Error) => {
        throw new NginxError(`nginx -t rejected the new upstreams; the old config stays: ${err.message}`);
      });
      await this.run(this.opts.reloadCommand).catch((err: Error) => {
        throw new NginxReloadFailed(
          keepOnReloadFailure
            ? `nginx reload failed (${err.message}); the new upstream file is in place and nginx will use it when it starts`
            : `nginx reload failed; the old config stays: ${err.message}`,
        );
      });
      // Until nginx stops its old workers (about 100 ms after a reload), they still serve the old
      // weights. That matters where a server stops taking traffic (a step to 100%, a rollback): wait
      // for five answers in a row. A change that only moves weight between servers that keep serving
      // (10% → 50%) is in place once the new workers answer.
      const settle = takesServersOut(previous === undefined ? undefined : servingInFile(previous), upstreams);
      if (
        this.opts.statusListen &&
        !(await servedSteadily(
          `http://${this.opts.statusListen}/flightdeck/generation`,
          generation,
          5_000,
          settle ? 5 : 1,
        ))
      ) {
        throw new NginxError(
          `nginx accepted the reload but is not serving generation ${generation} after 5 s (see nginx's error log); the old config stays`,
        );
      }
    } catch (err) {
      if (!(keepOnReloadFailure && err instanceof NginxReloadFailed)) await this.restore(previous);
      throw err;
    }
    return { changed: true, generation, ms: performance.now() - started };
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
