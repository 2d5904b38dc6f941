import type { Redis } from 'ioredis';
import {
  type ItemState,
  ItemState as ItemStateSchema,
  type Rollout,
  Rollout as RolloutSchema,
} from './schema.js';

/** Rollout, item states and the Slack messages showing each checklist. */
export class ChecklistStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Keeps the state of different template sets apart. */
    private readonly set: string,
  ) {}

  private k(...parts: string[]) {
    return [this.prefix, 'data', ...parts].join(':');
  }

  async rollout(): Promise<Rollout | undefined> {
    const raw = await this.redis.get(this.k('rollout', this.set));
    return raw ? RolloutSchema.parse(JSON.parse(raw)) : undefined;
  }

  async setRollout(r: Rollout): Promise<void> {
    await this.redis.set(this.k('rollout', this.set), JSON.stringify(r));
  }

  async override(key: string, by: string, reason: string): Promise<Rollout | undefined> {
    // A small read-modify-write guarded by WATCH so two leads' overrides both land.
    const key2 = this.k('rollout', this.set);
    for (let i = 0; i < 20; i++) {
      await this.redis.watch(key2);
      const raw = await this.redis.get(key2);
      if (!raw) {
        await this.redis.unwatch();
        return undefined;
      }
      const r = RolloutSchema.parse(JSON.parse(raw));
      r.overrides[key] = { by, reason, at: Date.now() };
      const ok = await this.redis.multi().set(key2, JSON.stringify(r)).exec();
      if (ok) return r;
    }
    throw new Error('too many concurrent overrides');
  }

  async items(checklistId: string): Promise<Record<string, ItemState>> {
    const raw = await this.redis.hgetall(this.k('checklist', this.set, checklistId));
    return Object.fromEntries(
      Object.entries(raw).map(([id, v]) => [id, ItemStateSchema.parse(JSON.parse(v))]),
    );
  }

  /** One field per item: ticks of different items never overwrite each other. */
  async setItem(checklistId: string, itemId: string, state: ItemState): Promise<void> {
    await this.redis.hset(this.k('checklist', this.set, checklistId), itemId, JSON.stringify(state));
  }

  async addMessage(checklistId: string, channel: string, ts: string): Promise<void> {
    await this.redis.sadd(this.k('checklist-messages', this.set, checklistId), `${channel}|${ts}`);
  }

  async messages(checklistId: string): Promise<Array<{ channel: string; ts: string }>> {
    const raw = await this.redis.smembers(this.k('checklist-messages', this.set, checklistId));
    return raw.map((m) => {
      const [channel, ts] = m.split('|');
      return { channel: channel as string, ts: ts as string };
    });
  }
}
