import { createServer, type Server, type ServerResponse } from 'node:http';

/**
 * A colour's health endpoint that keeps requests waiting until `answer()`: a release step that is
 * deterministically in flight, to stop a worker in the middle of it.
 */
export class HealthHold {
  private server?: Server;
  private waiting: ServerResponse[] = [];
  private holding = true;
  port = 0;
  received = 0;

  async start(): Promise<this> {
    this.server = createServer((_req, res) => {
      this.received += 1;
      if (this.holding) this.waiting.push(res);
      else res.end('ok\n');
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Answers the held requests (and all later ones) 200. */
  answer(): void {
    this.holding = false;
    for (const res of this.waiting.splice(0)) if (!res.destroyed) res.end('ok\n');
  }

  hold(): void {
    this.holding = true;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
