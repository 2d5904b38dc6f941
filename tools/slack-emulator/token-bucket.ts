/** A token bucket: `burst` calls at once, refilled at `perSecond`. Returns seconds to wait when empty. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): { ok: true } | { ok: false; retryAfterSec: number } {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    // Slack's Retry-After is whole seconds, at least 1.
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - this.tokens) / this.perSecond)) };
  }
}
