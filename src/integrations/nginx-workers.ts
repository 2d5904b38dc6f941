import { readFile } from 'node:fs/promises';

/**
 * After `nginx -s reload` the old workers keep accepting new connections, with the old upstreams,
 * until the master tells them to quit (it first sleeps 100 ms, longer on a busy machine) and each
 * has run its event loop once more. No answer over HTTP can prove none is left, but the process
 * table can: a worker that took the quit signal is retitled "worker process is shutting down" and
 * closes its listening sockets at that same moment.
 */
export interface ProcessTable {
  /** The process's title (`/proc/<pid>/cmdline`), undefined once it has exited. */
  title(pid: number): Promise<string | undefined>;
  parent(pid: number): Promise<number | undefined>;
  children(pid: number): Promise<number[]>;
}

const WORKER = 'nginx: worker process';
const MASTER = 'nginx: master process';

/** This machine's process table, read from /proc (world-readable: no privilege needed). */
export const procTable: ProcessTable = {
  async title(pid) {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
    return raw?.replace(/\0+$/, '').replace(/\0/g, ' ');
  },
  async parent(pid) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : Number.NaN;
    return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
  },
  async children(pid) {
    const raw = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    return raw
      .split(' ')
      .filter((s) => s.trim() !== '')
      .map(Number);
  },
};

/** Whether `pid` is (still) an nginx master. */
export async function isMaster(table: ProcessTable, pid: number): Promise<boolean> {
  return (await table.title(pid))?.startsWith(MASTER) === true;
}

/** The nginx master of the worker that answered (its `$pid`), or undefined if it is not one here. */
export async function masterOf(table: ProcessTable, workerPid: number): Promise<number | undefined> {
  if (!(await table.title(workerPid))?.startsWith(WORKER)) return undefined;
  const master = await table.parent(workerPid);
  if (master === undefined || !(await isMaster(table, master))) return undefined;
  return master;
}

/** The master's workers that still accept connections (not shutting down, not cache processes). */
export async function acceptingWorkers(table: ProcessTable, master: number): Promise<number[]> {
  const kids = await table.children(master);
  const titles = await Promise.all(kids.map((pid) => table.title(pid)));
  return kids.filter((_, i) => titles[i] === WORKER);
}

/** Those of `workers` that still accept connections: started, not yet told to quit. */
export async function stillAccepting(table: ProcessTable, workers: number[]): Promise<number[]> {
  const titles = await Promise.all(workers.map((pid) => table.title(pid)));
  return workers.filter((_, i) => titles[i] === WORKER);
}
