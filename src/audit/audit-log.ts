import type { Redis } from 'ioredis';

export type AuditOutcome =
  | 'help'
  | 'rejected' // bad input: answered with usage, nothing enqueued
  | 'refused' // not authorised
  | 'accepted' // enqueued
  | 'error' // could not be enqueued
  | 'done' // the worker finished it
  | 'failed'; // the worker gave up

export interface AuditEntry {
  at: string;
  userId: string;
  userName: string;
  command: string;
  text: string;
  outcome: AuditOutcome;
  detail: string;
  requestId: string;
}

/** Who did what, when, and how it ended: a capped Redis stream any replica can append to. */
export class AuditLog {
  /** The stream, and its approximate cap: the ack path appends to it inside its own transaction. */
  readonly key: string;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    readonly maxLen = 100_000,
  ) {
    this.key = `${prefix}:data:audit`;
  }

  async record(entry: Omit<AuditEntry, 'at'> & { at?: string }): Promise<void> {
    const full: AuditEntry = { at: entry.at ?? new Date().toISOString(), ...entry } as AuditEntry;
    const fields = Object.entries(full).flatMap(([k, v]) => [k, String(v)]);
    await this.redis.xadd(this.key, 'MAXLEN', '~', String(this.maxLen), '*', ...fields);
  }

  /** Newest first. */
  async recent(count = 50): Promise<AuditEntry[]> {
    const rows = await this.redis.xrevrange(this.key, '+', '-', 'COUNT', count);
    return rows.map(([, fields]) => {
      const obj: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) obj[fields[i] as string] = fields[i + 1] as string;
      return obj as unknown as AuditEntry;
    });
  }
}
