import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/ports.js';

const ROOT = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'fd-demo-'));
let env: Record<string, string> = {};

afterAll(() => {
  spawnSync('bash', [join(ROOT, 'scripts/stack.sh'), 'down'], { env: { ...process.env, ...env } });
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run demo (the README’s first command)', () => {
  it('starts the local stack and flightdeck on embedded defaults and shows a release and a rollback', async () => {
    env = {
      FLIGHTDECK_STACK_DIR: dir,
      STACK_REDIS_PORT: String(await freePort()),
      STACK_NGINX_PORT: String(await freePort()),
      STACK_ALERTMANAGER_PORT: String(await freePort()),
      STACK_PROMETHEUS_PORT: String(await freePort()),
      PORT: String(await freePort()),
      STACK_DEMO_HTTP_PORT: String(await freePort()),
      STACK_DEMO_METRICS_PORT: String(await freePort()),
    };
    env.FLIGHTDECK_PORT = env.PORT as string;
    env.ALERTMANAGER_WEBHOOK_TOKEN = 'demo-test-webhook-token';
    const up = spawnSync('bash', [join(ROOT, 'scripts/stack.sh'), 'demo'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(up.status, up.stderr).toBe(0);
    const out = await new Promise<string>((resolvePromise, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/demo.ts'), '--once'], {
        cwd: ROOT,
        env: { ...process.env, ...env, REDIS_URL: `redis://127.0.0.1:${env.STACK_REDIS_PORT}` },
      });
      let text = '';
      p.stdout.on('data', (d: Buffer) => {
        text += d.toString();
      });
      p.stderr.on('data', (d: Buffer) => {
        text += d.toString();
      });
      p.on('exit', (code) =>
        code === 0 ? resolvePromise(text) : reject(new Error(`demo exited ${code}:\n${text}`)),
      );
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the terminal's colour codes (ESC).
    const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
    expect(plain).toContain('@dev in #releases: /deploy help');
    expect(plain).toContain('The percentage must be a whole number from 0 to 100, got `150`');
    expect(plain).toContain('you are not a deployer for *production*');
    // A real release through Swarm and nginx, shown as it goes, then rolled back.
    // Requests through nginx during each soak: none fails (the demo's nginx.driver is lua, so no
    // reload happens), and the 10% step sends about a tenth to green.
    const soaks = [...plain.matchAll(/100 requests through nginx to \/staging\/api\/: ([^\n)]*)/g)].map(
      (m) => m[1],
    );
    expect(soaks.length).toBeGreaterThanOrEqual(3);
    for (const s of soaks) expect(s).toMatch(/· 0 failed$/);
    const green10 = Number(/green (\d+)/.exec(soaks[0] ?? '')?.[1] ?? 0);
    expect(green10).toBeGreaterThanOrEqual(5);
    expect(green10).toBeLessThanOrEqual(20);
    expect(plain).toContain('✅ Released: *api* `1.1.0` to *staging* (blue → green)');
    expect(plain).toMatch(
      /api in staging: traffic 100% on blue \(flightdeck\/testapp:1\.0\.0\) in \d+\.\d+ s/,
    );
    expect(plain).toContain('through nginx now: blue 100 · 0 failed');
    // A compare gate fails a bad canary (web's green at 6% errors against blue's 0.5%), with its chart.
    expect(plain).toMatch(
      /✗ error rate: green [\d.]+% of \d+ vs blue 0\.500% of \d+ · p=[\d.e-]+ one-sided (z-test|Fisher exact test)/,
    );
    expect(plain).toMatch(
      /📈 error rate per step \(%\) \(bar chart\)\n\s+green \(canary\): 10% [\d.]+\n\s+blue \(stable\): 10% 0\.5/,
    );
    expect(plain).toContain('↩️ Rolled back: *web* `1.1.0` to *staging* (blue → green)');
    // An alert through the real Alertmanager: acknowledged, silenced and resolved in place.
    expect(plain).toMatch(/#oncall flightdeck: \*🔴 CRITICAL · HighLatency\* — firing/);
    expect(plain).toContain('👀 Acknowledged by <@U0ONCALL>');
    expect(plain).toMatch(
      /Alertmanager now has \d+ active silence\(s\), created by oncall \(U0ONCALL\) via flightdeck/,
    );
    expect(plain).toMatch(/#oncall flightdeck \(edited\): \*✅ CRITICAL · HighLatency\* — resolved after/);
    // The rollout: phases walked by ticking from Slack; the gate stops production, then opens.
    expect(plain).toContain("⏸️ The calendar says phase 3, but phase 1's checklist is not complete");
    expect(plain).toContain('🤖 ✅ Health endpoints answering — 2/2: api/blue healthy, web/blue healthy');
    expect(plain).toContain('@lena in #releases: clicked ☑ rollback-tested');
    expect(plain).toMatch(/production deploys wait: the pre-deployment checklist is not complete \(1\/3\)/);
    // The pipeline: production refuses what was rolled back in staging, takes it once it completed
    // there again; the freeze holds it until a lead overrides, on the record.
    expect(plain).toMatch(
      /api: 1\.1\.0 was rolled back in staging \d+ seconds? ago by <@U0DEV>; it runs 1\.0\.0/,
    );
    expect(plain).toMatch(
      /production is frozen \(Quarter close: finance is closing the books\) until .* Europe\/London, in \d+ hours?\./,
    );
    expect(plain).toMatch(
      /Pipeline: staging ✅ \d+ seconds? ago\n\s+🔓 \*Overridden by <@U0LEAD>\*: CAB-42: fix for the checkout outage/,
    );
    expect(plain).toMatch(/api 1\.1\.0 to production waits for a lead other than you to approve/);
    expect(plain).toMatch(/Phase 3 Production deployment .* 3\/3 ◀ now/);
    expect(plain).toContain('## 📋 Post-deployment checklist');
  }, 240_000);
});
