// Promotion through the pipeline on real Swarm services, nginx and Redis, Slack through the emulator:
// a version enters production only after it completed in staging and was not rolled back there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { waitFor } from './helpers/ports.js';
import { measureSplit, releaseIds, releases, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait } from './helpers/swarm.js';

const stack = new TestStack({ prefix: 'fdpipe', basePort: 32000 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      const c = cfg as typeof cfg & Record<string, unknown>;
      // The checklist gate is tested on its own (test/checklists.test.ts): here it would refuse too.
      c.checklists = { gateEnvironments: [] };
      c.pipeline = ['staging', 'production'];
      // One service each keeps the Swarm small; one 100% step completes on its own after a short soak.
      for (const env of Object.values(cfg.environments)) delete env.services.web;
      (cfg.environments.production as Record<string, unknown>).requireApproval = false;
      Object.assign(cfg.release, { steps: [100], soak: ['1s'] });
    },
  });
  names.push(
    ...(await createColourServices([
      stack.config.environments.staging?.services.api as never,
      stack.config.environments.production?.services.api as never,
    ])),
  );
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const url = (env: string) => `http://127.0.0.1:${stack.nginx.port}/${env}/api/colour`;

async function command(cmd: string, text: string, re: RegExp, user = 'U0DEV'): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.command(cmd, text, { user });
  return stack.answerTo(user, seen, re);
}

/** U0LEAD's App Home as the emulator holds it, once it matches. */
async function home(re: RegExp): Promise<string> {
  let text = '';
  return waitFor(
    () => {
      const view = stack.emulator.homeViews.get('U0LEAD') as { blocks?: unknown[] } | undefined;
      text = view ? renderBlocks(view.blocks as never, '') : '';
      return re.test(text) ? text : undefined;
    },
    { timeoutMs: 30_000, what: `App Home to match ${re}` },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nApp Home now:\n${text}`);
  });
}

async function released(text: string, user = 'U0DEV') {
  const [id] = releaseIds(await command('/deploy', text, /releasing/, user));
  return waitRelease(stack, id as string, (r) => r.status === 'completed', 'completed', 120_000);
}

describe('a version goes staging → production', () => {
  it('is refused in production until it completed in staging, and changes nothing meanwhile', async () => {
    // A lead has App Home open: it follows the release without being opened again.
    await stack.driver.event({ type: 'app_home_opened', user: 'U0LEAD', channel: 'D0LEAD', tab: 'home' });
    await home(/Pipeline: what runs where/);
    const refused = await command('/deploy', 'api 1.1.0 to production', /never completed/);
    expect(refused).toContain('api: 1.1.0 never completed in staging');
    expect(refused).toContain(
      'A lead can deploy anyway: `/deploy api 1.1.0 to production override &lt;reason&gt;`',
    );
    expect(await releases(stack).history('production', 'api', 5)).toHaveLength(0);
    expect((await measureSplit(url('production'), 10)).blue).toBe(10);

    await released('api 1.1.0 to staging');
    const prod = await released('api 1.1.0 to production');
    expect(prod.trail).toMatch(/^staging ✅ \d+ seconds? ago$/);
    await waitProgress(stack, prod.id, /Pipeline: staging ✅/);
    expect((await measureSplit(url('production'), 10)).green).toBe(10);

    const board = await home(/\*api\* {2}staging `1\.1\.0` \d+ seconds? → production `1\.1\.0` \d+ seconds?/);
    expect(board).toContain('Releases in flight (0)');

    const history = await command('/deploy', 'history api in production', /\*api in production\*/);
    expect(history).toMatch(/staging ✅ \d+ seconds? ago · production ✅ \d+ seconds? ago/);
  }, 300_000);

  it('a version rolled back in staging may not be promoted; a lead overrides, audited and shown', async () => {
    await released('api 1.2.0 to staging');
    await stack.driver.command('/rollback', 'api staging', { user: 'U0DEV' });
    await waitFor(
      () =>
        stack.emulator
          .channelMessages('C0RELEASES')
          .find((m) => /api in staging: traffic 100% on green/.test(m.text)),
      { timeoutMs: 60_000, what: 'the rollback of api in staging' },
    );
    const refused = await command('/deploy', 'api 1.2.0 to production', /rolled back/);
    expect(refused).toMatch(
      /api: 1\.2\.0 was rolled back in staging \d+ seconds? ago by <@U0DEV>; it runs 1\.1\.0/,
    );

    // Refused where it is acknowledged, before anything is queued.
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.2.0 to production override CAB-7 hotfix', { user: 'U0DEV' });
    const notLead = await waitFor(
      () =>
        stack.emulator
          .ephemeralsFor('U0DEV')
          .slice(seen)
          .find((e) => /only leads/.test(e.text))?.text,
      { what: 'the refusal of a non-lead override' },
    );
    expect(notLead).toContain('only leads can override');
    const text = 'api 1.2.0 to production override CAB-7 hotfix';
    const r = await released(text, 'U0LEAD');
    expect(r.override).toEqual({
      by: 'U0LEAD',
      reason: 'CAB-7 hotfix',
      overrode: [expect.stringMatching(/^api: 1\.2\.0 was rolled back in staging/)],
    });
    const message = await waitProgress(stack, r.id, /Overridden by <@U0LEAD>/);
    expect(message).toContain('CAB-7 hotfix');
    expect(message).toMatch(/• api: 1\.2\.0 was rolled back in staging/);
    const audit = await stack.auditFor(text);
    expect(audit.map((a) => [a.userId, a.outcome])).toEqual(
      expect.arrayContaining([
        ['U0DEV', 'refused'],
        ['U0LEAD', 'done'],
      ]),
    );
  }, 300_000);
});
