import { describe, expect, it } from 'vitest';
import {
  acceptingWorkers,
  masterOf,
  type ProcessTable,
  stillAccepting,
} from '../../src/integrations/nginx-workers.js';

/** A process table of pid → [parent, title]. */
function table(procs: Record<number, [number, string]>): ProcessTable {
  return {
    title: async (pid) => procs[pid]?.[1],
    parent: async (pid) => procs[pid]?.[0],
    children: async (pid) =>
      Object.entries(procs)
        .filter(([, [ppid]]) => ppid === pid)
        .map(([p]) => Number(p)),
  };
}

const nginx = table({
  10: [1, 'nginx: master process nginx -c /etc/nginx/nginx.conf'],
  11: [10, 'nginx: worker process is shutting down'],
  12: [10, 'nginx: worker process'],
  13: [10, 'nginx: worker process'],
  14: [10, 'nginx: cache manager process'],
  20: [1, 'node flightdeck'],
  21: [20, 'nginx: worker process'],
});

describe('the nginx workers that still take new connections', () => {
  it('finds nginx’s master from the pid of the worker that answered, and nothing else', async () => {
    expect(await masterOf(nginx, 12)).toBe(10);
    // Not a worker, a worker whose parent is no nginx master, a pid that has exited.
    expect(await masterOf(nginx, 20)).toBeUndefined();
    expect(await masterOf(nginx, 21)).toBeUndefined();
    expect(await masterOf(nginx, 99)).toBeUndefined();
  });

  it('counts workers that accept, not those shutting down or the cache manager', async () => {
    expect(await acceptingWorkers(nginx, 10)).toEqual([12, 13]);
  });

  it('of the workers noted before a reload, keeps those not yet told to quit', async () => {
    expect(await stillAccepting(nginx, [11, 12, 99])).toEqual([12]);
  });
});
