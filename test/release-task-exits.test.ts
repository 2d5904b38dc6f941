import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployRelease, measureSplit, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createService, docker, removeServicesAndWait, waitServing } from './helpers/swarm.js';

// A release whose new image's process exits at once (exit code 3).
const EXITS = 'flightdeck/testapp:exit3';
const stack = new TestStack({ prefix: 'fdexit', basePort: 31400 });
const names: string[] = [];

/** As scripts/stack.sh builds the test images: a busybox-only root, made with `docker import`. */
function buildExitingImage(): void {
  const busybox = existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox';
  execFileSync('bash', [
    '-euc',
    `docker image inspect ${EXITS} >/dev/null 2>&1 && exit 0
     dir=$(mktemp -d); mkdir -p "$dir/bin"; cp ${busybox} "$dir/bin/busybox"; ln -s busybox "$dir/bin/sh"
     printf '#!/bin/sh\\necho "testapp exit3: giving up" >&2\\nexit 3\\n' >"$dir/bin/start"; chmod +x "$dir/bin/start"
     tar -C "$dir" -c . | docker import --change 'CMD ["/bin/start"]' - ${EXITS} >/dev/null; rm -rf "$dir"`,
  ]);
}

beforeAll(async () => {
  buildExitingImage();
  await stack.start();
  const staging = stack.config.environments.staging?.services;
  const api = staging?.api;
  const web = staging?.web;
  if (!api || !web) throw new Error('no staging api/web');
  for (const svc of [api, web])
    for (const colour of ['blue', 'green'] as const) {
      const name = svc[colour].swarmService;
      await createService({
        name,
        colour,
        port: Number(svc[colour].address.split(':')[1]),
        image: 'flightdeck/testapp:1.0.0',
      });
      names.push(name);
    }
  // api: Swarm rolls a failed update back by itself (UpdateConfig.FailureAction: rollback); web keeps
  // the test app's usual spec, where Swarm pauses a failed update (FailureAction: pause).
  for (const colour of ['blue', 'green'] as const) {
    const service = docker.getService(api[colour].swarmService);
    const { Version, Spec } = await service.inspect();
    Spec.UpdateConfig = { ...Spec.UpdateConfig, FailureAction: 'rollback' };
    await service.update({ _query: { version: Version.Index }, _body: Spec } as never);
  }
  await Promise.all(
    [api, web].flatMap((s) => [s.blue, s.green]).map((c) => waitServing(Number(c.address.split(':')[1]))),
  );
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const url = (svc: string) => `http://127.0.0.1:${stack.nginx.port}/staging/${svc}/colour`;

describe('a release whose new tasks exit', () => {
  it('says the tasks exited, with Swarm’s error and exit code, and that Swarm rolled the update back', async () => {
    const id = await deployRelease(stack, 'api exit3');
    const r = await waitRelease(stack, id, (x) => x.status === 'rolled_back', 'rolled back', 120_000);
    expect(r.outcome).not.toMatch(/changed outside/);
    expect(r.outcome).toMatch(
      /fdexit-staging-api-green did not converge: the new task exited with code 3 \(task: non-zero exit \(3\)\), and Swarm rolled the update back to flightdeck\/testapp:1\.0\.0 \((rollback_started: update rolled back due to failure or early termination of task \w+|rollback_completed: rollback completed)\)/,
    );
    await waitProgress(
      stack,
      id,
      /❌ Swarm converges on flightdeck\/testapp:exit3 — fdexit-staging-api-green did not converge: the new task exited with code 3/,
    );
    expect(r.steps.find((s) => s.kind === 'shift')?.status).toBe('skipped');
    expect(await measureSplit(url('api'), 20)).toEqual({ blue: 20, green: 0, other: 0 });
  }, 150_000);

  it('says the tasks exited when Swarm paused the update instead', async () => {
    const id = await deployRelease(stack, 'web exit3');
    const r = await waitRelease(stack, id, (x) => x.status === 'rolled_back', 'rolled back', 120_000);
    expect(r.outcome).toMatch(
      /fdexit-staging-web-green did not converge: the new task exited with code 3 \(task: non-zero exit \(3\)\), and Swarm paused the update \(paused: update paused due to failure or early termination of task \w+\)/,
    );
    expect(await measureSplit(url('web'), 20)).toEqual({ blue: 20, green: 0, other: 0 });
  }, 150_000);
});
