// Freeze windows on the real release path: a deploy in a freeze is refused with when it ends, a lead
// can override with a reason, and a rollback always goes through.
import { addDays, format } from 'date-fns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/ports.js';
import { measureSplit, releaseIds, releases, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait } from './helpers/swarm.js';

const stack = new TestStack({ prefix: 'fdfrz', basePort: 32200 });
const names: string[] = [];
// A freeze of production from yesterday to the end of tomorrow (dates in the team's zone, give or
// take the hours between UTC and London: the window is wide enough either way).
const day = (n: number) => format(addDays(new Date(), n), 'yyyy-MM-dd');

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      const c = cfg as typeof cfg & Record<string, unknown>;
      // The checklist gate is tested on its own (test/checklists.test.ts): here it would refuse too.
      c.checklists = { gateEnvironments: [] };
      c.freezes = [
        {
          name: 'Quarter close',
          reason: 'finance closes the books',
          from: day(-1),
          until: day(1),
          environments: ['production'],
        },
        { name: 'Weekend', weekly: { from: 'sat 00:00', until: 'mon 00:00' }, environments: ['staging'] },
      ];
      delete cfg.environments.production?.services.web;
      (cfg.environments.production as Record<string, unknown>).requireApproval = false;
      Object.assign(cfg.release, { steps: [100], soak: ['1s'] });
    },
  });
  names.push(...(await createColourServices([stack.config.environments.production?.services.api as never])));
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

async function command(cmd: string, text: string, re: RegExp, user = 'U0DEV'): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.command(cmd, text, { user });
  return stack.answerTo(user, seen, re);
}

const prodUrl = () => `http://127.0.0.1:${stack.nginx.port}/production/api/colour`;

describe('a deploy freeze', () => {
  it('refuses a deploy with when the freeze ends, and shows it in help and status', async () => {
    const refused = await command('/deploy', 'api 1.1.0 to production', /frozen/);
    expect(refused).toMatch(
      /production is frozen \(Quarter close: finance closes the books\) until \w{3} \d+ \w{3} 00:00 Europe\/London, in \d+ (hours|days?)\./,
    );
    expect(await releases(stack).history('production', 'api', 5)).toHaveLength(0);
    expect((await measureSplit(prodUrl(), 10)).blue).toBe(10);

    // Help is answered in the acknowledgement itself.
    const before = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'help', { user: 'U0DEV' });
    const help = await waitFor(
      () =>
        stack.emulator
          .ephemeralsFor('U0DEV')
          .slice(before)
          .find((e) => e.text.includes('*/deploy*'))?.text,
      { what: 'the /deploy help' },
    );
    expect(help).toContain('❄️ production is frozen (Quarter close');
    expect(help).toMatch(/❄️ (next freeze of staging: Weekend, Sat|staging is frozen \(Weekend\))/);
    const status = await command('/deploy', 'status', /In flight/);
    expect(status).toMatch(/\*Freezes\*[^*]*❄️ production is frozen/);
  }, 120_000);

  it('a lead overrides with a reason; a rollback during the freeze goes through', async () => {
    const text = 'api 1.1.0 to production override sev1 fix, CFO agreed';
    const [id] = releaseIds(await command('/deploy', text, /releasing/, 'U0LEAD'));
    const r = await waitRelease(stack, id as string, (x) => x.status === 'completed', 'completed', 120_000);
    expect(r.override?.overrode).toEqual([expect.stringMatching(/^production is frozen \(Quarter close/)]);
    await waitProgress(stack, r.id, /Overridden by <@U0LEAD>\*: sev1 fix, CFO agreed/);
    expect((await measureSplit(prodUrl(), 10)).green).toBe(10);

    // Rollbacks never wait for a freeze.
    await stack.driver.command('/rollback', 'api production', { user: 'U0DEV' });
    await waitFor(
      () =>
        stack.emulator
          .channelMessages('C0RELEASES')
          .find((m) => /api in production: traffic 100% on blue/.test(m.text)),
      { timeoutMs: 60_000, what: 'the rollback of api in production' },
    );
    expect((await measureSplit(prodUrl(), 10)).blue).toBe(10);
  }, 240_000);
});
