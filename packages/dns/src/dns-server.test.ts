/** Integration: a real DNS server (dns2, UDP on a random loopback port) behind node:dns Resolver. */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { Packet, UDPServer } from 'dns2';
import { DnsError, ServerResolver, resolveServer } from './index.js';

type Srv = { target: string; port: number; priority: number; weight: number };
const zone: Record<string, Srv[]> = {
  '_xmpps-server._tcp.zone.test': [{ target: 'tls.zone.test', port: 5223, priority: 10, weight: 0 }],
  '_xmpp-server._tcp.zone.test': [
    { target: 'backup.zone.test', port: 5269, priority: 20, weight: 0 },
    { target: 'primary.zone.test', port: 5269, priority: 10, weight: 0 },
    { target: 'first.zone.test', port: 5270, priority: 5, weight: 0 },
  ],
  '_xmpp-server._tcp.dot.test': [{ target: '', port: 0, priority: 0, weight: 0 }],
};
const queries: string[] = [];
let server: UDPServer;
let servers: string[];
let blackhole: Socket;
let blackholeServers: string[];

before(async () => {
  server = new UDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    for (const q of request.questions) {
      queries.push(q.name);
      for (const r of zone[q.name.toLowerCase()] ?? []) {
        response.answers.push({ name: q.name, type: Packet.TYPE.SRV, class: Packet.CLASS.IN, ttl: 300, ...r } as never);
      }
    }
    void send(response);
  });
  await server.listen(0, '127.0.0.1');
  servers = [`127.0.0.1:${server.address().port}`];
  // A UDP socket that swallows every query.
  blackhole = createSocket('udp4');
  blackhole.on('message', () => {});
  await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', r));
  blackholeServers = [`127.0.0.1:${blackhole.address().port}`];
});

after(() => {
  server.close();
  blackhole.close();
});

test('resolves and orders SRV records from a real server', async () => {
  const got = await resolveServer('zone.test', { servers, timeoutMs: 2000 });
  assert.deepEqual(got, [
    { host: 'first.zone.test', port: 5270, directTls: false, source: 'srv' },
    { host: 'tls.zone.test', port: 5223, directTls: true, source: 'srv' },
    { host: 'primary.zone.test', port: 5269, directTls: false, source: 'srv' },
    { host: 'backup.zone.test', port: 5269, directTls: false, source: 'srv' },
  ]);
});

test('cache: the second call does not reach the server', async () => {
  const resolver = new ServerResolver({ servers, timeoutMs: 2000 });
  const before = queries.length;
  const a = await resolver.resolve('zone.test');
  const afterFirst = queries.length;
  assert.equal(afterFirst - before, 2, 'one query per service');
  const b = await resolver.resolve('zone.test');
  assert.deepEqual(b, a);
  assert.equal(queries.length, afterFirst, 'served from cache');
  // The negative (no SRV) answer is cached too.
  await resolver.resolve('empty.test');
  const n = queries.length;
  await resolver.resolve('empty.test');
  assert.equal(queries.length, n);
});

test('zone without SRV → fallback to domain:5269', async () => {
  assert.deepEqual(await resolveServer('empty.test', { servers, timeoutMs: 2000 }), [
    { host: 'empty.test', port: 5269, directTls: false, source: 'fallback' },
  ]);
});

test('target "." → []', async () => {
  assert.deepEqual(await resolveServer('dot.test', { servers, timeoutMs: 2000 }), []);
});

test('a server that never answers → DnsError TIMEOUT within the timeout', async () => {
  const t0 = Date.now();
  await assert.rejects(
    resolveServer('zone.test', { servers: blackholeServers, timeoutMs: 300 }),
    (e: unknown) => e instanceof DnsError && e.code === 'TIMEOUT',
  );
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 250 && elapsed < 2000, `took ${elapsed} ms`);
});
