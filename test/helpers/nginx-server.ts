import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

/** A real nginx master of the test's own: its own prefix, a loopback port, an upstream include file. */
/** Debian's nginx Lua module and the NDK it needs, for `nginx.driver: lua` (set as `modules`). */
export const LUA_MODULES = [
  '/usr/lib/nginx/modules/ndk_http_module.so',
  '/usr/lib/nginx/modules/ngx_http_lua_module.so',
];

export class TestNginx {
  readonly prefix = mkdtempSync(join(tmpdir(), 'fd-nginx-'));
  port = 0;

  get upstreamFile(): string {
    return join(this.prefix, 'conf.d', 'flightdeck-upstreams.conf');
  }
  get probeUrl(): string {
    return `http://127.0.0.1:${this.port}/flightdeck-nginx-health`;
  }
  /** `nginx` with this instance's prefix, config and error log; then the action. */
  private argv(...action: string[]): string[] {
    return [
      'nginx',
      '-p',
      this.prefix,
      '-c',
      'nginx.conf',
      '-e',
      join(this.prefix, 'logs', 'error.log'),
      ...action,
    ];
  }
  /** argv for `nginx -t` and `nginx -s reload` against this instance. */
  get testCommand(): string[] {
    return this.argv('-t', '-q');
  }
  get reloadCommand(): string[] {
    return this.argv('-s', 'reload');
  }

  statusListen = '';
  /** `notice` also logs each reload ("reconfiguring"), which reloads() counts. Set before start(). */
  logLevel: 'warn' | 'notice' = 'warn';

  /** Dynamic modules to load (absolute paths), e.g. nginx's Lua module. Set before start(). */
  modules: string[] = [];

  /** Reloads the nginx master has received since start (needs logLevel 'notice'). */
  reloads(): number {
    const log = readFileSync(join(this.prefix, 'logs', 'error.log'), 'utf8');
    return log.split('\n').filter((l) => /\] \d+#\d+: reconfiguring$/.test(l)).length;
  }

  /** `upstreams` is the initial managed file (nginx refuses proxy_pass to an undefined upstream). */
  async start(serverBlocks = '', upstreams = ''): Promise<this> {
    this.port = await freePort();
    this.statusListen = `127.0.0.1:${await freePort()}`;
    const p = this.prefix;
    for (const d of ['logs', 'temp', 'conf.d']) mkdirSync(join(p, d), { recursive: true });
    // Hold the status port from the start, so no other test process picks it as a "free" port.
    writeFileSync(
      this.upstreamFile,
      `${upstreams}\nserver {\n    listen ${this.statusListen};\n    location = /flightdeck/generation { return 200 "initial"; }\n}\n`,
    );
    writeFileSync(
      join(p, 'nginx.conf'),
      `${this.modules.map((m) => `load_module ${m};\n`).join('')}worker_processes 2;
pid ${p}/nginx.pid;
error_log ${p}/logs/error.log ${this.logLevel};
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${p}/temp/body;
  proxy_temp_path ${p}/temp/proxy;
  fastcgi_temp_path ${p}/temp/fastcgi;
  uwsgi_temp_path ${p}/temp/uwsgi;
  scgi_temp_path ${p}/temp/scgi;
  include ${p}/conf.d/*.conf;
  server {
    listen 127.0.0.1:${this.port};
    location = /flightdeck-nginx-health { return 200 "ok\\n"; }
${serverBlocks}
  }
}
`,
    );
    execFileSync('nginx', this.argv().slice(1));
    await waitFor(async () => (await fetch(this.probeUrl)).ok, { what: 'nginx' });
    return this;
  }

  stop(): void {
    try {
      execFileSync('nginx', this.argv('-s', 'stop').slice(1), {
        stdio: 'ignore',
      });
    } catch {
      /* already stopped */
    }
  }

  /** Stops the master and starts a new one on the same files (a crash or host reboot, not a reload). */
  async restart(): Promise<void> {
    this.stop();
    await waitFor(
      () =>
        fetch(this.probeUrl).then(
          () => false,
          () => true,
        ),
      { what: 'nginx to stop' },
    );
    execFileSync('nginx', this.argv().slice(1));
    await waitFor(async () => (await fetch(this.probeUrl)).ok, { what: 'nginx' });
  }

  destroy(): void {
    this.stop();
    rmSync(this.prefix, { recursive: true, force: true });
  }
}
