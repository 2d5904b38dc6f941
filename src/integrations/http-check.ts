export interface HttpCheckResult {
  ok: boolean;
  status: number;
  ms: number;
  detail: string;
}

/** GET a URL and judge it: status as expected and, optionally, a substring in the body. */
export async function httpCheck(
  url: string,
  opts: { timeoutMs: number; status?: number; contains?: string },
): Promise<HttpCheckResult> {
  const started = performance.now();
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(opts.timeoutMs),
      headers: { 'user-agent': 'flightdeck' },
    });
    const body = await res.text();
    const ms = performance.now() - started;
    const want = opts.status ?? 200;
    const statusOk = opts.status === undefined ? res.status >= 200 && res.status < 300 : res.status === want;
    if (!statusOk) return { ok: false, status: res.status, ms, detail: `${url} answered ${res.status}` };
    if (opts.contains && !body.includes(opts.contains)) {
      return { ok: false, status: res.status, ms, detail: `${url} answered without "${opts.contains}"` };
    }
    return { ok: true, status: res.status, ms, detail: `${url} ${res.status} in ${Math.round(ms)} ms` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why =
      e.name === 'TimeoutError' ? `no answer in ${opts.timeoutMs} ms` : (e.cause?.code ?? e.message);
    return { ok: false, status: 0, ms: performance.now() - started, detail: `${url}: ${why}` };
  }
}
