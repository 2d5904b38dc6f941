import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Ports handed out by freePort. Test files run two at a time, each in its own process, and another
// run of the suite (CI beside a developer's run) may share the machine: asking the kernel for "any
// free port" lets two of them get the same one between the check and the bind, and then a suite talks
// to another suite's server. So each process claims a block of 1,000 ports for itself, machine-wide,
// with a lock file naming its pid (a dead owner's block is taken over), below the kernel's ephemeral
// range (32768-60999) where no outgoing connection lands, and never hands a port out twice.
const BLOCK = 1_000;
// 10000-27999 without 18000-18999: the fixed ports suites publish are 18080 and 28200 up.
const BLOCKS = Array.from({ length: 18 }, (_, i) => 10_000 + i * BLOCK).filter((b) => b !== 18_000);
const LOCKS = join(tmpdir(), 'flightdeck-test-ports');
let first: number | undefined;
let cursor = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ownerOf(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/**
 * Claims a free block for this process; its lock file goes when the process exits. A lock appears
 * whole (written aside, then linked into place, which fails if one is there), and a dead owner's is
 * moved aside before it is taken, then put back if it turned out not to be the dead one's.
 */
function claimBlock(): number {
  mkdirSync(LOCKS, { recursive: true });
  const mine = join(LOCKS, `.claim.${process.pid}`);
  writeFileSync(mine, String(process.pid));
  try {
    // Start where this vitest worker would (its pool id), so runs that do not overlap reuse the same.
    const pool = Number(process.env.VITEST_POOL_ID);
    const start = Number.isInteger(pool) && pool >= 1 ? pool - 1 : process.pid;
    for (let k = 0; k < BLOCKS.length; k++) {
      const block = BLOCKS[(start + k) % BLOCKS.length] as number;
      const lock = join(LOCKS, String(block));
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(mine, lock);
          process.once('exit', () => rmSync(lock, { force: true }));
          return block;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const owner = ownerOf(lock);
        if (owner === undefined) continue; // gone meanwhile: try again
        if (alive(owner)) break; // held: the next block
        const aside = join(LOCKS, `.aside.${process.pid}`);
        try {
          renameSync(lock, aside);
        } catch {
          continue; // someone else moved it
        }
        const moved = ownerOf(aside);
        if (moved !== owner && moved !== undefined && alive(moved)) {
          // A live claim made since the read: give it back.
          try {
            linkSync(aside, lock);
          } catch {
            // Claimed again meanwhile; that claim stands.
          }
          rmSync(aside, { force: true });
          break;
        }
        rmSync(aside, { force: true });
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw new Error(`freePort: every block of test ports in ${LOCKS} is held by a live process`);
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free loopback TCP port of this process's own block, never the same one twice. */
export async function freePort(): Promise<number> {
  first ??= claimBlock();
  while (cursor < BLOCK) {
    const port = first + cursor++;
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: all ${BLOCK} ports from ${first} are used`);
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`,
  );
}
