// One set of infrastructure per environment: the docker, nginx and prometheus keys (top level and
// per environment), DOCKER_HOST from the process environment, which environment uses which
// endpoint, how /readyz names them, and how an endpoint becomes dockerode's options.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  DEFAULT_DOCKER_ENDPOINT,
  type DockerEndpoint,
  dockerDownMessage,
  dockerEndpointOf,
  endpointKey,
  nginxGroups,
  nginxOf,
  prometheusOf,
  readinessParts,
} from '../../src/config/infrastructure.js';
import { type ConfigError, dockerFromEnv, loadConfig } from '../../src/config/load-config.js';
import { dockerOptions } from '../../src/integrations/swarm.js';
import { problemsOf, type RawConfig, rawConfig, unitConfig } from './helpers.js';

const otherNginx = {
  upstreamFile: '/etc/nginx/production/upstreams.conf',
  probeUrl: 'http://10.0.2.1:8080/',
};

describe('docker: where the Docker Engine API of a Swarm manager answers', () => {
  const endpoint = (docker: unknown): DockerEndpoint | undefined =>
    unitConfig((raw) => {
      raw.docker = docker;
    }).docker;

  it('keeps socketPath working, and without a docker block leaves the default to the environment', () => {
    expect(endpoint({ socketPath: '/run/docker.sock' })).toEqual({
      transport: 'unix',
      host: 'unix:///run/docker.sock',
      socketPath: '/run/docker.sock',
    });
    expect(endpoint({})).toEqual(DEFAULT_DOCKER_ENDPOINT);
    expect(unitConfig().docker).toBeUndefined();
    expect(dockerEndpointOf(unitConfig(), 'staging')).toEqual(DEFAULT_DOCKER_ENDPOINT);
  });

  it('takes host as unix:///path or tcp://host:port', () => {
    expect(endpoint({ host: 'unix:///var/run/docker.sock' })).toEqual(DEFAULT_DOCKER_ENDPOINT);
    expect(
      endpoint({ host: 'tcp://manager-1.internal:2376', tls: { certPath: '/run/secrets/docker' } }),
    ).toEqual({
      transport: 'tcp',
      host: 'tcp://manager-1.internal:2376',
      hostname: 'manager-1.internal',
      port: 2376,
      tls: {
        certPath: '/run/secrets/docker',
        caFile: '/run/secrets/docker/ca.pem',
        certFile: '/run/secrets/docker/cert.pem',
        keyFile: '/run/secrets/docker/key.pem',
        verify: true,
      },
    });
    expect(
      endpoint({
        host: 'tcp://10.0.0.5:2376',
        tls: { caFile: '/tls/ca.pem', certFile: '/tls/c.pem', keyFile: '/tls/k.pem', verify: false },
      }),
    ).toMatchObject({
      tls: { caFile: '/tls/ca.pem', certFile: '/tls/c.pem', keyFile: '/tls/k.pem', verify: false },
    });
    expect(endpoint({ host: 'tcp://10.0.0.5:2375', tls: false })).toMatchObject({ port: 2375, tls: false });
  });

  it('refuses plain tcp unless tls: false says so, and every other mistake, naming the key', () => {
    const problems = (docker: unknown) =>
      problemsOf((raw) => {
        raw.docker = docker;
      });
    expect(problems({ host: 'tcp://10.0.0.5:2376' })).toEqual([
      'docker.tls: is required with tcp://10.0.0.5:2376: give tls.certPath (a directory with ca.pem, cert.pem, key.pem) or tls.caFile/certFile/keyFile, or write tls: false to accept a Docker API without encryption or authentication',
    ]);
    expect(problems({ host: 'tcp://10.0.0.5', tls: false })).toEqual([
      'docker.host: must name a port, e.g. tcp://manager-1.example.com:2376 (got "tcp://10.0.0.5")',
    ]);
    expect(problems({ host: 'ssh://admin@manager-1' })).toEqual([
      'docker.host: ssh:// is not supported: use unix:///path/to/docker.sock, or tcp://host:port with TLS (got "ssh://admin@manager-1")',
    ]);
    expect(problems({ host: '/var/run/docker.sock' })).toEqual([
      'docker.host: must be unix:///path/to/docker.sock or tcp://host:port (got "/var/run/docker.sock")',
    ]);
    expect(problems({ host: 'unix:///a.sock', socketPath: '/b.sock' })).toEqual([
      'docker.socketPath: and host are both set; keep one (socketPath: /b.sock is host: unix:///b.sock)',
    ]);
    expect(problems({ host: 'unix:///a.sock', tls: { certPath: '/certs' } })).toEqual([
      'docker.tls: applies to tcp:// hosts only (unix:///a.sock is a local socket)',
    ]);
    expect(problems({ host: 'tcp://h:2376', tls: { certPath: '/certs', caFile: '/ca.pem' } })).toEqual([
      'docker.tls.certPath: and caFile/certFile/keyFile are both set; keep one (certPath means its ca.pem, cert.pem and key.pem)',
    ]);
    expect(problems({ host: 'tcp://h:2376', tls: { certFile: '/c.pem' } })).toEqual([
      'docker.tls.keyFile: is required with certFile (the client certificate and its key go together)',
    ]);
    expect(problems({ host: 'tcp://h:2376', tls: true })).toEqual([
      'docker.tls: must be false, or a mapping with certPath or caFile/certFile/keyFile (and verify), got true',
    ]);
    expect(problems({ host: 'tcp://h:2376', tls: { certpath: '/c' } })).toEqual([
      'docker.tls: unknown key "certpath" (check the spelling against docs/configuration.md)',
    ]);
    expect(problems({ host: 'tcp://h:2376', tls: { caFile: 'ca.pem' } })).toEqual([
      'docker.tls.caFile: must be an absolute path, got "ca.pem"',
    ]);
  });

  it('validates an environment’s own docker block the same way, at its own path', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.production.docker = { host: 'tcp://10.0.2.5:2376' };
      }),
    ).toEqual([
      expect.stringMatching(
        /^environments\.production\.docker\.tls: is required with tcp:\/\/10\.0\.2\.5:2376/,
      ),
    ]);
  });
});

describe('each environment’s own infrastructure, the top level’s otherwise', () => {
  const cfg = unitConfig((raw) => {
    raw.docker = { host: 'unix:///run/docker.sock' };
    raw.prometheus = { url: 'http://prometheus:9090' };
    raw.environments.production.docker = { host: 'tcp://10.0.2.5:2376', tls: { certPath: '/certs/prod' } };
    raw.environments.production.nginx = otherNginx;
    raw.environments.production.prometheus = { url: 'http://prometheus.prod:9090' };
  });

  it('maps each environment to its endpoint, nginx and Prometheus', () => {
    expect(dockerEndpointOf(cfg, 'staging').host).toBe('unix:///run/docker.sock');
    expect(dockerEndpointOf(cfg, 'production').host).toBe('tcp://10.0.2.5:2376');
    expect(nginxOf(cfg, 'staging')).toBe(cfg.nginx);
    expect(nginxOf(cfg, 'production')).toMatchObject({
      ...otherNginx,
      driver: 'reload',
      upstreamPrefix: 'flightdeck',
    });
    expect(prometheusOf(cfg, 'staging')).toBe('http://prometheus:9090');
    expect(prometheusOf(cfg, 'production')).toBe('http://prometheus.prod:9090');
    // Checklist queries name no environment: the top level's.
    expect(prometheusOf(cfg)).toBe('http://prometheus:9090');
  });

  it('groups environments by nginx: a block written like the top level’s is the top level’s nginx', () => {
    expect(nginxGroups(cfg).map((g) => [g.id, g.environments])).toEqual([
      ['default', ['staging']],
      ['production', ['production']],
    ]);
    const same = unitConfig((raw) => {
      raw.environments.production.nginx = { ...raw.nginx };
    });
    expect(nginxGroups(same).map((g) => [g.id, g.environments])).toEqual([
      ['default', ['staging', 'production']],
    ]);
    expect(nginxGroups(unitConfig()).map((g) => g.id)).toEqual(['default']);
  });

  it('is one endpoint (one client) for environments that write the same one', () => {
    const shared = unitConfig((raw) => {
      raw.environments.production.docker = { socketPath: '/var/run/docker.sock' };
    });
    expect(endpointKey(dockerEndpointOf(shared, 'production'))).toBe(
      endpointKey(dockerEndpointOf(shared, 'staging')),
    );
    expect(endpointKey(dockerEndpointOf(cfg, 'production'))).not.toBe(
      endpointKey(dockerEndpointOf(cfg, 'staging')),
    );
  });

  it('counts an environment’s own Prometheus for its gates', () => {
    const gated = (raw: RawConfig) => {
      raw.environments.production.release = { gates: [{ name: 'errors', query: 'up', max: 1 }] };
    };
    expect(
      problemsOf((raw) => {
        gated(raw);
        raw.environments.production.prometheus = { url: 'http://prometheus.prod:9090' };
      }),
    ).toEqual([]);
    expect(
      problemsOf((raw) => {
        gated(raw);
        raw.environments.staging.prometheus = { url: 'http://prometheus.staging:9090' };
      }),
    ).toEqual([
      'prometheus: is required because production has metric gates (or give environments.production.prometheus)',
    ]);
  });
});

describe('nginx blocks per environment', () => {
  it('checks upstream names within each nginx, not across two', () => {
    const clash = (raw: RawConfig) => {
      raw.environments['prod-eu'] = {
        services: {
          api: {
            ...raw.environments.production.services.api,
            blue: { swarmService: 'eu-api-blue', address: '10.0.3.1:8001' },
            green: { swarmService: 'eu-api-green', address: '10.0.3.2:8001' },
          },
        },
      };
      raw.environments.prod = {
        services: {
          'eu-api': {
            ...raw.environments.production.services.api,
            blue: { swarmService: 'prod-eu-api-blue', address: '10.0.4.1:8001' },
            green: { swarmService: 'prod-eu-api-green', address: '10.0.4.2:8001' },
          },
        },
      };
    };
    expect(problemsOf(clash)).toEqual([
      "environments.prod.services.eu-api: its nginx upstream name flightdeck_prod_eu_api is the same as environments.prod-eu.services.api's; rename one",
    ]);
    // Both on one nginx of their own: still one nginx, still a clash.
    expect(
      problemsOf((raw) => {
        clash(raw);
        (raw.environments['prod-eu'] as Record<string, unknown>).nginx = otherNginx;
        (raw.environments.prod as Record<string, unknown>).nginx = otherNginx;
      }),
    ).toEqual([
      "environments.prod.services.eu-api: its nginx upstream name flightdeck_prod_eu_api is the same as environments.prod-eu.services.api's; rename one",
    ]);
    // On two different nginx, each renders only its own upstreams.
    expect(
      problemsOf((raw) => {
        clash(raw);
        (raw.environments.prod as Record<string, unknown>).nginx = otherNginx;
      }),
    ).toEqual([]);
  });

  it('refuses two different blocks writing one upstream file', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.production.nginx = { ...raw.nginx, probeUrl: 'http://10.0.2.1:8080/' };
      }),
    ).toEqual([
      "environments.production.nginx.upstreamFile: is the same as nginx.upstreamFile, but the two nginx blocks differ; give production the same block (or none, for the top level's) or another upstreamFile",
    ]);
  });

  it('needs statusListen and IPv4 addresses where an environment’s nginx uses lua', () => {
    expect(
      problemsOf((raw) => {
        raw.environments.production.nginx = { ...otherNginx, driver: 'lua' };
      }),
    ).toEqual([
      'environments.production.nginx.statusListen: is required with driver: lua (flightdeck sets the weights through it)',
    ]);
    expect(
      problemsOf((raw) => {
        raw.environments.production.nginx = { ...otherNginx, driver: 'lua', statusListen: '127.0.0.1:18090' };
        raw.environments.production.services.api = {
          ...raw.environments.production.services.api,
          blue: { swarmService: 'p-api-blue', address: 'api-blue:8001' },
        };
      }),
    ).toEqual([
      'environments.production.services.api.blue.address: must be an IPv4 address and port (e.g. 10.0.0.12:8001) with environments.production.nginx.driver: lua',
    ]);
  });

  it('runs nginx.exec through one Docker endpoint: its environments must share one', () => {
    expect(
      problemsOf((raw) => {
        raw.nginx = { ...raw.nginx, exec: { swarmService: 'flightdeck_nginx' } };
        raw.environments.production.docker = { host: 'tcp://10.0.2.5:2376', tls: false };
      }),
    ).toEqual([
      "nginx.exec: runs nginx's commands through one Docker endpoint, but the environments on this nginx use several (staging uses unix:///var/run/docker.sock, production uses tcp://10.0.2.5:2376); give them one docker endpoint or their own nginx",
    ]);
    expect(
      problemsOf((raw) => {
        raw.nginx = { ...raw.nginx, exec: { swarmService: 'flightdeck_nginx' } };
        raw.environments.production.docker = { host: 'tcp://10.0.2.5:2376', tls: false };
        raw.environments.production.nginx = { ...otherNginx, exec: { swarmService: 'prod_nginx' } };
      }),
    ).toEqual([]);
  });
});

describe('readiness names', () => {
  const docker = (cfg: ReturnType<typeof unitConfig>) =>
    readinessParts(cfg, 'docker', (env) => dockerEndpointOf(cfg, env), endpointKey).map((p) => [
      p.name,
      p.environments,
    ]);

  it('keeps the bare name while every environment shares the part', () => {
    expect(docker(unitConfig())).toEqual([['docker', ['staging', 'production']]]);
  });

  it('names each environment once they differ; a shared endpoint is one check for several names', () => {
    const three = unitConfig((raw) => {
      raw.environments.qa = { ...raw.environments.staging, docker: { host: 'unix:///run/qa.sock' } };
      raw.environments.qa.services = {
        api: {
          ...raw.environments.staging.services.api,
          blue: { swarmService: 'qa-api-blue', address: '127.0.0.1:38501' },
          green: { swarmService: 'qa-api-green', address: '127.0.0.1:38502' },
        },
      };
    });
    const parts = readinessParts(three, 'docker', (env) => dockerEndpointOf(three, env), endpointKey);
    expect(parts.map((p) => [p.name, p.environments])).toEqual([
      ['docker:staging', ['staging', 'production']],
      ['docker:production', ['staging', 'production']],
      ['docker:qa', ['qa']],
    ]);
    expect(parts[0]?.key).toBe(parts[1]?.key);
  });

  it('has no entry for an environment without the part', () => {
    const cfg = unitConfig((raw) => {
      raw.environments.production.prometheus = { url: 'http://prometheus.prod:9090' };
    });
    expect(
      readinessParts(
        cfg,
        'prometheus',
        (env) => prometheusOf(cfg, env),
        (u) => u,
      ).map((p) => p.name),
    ).toEqual(['prometheus:production']);
    expect(
      readinessParts(
        unitConfig(),
        'prometheus',
        (env) => prometheusOf(unitConfig(), env),
        (u) => u,
      ),
    ).toEqual([]);
  });
});

describe('what a command hears when its environment’s Docker endpoint is down', () => {
  it('names the environment and endpoint, and who else is affected', () => {
    const own = unitConfig((raw) => {
      raw.environments.staging.docker = { host: 'unix:///run/x.sock' };
    });
    expect(dockerDownMessage(own, 'staging', 'ECONNREFUSED')).toBe(
      "staging's Docker endpoint unix:///run/x.sock does not answer (ECONNREFUSED); other environments are not affected",
    );
    expect(dockerDownMessage(unitConfig(), 'staging', 'ENOENT')).toBe(
      "staging's Docker endpoint unix:///var/run/docker.sock does not answer (ENOENT); production uses it too",
    );
  });
});

describe('DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, when the file has no docker block', () => {
  it('reads them as the docker CLI does', () => {
    expect(dockerFromEnv({})).toBeUndefined();
    expect(dockerFromEnv({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })?.endpoint).toMatchObject({
      transport: 'unix',
      socketPath: '/run/user/1000/docker.sock',
    });
    expect(
      dockerFromEnv({
        DOCKER_HOST: 'tcp://10.0.0.5:2376',
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: '/certs',
      }),
    ).toEqual({
      endpoint: expect.objectContaining({
        tls: {
          certPath: '/certs',
          caFile: '/certs/ca.pem',
          certFile: '/certs/cert.pem',
          keyFile: '/certs/key.pem',
          verify: true,
        },
      }),
      warnings: [],
    });
    expect(
      dockerFromEnv({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1', HOME: '/home/ops' })
        ?.endpoint,
    ).toMatchObject({
      tls: { certPath: '/home/ops/.docker' },
    });
  });

  it('takes plain tcp without DOCKER_TLS_VERIFY as the CLI does, with a warning', () => {
    expect(dockerFromEnv({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toEqual({
      endpoint: expect.objectContaining({ port: 2375, tls: false }),
      warnings: [
        'DOCKER_HOST=tcp://10.0.0.5:2375 without DOCKER_TLS_VERIFY: the Docker API is used without encryption or authentication',
      ],
    });
  });

  it('refuses certificates that would be ignored, and a host it cannot use', () => {
    expect(() => dockerFromEnv({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_CERT_PATH: '/certs' })).toThrow(
      'DOCKER_CERT_PATH: is set but DOCKER_TLS_VERIFY is not, so tcp://10.0.0.5:2376 would be used without TLS; set DOCKER_TLS_VERIFY=1 (or unset DOCKER_CERT_PATH)',
    );
    expect(() => dockerFromEnv({ DOCKER_HOST: 'ssh://ops@manager' })).toThrow(
      /DOCKER_HOST: ssh:\/\/ is not supported/,
    );
  });

  describe('in loadConfig', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fd-unit-infra-'));
    const write = (edit: (raw: RawConfig) => void = () => {}) => {
      const raw = rawConfig();
      edit(raw);
      const file = join(dir, `flightdeck-${Math.random().toString(36).slice(2)}.yml`);
      writeFileSync(file, stringify(raw));
      return file;
    };
    const env = (file: string, extra: Record<string, string> = {}) => ({
      FLIGHTDECK_CONFIG: file,
      SLACK_BOT_TOKEN: 'xoxb-test',
      SLACK_SIGNING_SECRET: 'signing',
      ...extra,
    });

    it('uses DOCKER_HOST only when the file has no docker block', () => {
      const none = write();
      expect(loadConfig(env(none, { DOCKER_HOST: 'unix:///run/other.sock' })).config.docker?.host).toBe(
        'unix:///run/other.sock',
      );
      const own = write((raw) => {
        raw.docker = { socketPath: '/run/mine.sock' };
      });
      expect(loadConfig(env(own, { DOCKER_HOST: 'unix:///run/other.sock' })).config.docker?.host).toBe(
        'unix:///run/mine.sock',
      );
      expect(loadConfig(env(none, { DOCKER_HOST: 'tcp://10.0.0.5:2375' })).warnings).toHaveLength(1);
    });

    it('checks the TLS files can be read, in workers only (a web replica never talks to Docker)', () => {
      const certs = mkdtempSync(join(tmpdir(), 'fd-unit-certs-'));
      writeFileSync(join(certs, 'ca.pem'), 'ca');
      const file = write((raw) => {
        raw.environments.production.docker = { host: 'tcp://10.0.2.5:2376', tls: { certPath: certs } };
      });
      try {
        loadConfig(env(file));
        expect.unreachable();
      } catch (err) {
        expect((err as ConfigError).problems).toEqual([
          `environments.production.docker.tls.certPath: cannot read ${certs}/cert.pem (ENOENT)`,
          `environments.production.docker.tls.certPath: cannot read ${certs}/key.pem (ENOENT)`,
        ]);
      }
      expect(loadConfig(env(file, { FLIGHTDECK_ROLE: 'web' })).role).toBe('web');
      writeFileSync(join(certs, 'cert.pem'), 'cert');
      writeFileSync(join(certs, 'key.pem'), 'key');
      expect(loadConfig(env(file)).config.environments.production?.docker?.host).toBe('tcp://10.0.2.5:2376');
    });

    it('asks for NGINX_ADMIN_TOKEN when any environment’s nginx uses lua', () => {
      const file = write((raw) => {
        raw.environments.production.nginx = { ...otherNginx, driver: 'lua', statusListen: '127.0.0.1:18090' };
        for (const svc of Object.values(raw.environments.production.services)) {
          svc.blue.address = '10.0.5.1:8001';
          svc.green.address = '10.0.5.2:8001';
        }
      });
      expect(() => loadConfig(env(file))).toThrow(/NGINX_ADMIN_TOKEN: is required with nginx\.driver: lua/);
    });
  });
});

describe('dockerode options of an endpoint', () => {
  const read = (file: string) => Buffer.from(`<${file}>`);

  it('sets every connection key, so DOCKER_HOST in the process cannot override the endpoint', () => {
    const opts = dockerOptions(DEFAULT_DOCKER_ENDPOINT, read);
    expect(opts).toMatchObject({ socketPath: '/var/run/docker.sock', version: 'v1.41', timeout: 15_000 });
    for (const key of ['host', 'port', 'protocol', 'ca', 'cert', 'key'])
      expect(Object.hasOwn(opts, key) && opts[key as keyof typeof opts] === undefined).toBe(true);
  });

  it('maps certPath to ca.pem, cert.pem and key.pem over https, verifying the manager', () => {
    const opts = dockerOptions(
      unitConfig((raw) => {
        raw.docker = { host: 'tcp://10.0.0.5:2376', tls: { certPath: '/certs' } };
      }).docker as DockerEndpoint,
      read,
    );
    expect(opts).toMatchObject({ host: '10.0.0.5', port: 2376, protocol: 'https', socketPath: undefined });
    expect(String(opts.ca)).toBe('</certs/ca.pem>');
    expect(String(opts.cert)).toBe('</certs/cert.pem>');
    expect(String(opts.key)).toBe('</certs/key.pem>');
    expect(opts.agent).toBeUndefined();
  });

  it('with verify: false, still encrypts and sends the client certificate but accepts any server', () => {
    const opts = dockerOptions(
      {
        transport: 'tcp',
        host: 'tcp://10.0.0.5:2376',
        hostname: '10.0.0.5',
        port: 2376,
        tls: { certFile: '/c.pem', keyFile: '/k.pem', verify: false },
      },
      read,
    );
    expect(opts.protocol).toBe('https');
    expect(opts.ca).toBeUndefined();
    expect(opts.agent?.options).toMatchObject({ rejectUnauthorized: false });
    expect(String(opts.agent?.options.cert)).toBe('</c.pem>');
  });

  it('uses http for tls: false', () => {
    expect(
      dockerOptions({ transport: 'tcp', host: 'tcp://h:2375', hostname: 'h', port: 2375, tls: false }, read),
    ).toMatchObject({ host: 'h', port: 2375, protocol: 'http', ca: undefined });
  });
});
