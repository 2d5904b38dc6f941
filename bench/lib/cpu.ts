/**
 * CPU time by process on this machine, from /proc: where a scenario's time goes when the machine,
 * not one process, is the limit (50 Swarm updates on two cores). Linux only; clock ticks of 10 ms.
 */
import { readdirSync, readFileSync } from 'node:fs';

interface Sample {
  comm: string;
  /** utime + stime, and the reaped children's cutime + cstime (short-lived runc and shims). */
  ticks: number;
}

const TICK_MS = 10;

/** A process's command name and the /proc/<pid>/stat fields after it (state is [0], utime [11]). */
export function procStat(pid: number): { comm: string; fields: string[] } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = stat.lastIndexOf(')');
  return { comm: stat.slice(stat.indexOf('(') + 1, close), fields: stat.slice(close + 2).split(' ') };
}

/** User + system CPU time of a process so far, in ms. */
export function cpuTimeMs(pid: number): number {
  const { fields } = procStat(pid);
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

function readAll(): Map<number, Sample> {
  const out = new Map<number, Sample>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const { comm, fields: f } = procStat(pid);
      // utime f[11], stime f[12], cutime f[13], cstime f[14].
      out.set(pid, { comm, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return out;
}

/**
 * Starts counting; `stop()` returns CPU ms per group over the interval. `groupOf` names a process's
 * group (e.g. "flightdeck" for its pid); by default the command name, with containerd's shims, runc
 * and container processes folded together. A process that exited before stop() is counted only
 * through its parent's reaped-children time.
 */
export function cpuByProcess(groupOf: (pid: number, comm: string) => string | undefined = () => undefined): {
  stop: () => Record<string, number>;
} {
  const before = readAll();
  return {
    stop: () => {
      const after = readAll();
      const totals: Record<string, number> = {};
      for (const [pid, s] of after) {
        const delta = s.ticks - (before.get(pid)?.comm === s.comm ? (before.get(pid)?.ticks ?? 0) : 0);
        if (delta <= 0) continue;
        const group = groupOf(pid, s.comm) ?? (pid === 1 ? 'init (reaped processes)' : defaultGroup(s.comm));
        totals[group] = (totals[group] ?? 0) + delta * TICK_MS;
      }
      return Object.fromEntries(Object.entries(totals).sort((a, b) => b[1] - a[1]));
    },
  };
}

function defaultGroup(comm: string): string {
  if (comm.startsWith('containerd-shim') || comm === 'runc' || comm.startsWith('runc:')) return 'shims+runc';
  if (comm === 'dockerd' || comm === 'containerd' || comm === 'redis-server') return comm;
  if (comm.startsWith('nginx')) return 'nginx';
  if (comm === 'httpd' || comm === 'busybox' || comm === 'sh') return 'containers';
  if (comm === 'docker') return 'docker CLI';
  if (/^(kworker|ksoftirqd|kdamond|rcu_|jbd2|migration|kswapd)/.test(comm)) return 'kernel threads';
  return 'other';
}
