import { readFile, rm } from 'node:fs/promises';
import {
  type ApplyResult,
  FRESH_CONNECTION,
  generationOf,
  NginxError,
  type NginxOptions,
  NginxReloadFailed,
  runArgv,
  servedSteadily,
  type Upstream,
  writeAtomically,
} from './nginx.js';
import { renderLuaUpstreams, renderWeights } from './nginx-lua-render.js';

export interface NginxLuaOptions extends NginxOptions {
  /** The loopback admin server rendered into the upstream file (required for this driver). */
  statusListen: string;
  upstreamPrefix: string;
  /** Sent as a bearer token on every weights request; nginx gets only its digest (NGINX_ADMIN_TOKEN). */
  adminToken: string;
}

/**
 * Changes weights without reloading nginx: the upstream file holds only static parts (upstream
 * names, a Lua balancer, a loopback admin server), and the weights live in a lua_shared_dict that
 * flightdeck updates over the admin server. A reload drains old workers, which closes idle
 * keep-alive connections and drops requests racing onto them; a dict update touches no connection.
 * The weights are also written to a file next to the upstream file, which nginx reads when it
 * starts, so a restarted nginx serves the last weights before flightdeck re-applies them.
 */
export class NginxLuaDriver {
  private readonly weightsFile: string;

  constructor(
    private readonly opts: NginxLuaOptions,
    private readonly run: (argv: string[]) => Promise<void> = runArgv,
  ) {
    this.weightsFile = `${opts.upstreamFile}.weights`;
  }

  private get admin(): string {
    return `http://${this.opts.statusListen}/flightdeck`;
  }

  /** Headers of a request to the weights endpoint: a fresh connection and the admin token. */
  private get adminHeaders(): Record<string, string> {
    return { ...FRESH_CONNECTION, authorization: `Bearer ${this.opts.adminToken}` };
  }

  async apply(upstreams: Upstream[], { keepOnReloadFailure = false } = {}): Promise<ApplyResult> {
    const started = performance.now();
    const generation = generationOf(JSON.stringify(upstreams));
    const weights = renderWeights(upstreams, generation);
    const statics = renderLuaUpstreams(upstreams, {
      prefix: this.opts.upstreamPrefix,
      statusListen: this.opts.statusListen,
      weightsFile: this.weightsFile,
      adminToken: this.opts.adminToken,
    });
    const [prevStatic, prevWeights] = await Promise.all([
      readFile(this.opts.upstreamFile, 'utf8').catch(() => undefined),
      readFile(this.weightsFile, 'utf8').catch(() => undefined),
    ]);
    const staticChanged = prevStatic !== statics.content;
    if (!staticChanged && prevWeights === weights && (await this.readBack()) === weights) {
      return { changed: false, generation, ms: performance.now() - started };
    }
    // The file first: whatever happens next, an nginx that (re)starts picks up these weights.
    await writeAtomically(this.weightsFile, weights);
    try {
      if (staticChanged) await this.reloadWith(statics, prevStatic, keepOnReloadFailure);
      await this.push(weights, generation, keepOnReloadFailure);
    } catch (err) {
      if (!(keepOnReloadFailure && err instanceof NginxReloadFailed))
        await restore(this.weightsFile, prevWeights);
      throw err;
    }
    return { changed: true, generation, ms: performance.now() - started, live: !staticChanged };
  }

  /** The static file changed (first start, or services added): write, `nginx -t`, reload, wait until live. */
  private async reloadWith(
    statics: { content: string; version: string },
    previous: string | undefined,
    keepOnReloadFailure: boolean,
  ): Promise<void> {
    await writeAtomically(this.opts.upstreamFile, statics.content);
    try {
      await this.run(this.opts.testCommand).catch((err: Error) => {
        throw new NginxError(`nginx -t rejected the new upstreams; the old config stays: ${err.message}`);
      });
      await this.run(this.opts.reloadCommand).catch((err: Error) => {
        throw new NginxReloadFailed(
          keepOnReloadFailure
            ? `nginx reload failed (${err.message}); the new files are in place and nginx will use them when it starts`
            : `nginx reload failed; the old config stays: ${err.message}`,
        );
      });
      if (!(await servedSteadily(`${this.admin}/config`, statics.version, 5_000))) {
        throw new NginxError(
          `nginx accepted the reload but is not serving config ${statics.version} after 5 s (see nginx's error log); the old config stays`,
        );
      }
    } catch (err) {
      if (!(keepOnReloadFailure && err instanceof NginxReloadFailed))
        await restore(this.opts.upstreamFile, previous);
      throw err;
    }
  }

  /** Sends the weights to nginx's shared dict and checks that it holds them. */
  private async push(weights: string, generation: string, keepOnReloadFailure: boolean): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${this.admin}/weights`, {
        method: 'PUT',
        body: weights,
        headers: this.adminHeaders,
        signal: AbortSignal.timeout(2_000),
      });
    } catch (err) {
      throw new NginxReloadFailed(
        keepOnReloadFailure
          ? `nginx's admin endpoint did not answer (${(err as Error).message}); the weights file is in place and nginx will use it when it starts`
          : `nginx's admin endpoint did not answer; the old weights stay: ${(err as Error).message}`,
      );
    }
    const answer = await res.text();
    if (!res.ok) throw new NginxError(`nginx refused the new weights (${res.status}): ${answer.trim()}`);
    // nginx answers what it holds after the PUT; one rendered by an older flightdeck answers only
    // the generation, and is read back.
    const live = answer === weights ? answer : await this.readBack();
    if (live !== weights) {
      throw new NginxError(
        `nginx accepted generation ${generation} but reads back ${live === undefined ? 'nothing' : `something else:\n${live}`}`,
      );
    }
  }

  /** The weights nginx holds now, in the file's format (undefined if it does not answer). */
  async readBack(): Promise<string | undefined> {
    try {
      const res = await fetch(`${this.admin}/weights`, {
        headers: this.adminHeaders,
        signal: AbortSignal.timeout(1_000),
      });
      return res.ok ? await res.text() : undefined;
    } catch {
      return undefined;
    }
  }
}

async function restore(file: string, previous: string | undefined): Promise<void> {
  if (previous === undefined) await rm(file, { force: true });
  else await writeAtomically(file, previous);
}
