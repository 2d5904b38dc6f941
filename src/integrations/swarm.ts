import Docker from 'dockerode';
import { FlightdeckError } from '../errors.js';

/** Docker Engine API client pinned to API 1.41 (Debian's docker.io 20.10). */
export function createDocker(socketPath: string): Docker {
  return new Docker({ socketPath, version: 'v1.41', timeout: 15_000 });
}

export async function pingDocker(docker: Docker): Promise<void> {
  await docker.ping();
}

export class SwarmServiceMissing extends FlightdeckError {
  constructor(readonly service: string) {
    super(
      'swarm_service_missing',
      `Swarm service ${service} does not exist; create it first (see docs/release-engine.md)`,
      false,
    );
  }
}

/** The Docker engine did not answer; it may be back on the next attempt. */
export class DockerUnavailable extends FlightdeckError {
  constructor(message: string) {
    super('docker_unavailable', message, true);
  }
}

export interface ServiceInfo {
  id: string;
  name: string;
  version: number;
  image: string;
  previousImage?: string;
  replicas: number;
  updateState?: string;
  updateMessage?: string;
}

export type Convergence =
  | { state: 'converged'; running: number; desired: number }
  | { state: 'converging'; running: number; desired: number; detail: string }
  | { state: 'failed'; detail: string };

/** Image references compare without a pinned digest (the CLI pins one, the API does not). */
export const stripDigest = (image: string) => image.replace(/@sha256:[a-f0-9]+$/, '');

type Spec = Record<string, any>;

/** The narrow slice of the Docker Engine API a release needs, through dockerode (never the CLI). */
export class Swarm {
  constructor(private readonly docker: Docker) {}

  async inspect(name: string): Promise<ServiceInfo & { spec: Spec }> {
    const raw = await this.call(() => this.docker.getService(name).inspect(), name);
    const spec = raw.Spec as Spec;
    return {
      id: raw.ID,
      name,
      version: raw.Version.Index,
      image: stripDigest(spec.TaskTemplate?.ContainerSpec?.Image ?? ''),
      previousImage: raw.PreviousSpec
        ? stripDigest(raw.PreviousSpec.TaskTemplate?.ContainerSpec?.Image ?? '')
        : undefined,
      replicas: spec.Mode?.Replicated?.Replicas ?? 1,
      updateState: raw.UpdateStatus?.State,
      updateMessage: raw.UpdateStatus?.Message,
      spec,
    };
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.inspect(name);
      return true;
    } catch (err) {
      if (err instanceof SwarmServiceMissing) return false;
      throw err;
    }
  }

  /** Sets the image; a no-op when the spec already has it (so a resumed step has no second effect). */
  async updateImage(name: string, image: string): Promise<{ changed: boolean; previous: string }> {
    const svc = await this.inspect(name);
    if (svc.image === image) return { changed: false, previous: svc.previousImage ?? svc.image };
    const spec = structuredClone(svc.spec);
    spec.TaskTemplate.ContainerSpec.Image = image;
    // dockerode puts top-level keys in the query string: keep version there and the spec in the body.
    await this.call(
      () => this.docker.getService(name).update({ _query: { version: svc.version }, _body: spec } as never),
      name,
    );
    return { changed: true, previous: svc.image };
  }

  /** Server-side rollback to PreviousSpec (`rollback=previous`). */
  async rollbackToPrevious(name: string): Promise<{ changed: boolean; image: string }> {
    const svc = await this.inspect(name);
    if (!svc.previousImage) return { changed: false, image: svc.image };
    await this.call(
      () =>
        this.docker
          .getService(name)
          .update({ _query: { version: svc.version, rollback: 'previous' }, _body: svc.spec } as never),
      name,
    );
    return { changed: true, image: svc.previousImage };
  }

  async scale(name: string, replicas: number): Promise<void> {
    const svc = await this.inspect(name);
    if (svc.replicas === replicas) return;
    const spec = structuredClone(svc.spec);
    spec.Mode = { Replicated: { Replicas: replicas } };
    await this.call(
      () => this.docker.getService(name).update({ _query: { version: svc.version }, _body: spec } as never),
      name,
    );
  }

  /** All desired tasks running the image and the update completed; failed if Swarm gave up or tasks keep failing. */
  async convergence(name: string, image: string): Promise<Convergence> {
    const svc = await this.inspect(name);
    if (svc.image !== image)
      return {
        state: 'failed',
        detail: `${name} now specifies ${svc.image}, not ${image} (changed outside this release)`,
      };
    if (
      svc.updateState &&
      ['paused', 'rollback_started', 'rollback_paused', 'rollback_completed'].includes(svc.updateState)
    ) {
      return {
        state: 'failed',
        detail: `Swarm update ${svc.updateState}: ${svc.updateMessage ?? 'no message'}`,
      };
    }
    const tasks = (await this.call(
      () => this.docker.listTasks({ filters: { service: [name] } }),
      name,
    )) as Spec[];
    const ofImage = tasks.filter((t) => stripDigest(t.Spec?.ContainerSpec?.Image ?? '') === image);
    const running = ofImage.filter(
      (t) => t.DesiredState === 'running' && t.Status?.State === 'running',
    ).length;
    const failures = ofImage.filter((t) => ['failed', 'rejected'].includes(t.Status?.State));
    if (failures.length >= 3) {
      const last = failures.sort((a, b) =>
        String(b.Status?.Timestamp).localeCompare(String(a.Status?.Timestamp)),
      )[0];
      return {
        state: 'failed',
        detail: `${failures.length} tasks failed: ${last?.Status?.Err || last?.Status?.Message || 'unknown error'}`,
      };
    }
    const updateDone = !svc.updateState || svc.updateState === 'completed';
    if (running >= svc.replicas && updateDone) return { state: 'converged', running, desired: svc.replicas };
    return {
      state: 'converging',
      running,
      desired: svc.replicas,
      detail: `${running}/${svc.replicas} tasks running ${image}${svc.updateState ? `, update ${svc.updateState}` : ''}${failures.length ? `, ${failures.length} failed` : ''}`,
    };
  }

  private async call<T>(fn: () => Promise<T>, service: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { statusCode?: number; code?: string; message?: string; json?: { message?: string } };
      if (e.statusCode === 404) throw new SwarmServiceMissing(service);
      if (
        e.code === 'ECONNREFUSED' ||
        e.code === 'ENOENT' ||
        e.code === 'EACCES' ||
        e.code === 'ECONNRESET'
      ) {
        throw new DockerUnavailable(
          `Docker engine unreachable (${e.code}): is dockerd running on this Swarm manager?`,
        );
      }
      throw new Error(`Docker API: ${e.json?.message ?? e.message ?? String(err)}`);
    }
  }
}
