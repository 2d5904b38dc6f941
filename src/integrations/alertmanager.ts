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

  async ready(): Promise<void> {
    const res = await fetch(this.url('-/ready'), { signal: AbortSignal.timeout(1_500) });
    if (!res.ok) throw new Error(`Alertmanager not ready (HTTP ${res.status})`);
  }
}
