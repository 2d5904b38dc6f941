import { z } from 'zod';

const QueryResponse = z.object({
  status: z.literal('success'),
  data: z.object({
    resultType: z.enum(['vector', 'scalar', 'matrix', 'string']),
    result: z.unknown(),
  }),
});

const VectorResult = z.array(
  z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) }),
);
const ScalarResult = z.tuple([z.number(), z.string()]);

/** One value per series of an instant query (NaN series dropped); [] means no data. */
export async function instantQuery(baseUrl: string, query: string, timeoutMs = 5_000): Promise<number[]> {
  const url = new URL('api/v1/query', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  url.searchParams.set('query', query);
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const msg = (body as { error?: string } | undefined)?.error ?? `HTTP ${res.status}`;
    throw new Error(`Prometheus rejected the query: ${msg}`);
  }
  const parsed = QueryResponse.parse(body);
  const values =
    parsed.data.resultType === 'vector'
      ? VectorResult.parse(parsed.data.result).map((r) => Number(r.value[1]))
      : parsed.data.resultType === 'scalar'
        ? [Number(ScalarResult.parse(parsed.data.result)[1])]
        : [];
  return values.filter((v) => !Number.isNaN(v));
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/**
 * Every series of an instant query with its labels, evaluated at `time` (Unix ms) when given, so
 * the queries of a compare gate (canary and stable) cover exactly the same window. NaN dropped.
 */
export async function vectorQuery(
  baseUrl: string,
  query: string,
  opts: { time?: number; timeoutMs?: number } = {},
): Promise<Sample[]> {
  const url = new URL('api/v1/query', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  url.searchParams.set('query', query);
  if (opts.time !== undefined) url.searchParams.set('time', (opts.time / 1000).toFixed(3));
  const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000) });
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const msg = (body as { error?: string } | undefined)?.error ?? `HTTP ${res.status}`;
    throw new Error(`Prometheus rejected the query: ${msg}`);
  }
  const parsed = QueryResponse.parse(body);
  const samples: Sample[] =
    parsed.data.resultType === 'vector'
      ? VectorResult.parse(parsed.data.result).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
      : parsed.data.resultType === 'scalar'
        ? [{ metric: {}, value: Number(ScalarResult.parse(parsed.data.result)[1]) }]
        : [];
  return samples.filter((s) => !Number.isNaN(s.value));
}
