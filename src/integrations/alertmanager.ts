import { z } from 'zod';

export interface SilenceRequest {
  matchers: Array<{ name: string; value: string; isRegex: boolean; isEqual: boolean }>;
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

const SilenceCreated = z.object({ silenceID: z.string() });

/** Alertmanager's v2 API: silences (the webhook comes the other way). */
export class AlertmanagerClient {
  constructor(private readonly baseUrl: string) {}

  private url(path: string): string {
    return new URL(path, this.baseUrl.endsWith('/') ? this.baseUrl : `${this.baseUrl}/`).toString();
  }

  async createSilence(req: SilenceRequest): Promise<string> {
    const res = await fetch(this.url('api/v2/silences'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req),
      signal: AbortSignal.timeout(5_000),
    });
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      const msg = (body as { message?: string } | undefined)?.message ?? `HTTP ${res.status}`;
      throw new Error(`Alertmanager refused the silence: ${msg}`);
    }
    return SilenceCreated.parse(body).silenceID;
  }

  /** Fingerprints of the alerts Alertmanager still holds (active, silenced or inhibited). */
  async activeFingerprints(): Promise<Set<string>> {
    const res = await fetch(this.url('api/v2/alerts'), { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`Alertmanager alerts: HTTP ${res.status}`);
    const body = z.array(z.object({ fingerprint: z.string() })).parse(await res.json());
    return new Set(body.map((a) => a.fingerprint));
  }

  /** Seconds since Alertmanager started (it forgets alerts on restart until they are re-sent). */
  async uptimeSeconds(): Promise<number> {
    const res = await fetch(this.url('api/v2/status'), { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`Alertmanager status: HTTP ${res.status}`);
    const body = z.object({ uptime: z.string() }).parse(await res.json());
    return (Date.now() - Date.parse(body.uptime)) / 1000;
  }

  async ready(): Promise<void> {
    const res = await fetch(this.url('-/ready'), { signal: AbortSignal.timeout(1_500) });
    if (!res.ok) throw new Error(`Alertmanager not ready (HTTP ${res.status})`);
  }
}
