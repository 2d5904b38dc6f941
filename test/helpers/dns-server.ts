import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

/**
 * A tiny authoritative DNS server on loopback for A records, as Docker's embedded DNS answers
 * `tasks.<service>`: every address of a name, TTL 0, NXDOMAIN for a name with none. Tests change
 * `records` while it runs (tasks coming and going).
 */
export class TestDns {
  readonly records = new Map<string, string[]>();
  private socket?: Socket;
  port = 0;
  queries = 0;

  async start(): Promise<this> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, peer) => {
      let query: dnsPacket.Packet;
      try {
        query = dnsPacket.decode(msg);
      } catch {
        return;
      }
      this.queries += 1;
      const question = query.questions?.[0];
      const ips = question && question.type === 'A' ? (this.records.get(question.name) ?? []) : [];
      const known = question ? this.records.has(question.name) && ips.length > 0 : false;
      const answer = dnsPacket.encode({
        type: 'response',
        id: query.id,
        // Authoritative; rcode 3 (NXDOMAIN) when the name has no address, as Docker answers.
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3),
        questions: query.questions,
        answers: ips.map((ip) => ({ type: 'A' as const, name: question?.name ?? '', ttl: 0, data: ip })),
      });
      socket.send(answer, peer.port, peer.address);
    });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    this.port = socket.address().port;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  stop(): void {
    this.socket?.close();
  }
}
