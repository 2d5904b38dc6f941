import type { Redis } from 'ioredis';
import { FlightdeckError } from '../errors.js';
import { luaScript } from '../integrations/redis.js';
import { type Release, Release as ReleaseSchema, TERMINAL } from './schema.js';

/**
 * Compare-and-set on the `rev` field (a write succeeds only if nobody wrote in between), and the
 * indexes in the same script, so a crash never leaves a record without its index or a finished
 * release in the in-flight set. KEYS: record, active set, history list, recent list.
 * ARGV: expected rev ('-1' = create), new JSON, 'terminal' or '', TTL seconds of a finished record, id,
 * the records' key prefix.
 */
const CAS = `
local cur = redis.call('get', KEYS[1])
if cur then
  local rev = cjson.decode(cur)['rev']
  if tostring(rev) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '-1' then
  return 0
end
redis.call('set', KEYS[1], ARGV[2])
local id = ARGV[5]
if ARGV[1] == '-1' then
  redis.call('lpush', KEYS[3], id)
  -- Older than the service's last 50: the record goes too (unless still in flight), so memory is
  -- bounded by services x 50 whatever the release rate.
  for _, old in ipairs(redis.call('lrange', KEYS[3], 50, -1)) do
    if redis.call('sismember', KEYS[2], old) == 0 then
      redis.call('del', ARGV[6] .. old, ARGV[6] .. old .. ':after')
    end
  end
  redis.call('ltrim', KEYS[3], 0, 49)
  redis.call('lpush', KEYS[4], id)
  redis.call('ltrim', KEYS[4], 0, 199)
end
if ARGV[3] == 'terminal' then
  redis.call('srem', KEYS[2], id)
  redis.call('expire', KEYS[1], ARGV[4])
else
  redis.call('sadd', KEYS[2], id)
end
return 1`;
const releaseCas = luaScript(4, CAS);

/** A finished release's record is kept this long, and only while among its service's last 50. */
export const FINISHED_RELEASE_TTL_SEC = 90 * 86_400;

export class ReleaseNotFound extends FlightdeckError {
  constructor(id: string) {
    super('release_not_found', `release ${id} does not exist`, false);
  }
}

/** Release records in Redis, with an index per service and of releases in flight. */
export class ReleaseStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string) {
    return `${this.prefix}:data:release:${id}`;
  }

  async get(id: string): Promise<Release | undefined> {
    const raw = await this.redis.get(this.key(id));
    return raw ? ReleaseSchema.parse(JSON.parse(raw)) : undefined;
  }

  async mustGet(id: string): Promise<Release> {
    const r = await this.get(id);
    if (!r) throw new ReleaseNotFound(id);
    return r;
  }

  private write(r: Release, expectedRev: string): Promise<unknown> {
    return releaseCas(
      this.redis,
      this.key(r.id),
      `${this.prefix}:data:releases:active`,
      `${this.prefix}:data:releases:history:${r.environment}:${r.service}`,
      `${this.prefix}:data:releases:recent`,
      expectedRev,
      JSON.stringify(r),
      TERMINAL.has(r.status) ? 'terminal' : '',
      FINISHED_RELEASE_TTL_SEC,
      r.id,
      this.key(''),
    );
  }

  async create(release: Omit<Release, 'rev'>): Promise<Release> {
    const full = { ...release, rev: 0 } as Release;
    if ((await this.write(full, '-1')) !== 1) throw new Error(`release ${full.id} already exists`);
    return full;
  }

  /** Read-modify-write with retries; `fn` returns the new record or undefined to leave it unchanged. */
  async update(id: string, fn: (r: Release) => Release | undefined): Promise<Release> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const cur = await this.mustGet(id);
      const next = fn(structuredClone(cur));
      if (!next) return cur;
      const written = { ...next, rev: cur.rev + 1, updatedAt: Date.now() };
      if ((await this.write(written, String(cur.rev))) === 1) return written;
    }
    throw new Error(`release ${id}: too many concurrent writers`);
  }

  async active(): Promise<Release[]> {
    const ids = await this.redis.smembers(`${this.prefix}:data:releases:active`);
    return (await this.many(ids)).sort((a, b) => a.createdAt - b.createdAt);
  }

  async recent(count = 10): Promise<Release[]> {
    return this.many(await this.redis.lrange(`${this.prefix}:data:releases:recent`, 0, count - 1));
  }

  async history(environment: string, service: string, count = 10): Promise<Release[]> {
    return this.many(
      await this.redis.lrange(`${this.prefix}:data:releases:history:${environment}:${service}`, 0, count - 1),
    );
  }

  private async many(ids: string[]): Promise<Release[]> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.key(id)));
    return raws.flatMap((r) => (r ? [ReleaseSchema.parse(JSON.parse(r))] : []));
  }
}
