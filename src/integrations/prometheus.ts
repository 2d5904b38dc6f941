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
