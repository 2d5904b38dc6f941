import type { Redis } from 'ioredis';
import { FlightdeckError } from '../errors.js';
import { type Release, Release as ReleaseSchema, TERMINAL } from './schema.js';

// Compare-and-set on the `rev` field: a write succeeds only if nobody wrote in between.
const CAS = `
local cur = redis.call('get', KEYS[1])
if cur then
  local rev = cjson.decode(cur)['rev']
  if tostring(rev) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '-1' then
  return 0
end
redis.call('set', KEYS[1], ARGV[2])
return 1`;

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

  async create(release: Omit<Release, 'rev'>): Promise<Release> {
    const full = { ...release, rev: 0 } as Release;
    const ok = await this.redis.eval(CAS, 1, this.key(full.id), '-1', JSON.stringify(full));
    if (ok !== 1) throw new Error(`release ${full.id} already exists`);
    await this.redis
      .multi()
      .sadd(`${this.prefix}:data:releases:active`, full.id)
      .lpush(`${this.prefix}:data:releases:history:${full.environment}:${full.service}`, full.id)
      .ltrim(`${this.prefix}:data:releases:history:${full.environment}:${full.service}`, 0, 49)
      .lpush(`${this.prefix}:data:releases:recent`, full.id)
      .ltrim(`${this.prefix}:data:releases:recent`, 0, 199)
      .exec();
    return full;
  }

  /** Read-modify-write with retries; `fn` returns the new record or undefined to leave it unchanged. */
  async update(id: string, fn: (r: Release) => Release | undefined): Promise<Release> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const cur = await this.mustGet(id);
      const next = fn(structuredClone(cur));
      if (!next) return cur;
      const written = { ...next, rev: cur.rev + 1, updatedAt: Date.now() };
      const ok = await this.redis.eval(CAS, 1, this.key(id), String(cur.rev), JSON.stringify(written));
      if (ok === 1) {
        if (TERMINAL.has(written.status)) await this.redis.srem(`${this.prefix}:data:releases:active`, id);
        return written;
      }
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
