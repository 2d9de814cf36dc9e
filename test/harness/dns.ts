/**
 * A real DNS server for tests (dns2, UDP on a random loopback port): SRV and
 * A records of a zone the test makes up, so the server under test finds its
 * peers the way it would on the internet (RFC 6120 §3.2).
 */
import { Packet, UDPServer } from 'dns2';

export interface SrvRecord {
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface TestZone {
  /** `_xmpp-server._tcp.example.test` → records. */
  srv: Record<string, SrvRecord[]>;
  /** Host name → IPv4 address. */
  a: Record<string, string>;
}

export interface TestDns {
  /** For `s2s.dnsServers`. */
  servers: string[];
  /** Names asked, in order. */
  queries: string[];
  zone: TestZone;
  close(): void;
}

export async function startDns(zone: TestZone): Promise<TestDns> {
  const queries: string[] = [];
  const server = new UDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    for (const q of request.questions) {
      const name = q.name.toLowerCase();
      queries.push(name);
      if (q.type === Packet.TYPE.SRV) {
        for (const r of zone.srv[name] ?? []) {
          response.answers.push({ name: q.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 60, priority: r.priority ?? 0, weight: r.weight ?? 0, port: r.port, target: r.target } as never);
        }
      } else if (q.type === Packet.TYPE.A && zone.a[name]) {
        response.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 60, address: zone.a[name] } as never);
      }
    }
    void send(response);
  });
  await server.listen(0, '127.0.0.1');
  return {
    servers: [`127.0.0.1:${server.address().port}`],
    queries,
    zone,
    close: () => server.close(),
  };
}
