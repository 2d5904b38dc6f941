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

/**
 * Health of a backend address: `host:port` where host may be a name with several addresses (a
 * dnsrr Swarm service, `tasks.<service>`): every address it resolves to is checked, because nginx
 * edges send traffic to each of them. `require: 'any'` passes when at least one answers healthy
 * (a move towards safety needs only somewhere healthy to go), `'all'` only when every one does.
 */
export async function checkBackend(
  address: string,
  path: string,
  opts: { timeoutMs: number; require?: 'all' | 'any'; resolve?: (host: string) => Promise<string[]> },
): Promise<HttpCheckResult> {
  const m = /^(.*):(\d+)$/.exec(address);
  const host = m?.[1] ?? address;
  const port = m?.[2] ?? '80';
  if (isIPv4(host) || host === 'localhost') return httpCheck(`http://${address}${path}`, opts);
  const started = performance.now();
  let ips: string[];
  try {
    ips = await (opts.resolve ?? resolveAll)(host);
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message;
    return {
      ok: false,
      status: 0,
      ms: performance.now() - started,
      detail: `${host} does not resolve (${code})`,
    };
  }
  if (ips.length === 0) {
    return {
      ok: false,
      status: 0,
      ms: performance.now() - started,
      detail: `${host} resolves to no address`,
    };
  }
  if (ips.length === 1) return httpCheck(`http://${ips[0]}:${port}${path}`, opts);
  const results = await Promise.all(ips.map((ip) => httpCheck(`http://${ip}:${port}${path}`, opts)));
  const healthy = results.filter((r) => r.ok).length;
  const ok = opts.require === 'any' ? healthy > 0 : healthy === results.length;
  const failures = results.filter((r) => !r.ok).map((r) => r.detail);
  return {
    ok,
    status: results.find((r) => !r.ok)?.status ?? results[0]?.status ?? 0,
    ms: performance.now() - started,
    detail: `${host}: ${healthy} of ${results.length} tasks healthy${failures.length ? ` (${failures.join('; ')})` : ''}`,
  };
}

async function resolveAll(host: string): Promise<string[]> {
  const { lookup } = await import('node:dns/promises');
  // getaddrinfo, as fetch uses: /etc/hosts first, then the container's DNS (Docker's answers every task).
  const found = await lookup(host, { all: true, family: 4 });
  return [...new Set(found.map((a) => a.address))].sort();
}

function isIPv4(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}
