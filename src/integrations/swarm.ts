import Docker from 'dockerode';

/** Docker Engine API client pinned to API 1.41 (Debian's docker.io 20.10). */
export function createDocker(socketPath: string): Docker {
  return new Docker({ socketPath, version: 'v1.41', timeout: 10_000 });
}

export async function pingDocker(docker: Docker): Promise<void> {
  await docker.ping();
}
