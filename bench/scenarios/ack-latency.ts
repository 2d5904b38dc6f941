/** Scenario 1: 2,000 signed slash commands at 100 concurrent, flightdeck (web role) vs a Bolt app that only acks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SIGNING_SECRET } from '../../test/helpers/flightdeck-process.js';
import { freePort, waitFor } from '../../test/helpers/ports.js';
import { TestStack } from '../../test/helpers/stack.js';
import { SlackDriver } from '../../tools/slack-emulator/driver.js';
import { ms, type ScenarioResult, times } from '../lib/result.js';
import { inBatches, median, pct, round } from '../lib/stats.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** User + system CPU time of a process so far, in ms (Linux /proc, clock ticks of 10 ms). */
function cpuTimeMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The bare Bolt baseline as its own process, answering on `port`. */
export async function startBareBolt(apiUrl: string): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/bare-bolt.ts')], {
    env: { ...process.env, PORT: String(port), SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: apiUrl },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/slack/events`, { method: 'POST' })).status === 401, {
    what: 'the bare Bolt app',
  });
  return { url, proc };
}

export async function ackLatency(): Promise<ScenarioResult> {
  // The web role alone, as web replicas run: the ack path (parse, validate, authorise, ack, enqueue)
  // without workers answering on the same event loop, and without the answers landing in this
  // process (the emulator lives here, next to the driver that measures).
  const stack = await new TestStack({ prefix: 'fdbenchack', basePort: 30000 }).start({ roles: ['web'] });
  const bare = await startBareBolt(stack.emulator.apiUrl);
  try {
    stack.emulator.rateLimits = false; // the acks are measured, not the answers
    const fd = new SlackDriver(stack.emulator, stack.apps[0]?.url ?? '', SIGNING_SECRET);
    const base = new SlackDriver(stack.emulator, bare.url, SIGNING_SECRET);
    const run = (d: SlackDriver, n: number) => inBatches(n, 100, () => d.command('/deploy', 'status'));
    // Warm-up: a server runs for days, so measure it warm. flightdeck has far more code on its
    // path (zod, BullMQ, ioredis) for the JIT to compile; its first 1,000 acks cost ~2.5× the CPU.
    await run(fd, 1_000);
    await run(base, 1_000);
    const ours: number[] = [];
    const theirs: number[] = [];
    const cpuMs = { fd: 0, bare: 0 };
    const pids = { fd: stack.apps[0]?.pid ?? 0, bare: bare.proc.pid ?? 0 };
    let late = 0;
    // Side by side, in alternating rounds, so both see the same machine.
    for (let r = 0; r < 4; r++) {
      for (const [d, into, who] of [
        [fd, ours, 'fd'],
        [base, theirs, 'bare'],
      ] as const) {
        const cpu0 = cpuTimeMs(pids[who]);
        for (const a of await run(d, 500)) {
          if (a.timedOut || a.status !== 200) late += 1;
          into.push(a.ms);
        }
        cpuMs[who] += cpuTimeMs(pids[who]) - cpu0;
      }
    }
    const raw = {
      flightdeck: {
        p50: round(median(ours)),
        p99: round(pct(ours, 99)),
        max: round(Math.max(...ours)),
        n: ours.length,
      },
      bareBolt: {
        p50: round(median(theirs)),
        p99: round(pct(theirs, 99)),
        max: round(Math.max(...theirs)),
        n: theirs.length,
      },
      p50Ratio: round(median(ours) / median(theirs)),
      p99Ratio: round(pct(ours, 99) / pct(theirs, 99)),
      overSlackDeadline: late,
      /** CPU time of each server process per command (from /proc): the work behind the tail. */
      cpuMsPerCommand: {
        flightdeck: round(cpuMs.fd / ours.length, 3),
        bareBolt: round(cpuMs.bare / theirs.length, 3),
      },
    };
    return {
      id: 'ack',
      raw,
      rows: [
        {
          scenario: '1. Slash-command ack, 2,000 at 100 concurrent (web role)',
          flightdeck: `p50 ${ms(raw.flightdeck.p50)}, p99 ${ms(raw.flightdeck.p99)}`,
          baseline: `bare Bolt app: p50 ${ms(raw.bareBolt.p50)}, p99 ${ms(raw.bareBolt.p99)}`,
          ratio: `p99 ${times(raw.p99Ratio)} (p50 ${times(raw.p50Ratio)}); CPU per ack ${raw.cpuMsPerCommand.flightdeck} vs ${raw.cpuMsPerCommand.bareBolt} ms`,
          target: `p99 ≤ ×1.5; all far under 3 s (${late} late)`,
          met: raw.p99Ratio <= 1.5 && late === 0,
        },
      ],
    };
  } finally {
    bare.proc.kill('SIGTERM');
    await stack.stop();
  }
}
