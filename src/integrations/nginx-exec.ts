import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';

/** Output kept in an error: nginx puts the reason on its last lines. */
const tail = (text: string) => text.trim().split('\n').slice(-3).join(' ');

export interface NginxTask {
  /** e.g. flightdeck_nginx.1 */
  name: string;
  containerId: string;
  nodeId: string;
}

export interface ExecResult {
  exitCode: number;
  output: string;
}

/**
 * Runs nginx's test and reload commands inside every running task of nginx's Swarm service,
 * through the Docker API (exec): a worker in its own container has no nginx binary and cannot
 * signal an nginx in another PID namespace. argv only, never a shell. Each task must pass: a
 * reload that reached some tasks but not all is reported as a failure, naming the task.
 */
export class SwarmExecRunner {
  private nodeId?: Promise<string>;

  constructor(
    private readonly docker: Docker,
    private readonly swarmService: string,
    private readonly timeoutMs = 15_000,
  ) {}

  /** Same shape as runArgv, so the nginx drivers take it unchanged. */
  readonly run = async (argv: string[]): Promise<void> => {
    if (argv.length === 0) throw new Error('empty command');
    const tasks = await this.tasks();
    // Test (or reload) every task before reporting, so the message names each one that failed.
    const results = await Promise.all(
      tasks.map(async (t) => ({ task: t, result: await this.exec(t, argv).catch(asFailure) })),
    );
    const failed = results.filter((r) => r.result.exitCode !== 0);
    if (failed.length > 0) {
      throw new Error(
        failed
          .map(
            ({ task, result }) =>
              `\`${argv.join(' ')}\` in ${task.name} ${result.exitCode < 0 ? 'could not run' : `exited ${result.exitCode}`}: ${tail(result.output) || 'no output'}`,
          )
          .join('; '),
      );
    }
  };

  /** The running tasks of the service, all on this worker's node (exec reaches local containers only). */
  async tasks(): Promise<NginxTask[]> {
    const [list, own] = await Promise.all([
      this.docker
        .listTasks({ filters: { service: [this.swarmService], 'desired-state': ['running'] } })
        .catch((err: Error & { statusCode?: number }) => {
          if (err.statusCode !== 404) throw err;
          throw new Error(`nginx service ${this.swarmService} does not exist (nginx.exec.swarmService)`);
        }) as Promise<RawTask[]>,
      this.ownNode(),
    ]);
    const running = list.filter(
      (t) => t.Status?.State === 'running' && t.Status.ContainerStatus?.ContainerID,
    );
    if (running.length === 0) {
      throw new Error(`nginx service ${this.swarmService} has no running task to run nginx in`);
    }
    const tasks = running.map((t) => ({
      name: `${this.swarmService}.${t.Slot ?? t.NodeID}`,
      containerId: t.Status?.ContainerStatus?.ContainerID as string,
      nodeId: t.NodeID,
    }));
    const elsewhere = tasks.filter((t) => t.nodeId !== own);
    if (elsewhere.length > 0) {
      throw new Error(
        `${elsewhere.map((t) => t.name).join(', ')} of ${this.swarmService} run on another node than this worker's Docker engine; ` +
          'place the nginx service and the workers on the same node (docs/install.md)',
      );
    }
    return tasks;
  }

  /** One command in one task's container: its exit code and combined output. */
  async exec(task: NginxTask, argv: string[]): Promise<ExecResult> {
    const container = this.docker.getContainer(task.containerId);
    const exec = await container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out = new PassThrough();
    let output = '';
    out.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    this.docker.modem.demuxStream(stream, out, out);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new Error(`no answer from ${task.name} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    // The stream ends as the process exits; the engine may record the exit code a moment later.
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const info = await exec.inspect();
      if (!info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode, output };
      if (Date.now() > deadline)
        throw new Error(`${task.name}: exec still running after ${this.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private ownNode(): Promise<string> {
    this.nodeId ??= this.docker.info().then((info: { Swarm?: { NodeID?: string } }) => {
      const id = info.Swarm?.NodeID;
      if (!id)
        throw new Error('this Docker engine is not a Swarm node, so it cannot run nginx in a Swarm service');
      return id;
    });
    // A failed lookup (engine restarting) is retried on the next call.
    this.nodeId.catch(() => {
      this.nodeId = undefined;
    });
    return this.nodeId;
  }
}

interface RawTask {
  NodeID: string;
  Slot?: number;
  Status?: { State?: string; ContainerStatus?: { ContainerID?: string } };
}

function asFailure(err: Error): ExecResult {
  return { exitCode: -1, output: err.message };
}
