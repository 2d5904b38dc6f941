import { BED_UP_ENV, multinodeScript } from '../helpers/multinode.js';

// Brings the multi-node bed up before the first file; takes it down after the last only if it was
// not running before (someone's bed, e.g. the one a developer is using, is left as it was).
let wasUp = false;

export async function setup(): Promise<void> {
  wasUp = (await multinodeScript('status')).code === 0;
  const { code, output } = await multinodeScript('up');
  if (code !== 0) throw new Error(`scripts/multinode.sh up failed (${code}):\n${output.slice(-4000)}`);
  // The test files' ensureMultinode() then only describes the bed (workers inherit the env).
  process.env[BED_UP_ENV] = '1';
}

export async function teardown(): Promise<void> {
  if (wasUp) return;
  const { code, output } = await multinodeScript('down');
  if (code !== 0) throw new Error(`scripts/multinode.sh down failed (${code}):\n${output.slice(-4000)}`);
}
