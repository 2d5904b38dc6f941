import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NginxDriver, type Upstream } from '../src/integrations/nginx.js';
import { acceptingWorkers, procTable } from '../src/integrations/nginx-workers.js';
import { TestNginx } from './helpers/nginx-server.js';
import { freePort, waitFor } from './helpers/ports.js';
import { measureSplit } from './helpers/release.js';

// A real nginx. After a reload its old workers take new connections, with the old weights, until
// the master tells them to quit (100 ms later, longer on a busy machine): that is frozen here.
let ng: TestNginx;
let driver: NginxDriver;
let blue = 0;
let green = 0;

const web = (b: number, g: number): Upstream[] => [
  {
    name: 'fd_settle_web',
    servers: [
      { colour: 'blue', address: `127.0.0.1:${blue}`, weight: b },
      { colour: 'green', address: `127.0.0.1:${green}`, weight: g },
    ],
  },
];

beforeAll(async () => {
  blue = await freePort();
  green = await freePort();
  ng = new TestNginx();
  await ng.start(
    `    location / { proxy_pass http://fd_settle_web; }
  }
  server { listen 127.0.0.1:${blue}; location / { return 200 "blue"; } }
  server { listen 127.0.0.1:${green}; location / { return 200 "green"; } `,
    `upstream fd_settle_web { server 127.0.0.1:${blue}; }`,
  );
  driver = new NginxDriver({
    upstreamFile: ng.upstreamFile,
    testCommand: ng.testCommand,
    reloadCommand: ng.reloadCommand,
    statusListen: ng.statusListen,
  });
});

afterAll(() => ng?.destroy());

describe('nginx.driver reload, taking a server out of traffic (a rollback)', () => {
  it('returns only once no old worker can take a new connection, however late nginx tells them to quit', async () => {
    await driver.apply(web(50, 50));
    const master = Number(readFileSync(join(ng.prefix, 'nginx.pid'), 'utf8'));
    const old = await acceptingWorkers(procTable, master);
    expect(old.length).toBe(2);

    // As soon as the reloaded workers exist: the master stops (it has not told the old workers to
    // quit yet) and so do the old workers, so every probe meets a new worker. The old workers go
    // on at once when apply returns or after 300 ms; the master after 600 ms.
    const frozen = waitFor(async () => (await procTable.children(master)).length > old.length, {
      timeoutMs: 5_000,
      intervalMs: 1,
      what: 'the reloaded workers',
    }).then(() => {
      for (const pid of [master, ...old]) process.kill(pid, 'SIGSTOP');
    });
    const resume = (pids: number[]) => {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          /* exited once it quit */
        }
      }
    };
    const workersOn = setTimeout(() => resume(old), 300);
    const masterOn = setTimeout(() => resume([master]), 600);
    try {
      const applied = driver.apply(web(100, 0));
      await frozen;
      await applied;
      clearTimeout(workersOn);
      resume(old);
      // Every new connection now meets the new weights: green takes nothing.
      expect(await measureSplit(`http://127.0.0.1:${ng.port}/`, 40)).toEqual({
        blue: 40,
        green: 0,
        other: 0,
      });
    } finally {
      clearTimeout(workersOn);
      clearTimeout(masterOn);
      resume([master, ...old]);
    }
  });
});
