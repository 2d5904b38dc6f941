/** nginx is reachable when its probe URL answers at all (any HTTP status). */
export async function probeNginx(probeUrl: string, timeoutMs = 1_500): Promise<void> {
  const res = await fetch(probeUrl, { signal: AbortSignal.timeout(timeoutMs) });
  await res.body?.cancel();
}
