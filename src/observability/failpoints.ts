/**
 * Crash points for the fault suite: FLIGHTDECK_FAILPOINTS=after:shift@10,before:finalize makes the
 * process SIGKILL itself at those points, to prove a release survives a crash anywhere. Read once at
 * start-up; empty (the default) costs one Set lookup.
 */
const points = new Set(
  (process.env.FLIGHTDECK_FAILPOINTS ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);

export function failpoint(...names: string[]): void {
  if (points.size === 0) return;
  for (const name of names) {
    if (points.has(name)) {
      process.stderr.write(`failpoint ${name}: killing flightdeck (pid ${process.pid})\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  }
}
