import Docker from 'dockerode';
import { testappServiceSpec } from '../../scripts/testapp-service.js';
import { stripDigest } from '../../src/integrations/swarm.js';
import { waitFor } from './ports.js';
import type { TestStack } from './stack.js';

export const docker = new Docker({ socketPath: '/var/run/docker.sock', version: 'v1.41' });

export interface ColourService {
  name: string;
  port: number;
  colour: string;
  image: string;
}

/** A real Swarm service of the test's own: the test app image, a host-mode port on loopback. */
export async function createService(s: ColourService): Promise<void> {
  await removeService(s.name);
  // A left-over service (e.g. an earlier run cut short) goes asynchronously; its name is taken until then.
  const gone = () =>
    docker
      .getService(s.name)
      .inspect()
      .then(
        () => false,
        () => true,
      );
  await waitFor(gone, { timeoutMs: 30_000, intervalMs: 200, what: `${s.name} to be removed` });
  await docker.createService(testappServiceSpec({ ...s, labels: { 'flightdeck.test': '1' } }) as never);
}

export async function waitServing(port: number, body?: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}/version`, { signal: AbortSignal.timeout(1_000) });
      const text = await res.text();
      return res.ok && (!body || text.trim() === body);
    },
    { timeoutMs, intervalMs: 200, what: `a task answering on ${port}${body ? ` with ${body}` : ''}` },
  );
}

export async function removeService(name: string): Promise<void> {
  try {
    await docker.getService(name).remove();
  } catch {
    /* not there */
  }
}

export async function serviceImage(name: string): Promise<string> {
  const info = await docker.getService(name).inspect();
  return stripDigest(String(info.Spec.TaskTemplate.ContainerSpec.Image));
}

/** The image of the service's previous spec (what `rollback=previous` goes back to), '' if none. */
export async function previousImage(name: string): Promise<string> {
  const info = await docker.getService(name).inspect();
  return stripDigest(String(info.PreviousSpec?.TaskTemplate?.ContainerSpec?.Image ?? ''));
}

/** Waits until no container of the service is left (host ports free again). */
export async function removeServicesAndWait(names: string[]): Promise<void> {
  await Promise.all(names.map(removeService));
  await waitFor(
    async () => {
      const containers = await docker.listContainers({
        all: true,
        filters: { label: ['com.docker.swarm.service.name'] },
      });
      return !containers.some((c) => names.includes(c.Labels['com.docker.swarm.service.name'] ?? ''));
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'service containers to go' },
  ).catch(() => {});
}

interface ColourPair {
  blue: { swarmService: string; address: string };
  green: { swarmService: string; address: string };
}

/**
 * Both colours of each service as real Swarm services on `image`, running and answering; returns
 * their names for removeServicesAndWait.
 */
export async function createColourServices(
  services: ColourPair[],
  image = 'flightdeck/testapp:1.0.0',
): Promise<string[]> {
  const specs = services.flatMap((s) =>
    (['blue', 'green'] as const).map((colour) => ({
      name: s[colour].swarmService,
      port: Number(s[colour].address.split(':')[1]),
      colour,
      image,
    })),
  );
  await Promise.all(specs.map(createService));
  await Promise.all(specs.map((s) => waitServing(s.port)));
  return specs.map((s) => s.name);
}

/**
 * The stack's staging services (all, or only those named) as real colour services, by
 * createColourServices; throws if a named one is not in the config.
 */
export async function createStagingColourServices(
  stack: Pick<TestStack, 'config'>,
  ...only: string[]
): Promise<string[]> {
  const services = stack.config.environments.staging?.services ?? {};
  return createColourServices(
    only.length === 0
      ? Object.values(services)
      : only.map((name) => {
          const s = services[name];
          if (!s) throw new Error(`no staging service ${name}`);
          return s;
        }),
  );
}
