import type { Redis } from 'ioredis';
import { luaScript } from '../integrations/redis.js';
import {
  Rollout as LegacyRollout,
  type ReleaseChecklist,
  ReleaseChecklist as ReleaseChecklistSchema,
  type RolloutRecord,
  RolloutRecord as RolloutRecordSchema,
  type TickEntry,
  TickEntry as TickEntrySchema,
} from './schema.js';

/** Ticks and unticks kept per rollout (newest first). */
export const HISTORY_CAP = 1_000;
/** Releases whose post-deployment checklists a rollout lists (newest). */
export const ROLLOUT_RELEASES_CAP = 50;
/** A release's post-deployment checklist is kept this long after its last change. */
export const RELEASE_CHECKLIST_TTL_SEC = 90 * 86_400;

// KEYS: the hash; ARGV: field, the value read, the new value. Compare-and-set on one field.
const HSET_IF_UNCHANGED = `
local cur = redis.call('hget', KEYS[1], ARGV[1])
if cur == ARGV[2] then redis.call('hset', KEYS[1], ARGV[1], ARGV[3]) return 1 end
return 0`;
const hsetIfUnchanged = luaScript(1, HSET_IF_UNCHANGED);

/**
 * Rollout records (every rollout, active and finished, kept), their tick history, the releases each
 * covered, and the post-deployment checklist record of each release.
 */
export class RolloutStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private k(...parts: string[]) {
    return [this.prefix, 'data', ...parts].join(':');
  }

  async get(id: string): Promise<RolloutRecord | undefined> {
    const raw = await this.redis.hget(this.k('rollouts'), id);
    return raw ? RolloutRecordSchema.parse(JSON.parse(raw)) : undefined;
  }

  async all(): Promise<RolloutRecord[]> {
    const raw = await this.redis.hgetall(this.k('rollouts'));
    return Object.values(raw)
      .map((v) => RolloutRecordSchema.parse(JSON.parse(v)))
      .sort((a, b) => a.setAt - b.setAt || (a.id < b.id ? -1 : 1));
  }

  /** Creates a rollout; false when the name is taken (active or finished). */
  async create(r: RolloutRecord): Promise<boolean> {
    return (await this.redis.hsetnx(this.k('rollouts'), r.id, JSON.stringify(r))) === 1;
  }

  /**
   * Changes one rollout by compare-and-set on its stored value, so concurrent changes (two leads'
   * overrides) all land. `fn` returns undefined to change nothing. (Not WATCH: it watches per
   * connection, and this connection is shared with every other writer in the process.)
   */
  async update(
    id: string,
    fn: (r: RolloutRecord) => RolloutRecord | undefined,
  ): Promise<RolloutRecord | undefined> {
    const key = this.k('rollouts');
    for (let i = 0; i < 20; i++) {
      const raw = await this.redis.hget(key, id);
      if (!raw) return undefined;
      const next = fn(RolloutRecordSchema.parse(JSON.parse(raw)));
      if (!next) return RolloutRecordSchema.parse(JSON.parse(raw));
      if ((await hsetIfUnchanged(this.redis, key, id, raw, JSON.stringify(next))) === 1) return next;
    }
    throw new Error('too many concurrent changes of the rollout');
  }

  async override(id: string, key: string, by: string, reason: string, at = Date.now()) {
    return this.update(id, (r) => ({ ...r, overrides: { ...r.overrides, [key]: { by, reason, at } } }));
  }

  /** Records ticks and unticks in the history of each rollout named (capped, newest first). */
  async recordTicks(rolloutIds: string[], entries: TickEntry[]): Promise<void> {
    if (entries.length === 0 || rolloutIds.length === 0) return;
    const m = this.redis.multi();
    for (const id of rolloutIds) {
      const key = this.k('rollout-history', id);
      m.lpush(key, ...entries.map((e) => JSON.stringify(e))).ltrim(key, 0, HISTORY_CAP - 1);
    }
    await m.exec();
  }

  async history(id: string, n = HISTORY_CAP): Promise<TickEntry[]> {
    const raw = await this.redis.lrange(this.k('rollout-history', id), 0, n - 1);
    return raw.map((v) => TickEntrySchema.parse(JSON.parse(v)));
  }

  async historyLength(id: string): Promise<number> {
    return this.redis.llen(this.k('rollout-history', id));
  }

  /** A release's post-deployment checklist, once (a second call with the same id keeps the first). */
  async createReleaseChecklist(rc: ReleaseChecklist): Promise<ReleaseChecklist> {
    const key = this.k('release-checklist', rc.releaseId);
    await this.redis.set(key, JSON.stringify(rc), 'EX', RELEASE_CHECKLIST_TTL_SEC, 'NX');
    const m = this.redis.multi();
    for (const id of rc.rollouts) {
      const rk = this.k('rollout-releases', id);
      m.zadd(rk, 'NX', rc.at, rc.releaseId).zremrangebyrank(rk, 0, -ROLLOUT_RELEASES_CAP - 1);
    }
    await m.exec();
    return (await this.releaseChecklist(rc.releaseId)) ?? rc;
  }

  async releaseChecklist(releaseId: string): Promise<ReleaseChecklist | undefined> {
    const raw = await this.redis.get(this.k('release-checklist', releaseId));
    return raw ? ReleaseChecklistSchema.parse(JSON.parse(raw)) : undefined;
  }

  async setThread(releaseId: string, channel: string, threadTs: string): Promise<void> {
    const rc = await this.releaseChecklist(releaseId);
    if (!rc) return;
    await this.redis.set(
      this.k('release-checklist', releaseId),
      JSON.stringify({ ...rc, channel, threadTs }),
      'EX',
      RELEASE_CHECKLIST_TTL_SEC,
    );
  }

  /** The releases of a rollout that have a post-deployment checklist, newest first. */
  async releasesOf(rolloutId: string): Promise<ReleaseChecklist[]> {
    const ids = await this.redis.zrevrange(this.k('rollout-releases', rolloutId), 0, -1);
    const all = await Promise.all(ids.map((id) => this.releaseChecklist(id)));
    return all.filter((x): x is ReleaseChecklist => Boolean(x));
  }

  /** The rollout that data of the single-rollout version was migrated to (old buttons land there). */
  async legacyRollout(set: string): Promise<string | undefined> {
    return (await this.redis.get(this.k('rollouts-migrated', set))) || undefined;
  }

  /**
   * Moves the single rollout of the previous version (`…:data:rollout:<set>`, its item hashes
   * `…:data:checklist:<set>:<id>` and message sets) into the named rollout `id`, with nothing lost:
   * item states, messages, the render each message shows, start date and overrides. One Lua script,
   * so two workers starting at once migrate once; run again, it changes nothing. With no old data
   * but `rollout.startDate` in the config, it creates that rollout. Returns whether it migrated.
   */
  async migrateLegacy(opts: {
    set: string;
    id: string;
    template: string;
    checklistIds: string[];
    configStartDate?: string;
    today: string;
    now: number;
  }): Promise<boolean> {
    const marker = this.k('rollouts-migrated', opts.set);
    if (await this.redis.exists(marker)) return false;
    const oldKey = this.k('rollout', opts.set);
    const oldRaw = await this.redis.get(oldKey);
    const old = oldRaw ? LegacyRollout.safeParse(JSON.parse(oldRaw)) : undefined;
    const record: RolloutRecord = {
      id: opts.id,
      template: opts.template,
      startDate: (old?.success ? old.data.startDate : undefined) ?? opts.configStartDate ?? opts.today,
      channels: [],
      status: 'active',
      setBy: old?.success ? old.data.setBy : opts.configStartDate ? 'config' : 'migration',
      setAt: old?.success ? old.data.setAt : opts.now,
      overrides: old?.success ? old.data.overrides : {},
    };
    const keys = [marker, oldKey, this.k('rollouts')];
    for (const cl of opts.checklistIds) {
      keys.push(
        this.k('checklist', opts.set, cl),
        this.k('cl', opts.id, cl),
        this.k('checklist-messages', opts.set, cl),
        this.k('cl-messages', opts.id, cl),
        this.k('checklist-messages-moved', opts.set, cl),
        this.k('cl-messages-moved', opts.id, cl),
        this.k('checklist-messages-rendered', opts.set, cl),
        this.k('cl-messages-rendered', opts.id, cl),
      );
    }
    const r = await this.redis.eval(
      MIGRATE,
      keys.length,
      ...keys,
      opts.id,
      JSON.stringify(record),
      opts.checklistIds.length,
      opts.configStartDate ? '1' : '0',
    );
    return r === 1;
  }
}

// KEYS: marker, old rollout, rollouts hash, then per checklist 8 keys (old → new: items, shown,
// moved, rendered). ARGV: id, the record, how many checklists, whether to create it without old data.
const MIGRATE = `
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local found = redis.call('exists', KEYS[2])
local n = tonumber(ARGV[3])
for g = 0, n - 1 do
  local b = 3 + g * 8
  for pair = 0, 3 do
    local src = KEYS[b + 1 + pair * 2]
    local dst = KEYS[b + 2 + pair * 2]
    local t = redis.call('type', src)['ok']
    if t == 'hash' then
      found = 1
      local kv = redis.call('hgetall', src)
      for i = 1, #kv, 2 do redis.call('hsetnx', dst, kv[i], kv[i + 1]) end
      redis.call('del', src)
    elseif t == 'set' then
      found = 1
      redis.call('sunionstore', dst, dst, src)
      redis.call('del', src)
    end
  end
end
local made = found == 1 or ARGV[4] == '1'
if made then redis.call('hsetnx', KEYS[3], ARGV[1], ARGV[2]) end
redis.call('del', KEYS[2])
redis.call('set', KEYS[1], made and ARGV[1] or '')
return found`;
