import type { Redis } from 'ioredis';
import { luaScript } from '../integrations/redis.js';
import { type ItemState, ItemState as ItemStateSchema } from './schema.js';

/**
 * Item states and the Slack messages showing each checklist of one scope: a rollout (its id) or a
 * release (its id, for the release's own post-deployment checklist). Scopes never share state, so
 * a new rollout starts with nothing ticked.
 */
export class ChecklistStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** A rollout's id or a release's id. */
    readonly scope: string,
    /** Item states expire this long after their last change (a release's checklist); none for a rollout. */
    private readonly ttlSec?: number,
  ) {}

  private k(kind: string, checklistId: string) {
    return [this.prefix, 'data', kind, this.scope, checklistId].join(':');
  }

  async items(checklistId: string): Promise<Record<string, ItemState>> {
    const raw = await this.redis.hgetall(this.k('cl', checklistId));
    return Object.fromEntries(
      Object.entries(raw).map(([id, v]) => [id, ItemStateSchema.parse(JSON.parse(v))]),
    );
  }

  /** One field per item: ticks of different items never overwrite each other. */
  async setItem(checklistId: string, itemId: string, state: ItemState): Promise<void> {
    const key = this.k('cl', checklistId);
    if (!this.ttlSec) await this.redis.hset(key, itemId, JSON.stringify(state));
    else await this.redis.multi().hset(key, itemId, JSON.stringify(state)).expire(key, this.ttlSec).exec();
  }

  /**
   * Records a message showing a checklist and keeps the newest MESSAGE_CAP: older ones move to the
   * "moved" set (a refresh points them to the newest, then forgets them). Returns how many moved.
   */
  async addMessage(checklistId: string, channel: string, ts: string): Promise<number> {
    return this.trim(checklistId, `${channel}|${ts}`);
  }

  /** Caps the messages of a checklist (sets from before the cap included); returns how many moved. */
  async trim(checklistId: string, add = ''): Promise<number> {
    const k = this.messageKeys(checklistId);
    return Number(await trim(this.redis, k.shown, k.moved, k.rendered, add, MESSAGE_CAP));
  }

  /** The messages showing a checklist, newest first (at most MESSAGE_CAP). */
  async messages(checklistId: string): Promise<ChecklistMessage[]> {
    return byNewest(await this.redis.smembers(this.messageKeys(checklistId).shown));
  }

  /** Older messages that must be pointed to the newest, then forgotten. */
  async moved(checklistId: string): Promise<ChecklistMessage[]> {
    return byNewest(await this.redis.smembers(this.messageKeys(checklistId).moved));
  }

  /** A message Slack no longer has (deleted, channel gone): never refreshed again. */
  async forget(checklistId: string, m: ChecklistMessage): Promise<void> {
    const k = this.messageKeys(checklistId);
    await this.redis
      .multi()
      .srem(k.shown, `${m.channel}|${m.ts}`)
      .hdel(k.rendered, `${m.channel}|${m.ts}`)
      .exec();
  }

  async forgetMoved(checklistId: string, m: ChecklistMessage): Promise<void> {
    await this.redis.srem(this.messageKeys(checklistId).moved, `${m.channel}|${m.ts}`);
  }

  /** Which render (a hash of it) each message shows, and when it got it: a refresh resumes from this. */
  async rendered(checklistId: string): Promise<Map<string, { version: string; at: number }>> {
    const raw = await this.redis.hgetall(this.messageKeys(checklistId).rendered);
    return new Map(
      Object.entries(raw).map(([m, v]) => {
        const [version = '', at = '0'] = v.split('|');
        return [m, { version, at: Number(at) }];
      }),
    );
  }

  async setRendered(checklistId: string, m: ChecklistMessage, version: string): Promise<void> {
    const k = this.messageKeys(checklistId);
    // Only for a message still shown: one moved meanwhile must not come back.
    await setRendered(this.redis, k.shown, k.rendered, `${m.channel}|${m.ts}`, `${version}|${Date.now()}`);
  }

  private messageKeys(checklistId: string) {
    return {
      shown: this.k('cl-messages', checklistId),
      moved: this.k('cl-messages-moved', checklistId),
      rendered: this.k('cl-messages-rendered', checklistId),
    };
  }
}

/** How many messages keep showing a checklist and are refreshed on every tick; older ones point to the newest. */
export const MESSAGE_CAP = 10;

export interface ChecklistMessage {
  channel: string;
  ts: string;
}

/** Slack's ts is "<seconds>.<6 digits>", in posting order. */
const tsOrder = (ts: string): [number, number] => {
  const [sec = '0', frac = '0'] = ts.split('.');
  return [Number(sec), Number(frac)];
};

function byNewest(members: string[]): ChecklistMessage[] {
  return members
    .map((m) => {
      const i = m.lastIndexOf('|');
      return { channel: m.slice(0, i), ts: m.slice(i + 1) };
    })
    .sort((a, b) => {
      const [as, af] = tsOrder(a.ts);
      const [bs, bf] = tsOrder(b.ts);
      return bs - as || bf - af || (a.channel < b.channel ? 1 : -1);
    });
}

// KEYS: shown, moved, rendered; ARGV: the member to add ('' for none), the cap. Atomic, so two
// posts at once never both keep (or both move) the same message.
const TRIM = `
if ARGV[1] ~= '' then redis.call('sadd', KEYS[1], ARGV[1]) end
local cap = tonumber(ARGV[2])
local all = redis.call('smembers', KEYS[1])
if #all <= cap then return 0 end
local function order(m)
  local sec, frac = string.match(m, '|(%d+)%.(%d+)$')
  return tonumber(sec or '0'), tonumber(frac or '0')
end
table.sort(all, function(a, b)
  local as, af = order(a)
  local bs, bf = order(b)
  if as ~= bs then return as < bs end
  if af ~= bf then return af < bf end
  return a < b
end)
local n = #all - cap
for i = 1, n do
  redis.call('srem', KEYS[1], all[i])
  redis.call('sadd', KEYS[2], all[i])
  redis.call('hdel', KEYS[3], all[i])
end
return n`;
const trim = luaScript(3, TRIM);

// KEYS: shown, rendered; ARGV: member, "version|at".
const SET_RENDERED = `
if redis.call('sismember', KEYS[1], ARGV[1]) == 1 then redis.call('hset', KEYS[2], ARGV[1], ARGV[2]) end`;
const setRendered = luaScript(2, SET_RENDERED);
