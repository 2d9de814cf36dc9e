import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsError, resolveServer, seededRandom, SrvCache, weightedOrder, type SrvLookup, type SrvRecord } from './index.js';

const srv = (name: string, port: number, priority: number, weight: number): SrvRecord => ({ name, port, priority, weight });

/** Fake lookup over a zone map; missing names → NODATA. Counts queries. */
function fakeLookup(zone: Record<string, SrvRecord[] | DnsError>): SrvLookup & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (name: string) => {
    calls.push(name);
    const v = zone[name];
    if (v instanceof DnsError) throw v;
    if (!v) throw new DnsError('NODATA', `no SRV for ${name}`, { query: name });
    return v;
  };
  return Object.assign(fn, { calls });
}

test('orders by priority; ties prefer direct TLS (XEP-0368 §3)', async () => {
  const lookup = fakeLookup({
    '_xmpps-server._tcp.example.org': [srv('tls20.example.org', 5270, 20, 0), srv('tls10.example.org', 5270, 10, 0)],
    '_xmpp-server._tcp.example.org': [srv('plain30.example.org', 5269, 30, 0), srv('plain10.example.org.', 5269, 10, 0), srv('plain5.example.org', 5269, 5, 0)],
  });
  const got = await resolveServer('Example.ORG.', { lookup, random: seededRandom(1) });
  assert.deepEqual(got, [
    { host: 'plain5.example.org', port: 5269, directTls: false, source: 'srv' },
    { host: 'tls10.example.org', port: 5270, directTls: true, source: 'srv' },
    { host: 'plain10.example.org', port: 5269, directTls: false, source: 'srv' },
    { host: 'tls20.example.org', port: 5270, directTls: true, source: 'srv' },
    { host: 'plain30.example.org', port: 5269, directTls: false, source: 'srv' },
  ]);
});

test('RFC 2782 weighted selection: first-pick frequency follows the weights (seeded)', () => {
  const group = [srv('a', 1, 0, 10), srv('b', 1, 0, 30), srv('c', 1, 0, 60)];
  const random = seededRandom(42);
  const first: Record<string, number> = { a: 0, b: 0, c: 0 };
  const N = 20000;
  for (let i = 0; i < N; i++) {
    const order = weightedOrder(group, random);
    assert.equal(order.length, 3);
    assert.deepEqual(new Set(order.map((r) => r.name)), new Set(['a', 'b', 'c']));
    first[order[0]!.name]!++;
  }
  // Expected ≈ 10/101, 30/101, 61/101 (integer pick in [0, sum] inclusive).
  assert.ok(Math.abs(first.a! / N - 0.1) < 0.02, `a ${first.a}`);
  assert.ok(Math.abs(first.b! / N - 0.3) < 0.02, `b ${first.b}`);
  assert.ok(Math.abs(first.c! / N - 0.6) < 0.02, `c ${first.c}`);
  // Same seed, same sequence.
  const r1 = seededRandom(7);
  const r2 = seededRandom(7);
  for (let i = 0; i < 20; i++) assert.deepEqual(weightedOrder(group, r1), weightedOrder(group, r2));
});

test('weighted selection: zero-weight records get a small chance only', () => {
  const group = [srv('heavy', 1, 0, 100), srv('zero', 1, 0, 0)];
  const random = seededRandom(3);
  let zeroFirst = 0;
  for (let i = 0; i < 10000; i++) if (weightedOrder(group, random)[0]!.name === 'zero') zeroFirst++;
  assert.ok(zeroFirst > 0 && zeroFirst < 300, `zero first ${zeroFirst}`);
  // Deterministic edges of the algorithm.
  assert.equal(weightedOrder(group, () => 0)[0]!.name, 'zero');
  assert.equal(weightedOrder(group, () => 0.999)[0]!.name, 'heavy');
});

test('within a priority, weights decide; across priorities, priority decides', async () => {
  const lookup = fakeLookup({
    '_xmpp-server._tcp.w.example': [srv('low', 5269, 1, 1), srv('high', 5269, 1, 1000), srv('backup', 5269, 2, 1000)],
  });
  let highFirst = 0;
  const random = seededRandom(99);
  for (let i = 0; i < 1000; i++) {
    const got = await resolveServer('w.example', { lookup, random });
    assert.equal(got.at(-1)!.host, 'backup');
    if (got[0]!.host === 'high') highFirst++;
  }
  assert.ok(highFirst > 980, `high first ${highFirst}`);
});

test('a single SRV with target "." → service decidedly unavailable → []', async () => {
  const lookup = fakeLookup({ '_xmpp-server._tcp.nope.example': [srv('.', 0, 0, 0)] });
  assert.deepEqual(await resolveServer('nope.example', { lookup }), []);
  // Both services ".": still [].
  const both = fakeLookup({ '_xmpp-server._tcp.n.example': [srv('.', 0, 0, 0)], '_xmpps-server._tcp.n.example': [srv('.', 0, 0, 0)] });
  assert.deepEqual(await resolveServer('n.example', { lookup: both }), []);
  // Direct TLS "." does not hide the STARTTLS records.
  const mixed = fakeLookup({ '_xmpps-server._tcp.m.example': [srv('.', 0, 0, 0)], '_xmpp-server._tcp.m.example': [srv('x.m.example', 5269, 0, 0)] });
  assert.deepEqual(await resolveServer('m.example', { lookup: mixed }), [{ host: 'x.m.example', port: 5269, directTls: false, source: 'srv' }]);
});

test('no SRV at all (NODATA / NXDOMAIN) → fallback to domain:5269', async () => {
  const lookup = fakeLookup({ '_xmpps-server._tcp.plain.example': new DnsError('NXDOMAIN', 'nx') });
  assert.deepEqual(await resolveServer('plain.example', { lookup }), [{ host: 'plain.example', port: 5269, directTls: false, source: 'fallback' }]);
  assert.deepEqual(lookup.calls.sort(), ['_xmpp-server._tcp.plain.example', '_xmpps-server._tcp.plain.example']);
});

test('IP-literal domains skip DNS', async () => {
  const lookup = fakeLookup({});
  assert.deepEqual(await resolveServer('192.0.2.1', { lookup }), [{ host: '192.0.2.1', port: 5269, directTls: false, source: 'fallback' }]);
  assert.deepEqual(await resolveServer('[2001:db8::1]', { lookup }), [{ host: '2001:db8::1', port: 5269, directTls: false, source: 'fallback' }]);
  assert.equal(lookup.calls.length, 0);
});

test('static overrides win over DNS', async () => {
  const lookup = fakeLookup({ '_xmpp-server._tcp.s.example': [srv('dns.s.example', 5269, 0, 0)] });
  const staticHosts = { 's.example': 'relay.internal:15269', 'v6.example': '[::1]:5270', 'noport.example': 'h.internal' };
  assert.deepEqual(await resolveServer('S.example', { lookup, staticHosts }), [{ host: 'relay.internal', port: 15269, directTls: false, source: 'static' }]);
  assert.deepEqual(await resolveServer('v6.example', { lookup, staticHosts }), [{ host: '::1', port: 5270, directTls: false, source: 'static' }]);
  assert.deepEqual(await resolveServer('noport.example', { lookup, staticHosts }), [{ host: 'h.internal', port: 5269, directTls: false, source: 'static' }]);
  assert.equal(lookup.calls.length, 0);
  await assert.rejects(resolveServer('s.example', { lookup, staticHosts: { 's.example': 'x:99999' } }), (e: unknown) => e instanceof DnsError && e.code === 'BADNAME');
});

test('hard errors are typed DnsErrors; partial answers are still used', async () => {
  const timeout = new DnsError('TIMEOUT', 't');
  const bothFail = fakeLookup({ '_xmpps-server._tcp.f.example': timeout, '_xmpp-server._tcp.f.example': timeout });
  await assert.rejects(resolveServer('f.example', { lookup: bothFail }), (e: unknown) => e instanceof DnsError && e.code === 'TIMEOUT');
  // One fails, the other has no data: a failure, not a fallback (we don't know there is no SRV).
  const halfNoData = fakeLookup({ '_xmpps-server._tcp.g.example': new DnsError('SERVFAIL', 's') });
  await assert.rejects(resolveServer('g.example', { lookup: halfNoData }), (e: unknown) => e instanceof DnsError && e.code === 'SERVFAIL');
  const partial = fakeLookup({ '_xmpps-server._tcp.p.example': timeout, '_xmpp-server._tcp.p.example': [srv('x.p.example', 5269, 0, 0)] });
  assert.deepEqual(await resolveServer('p.example', { lookup: partial }), [{ host: 'x.p.example', port: 5269, directTls: false, source: 'srv' }]);
  await assert.rejects(resolveServer('bad..example', { lookup: partial }), (e: unknown) => e instanceof DnsError && e.code === 'BADNAME');
});

test('cache: positive for maxAge, negative briefly, errors never', async () => {
  let now = 0;
  const cache = new SrvCache({ maxAgeMs: 1000, negativeMaxAgeMs: 100, now: () => now });
  const zone: Record<string, SrvRecord[] | DnsError> = { '_xmpp-server._tcp.c.example': [srv('x.c.example', 5269, 0, 0)] };
  const lookup = fakeLookup(zone);
  await resolveServer('c.example', { lookup, cache });
  assert.equal(lookup.calls.length, 2);
  now = 50;
  await resolveServer('c.example', { lookup, cache });
  assert.equal(lookup.calls.length, 2, 'both positive and negative answers cached');
  now = 150; // negative (xmpps NODATA) expired, positive not
  await resolveServer('c.example', { lookup, cache });
  assert.deepEqual(lookup.calls.slice(2), ['_xmpps-server._tcp.c.example']);
  now = 2000;
  await resolveServer('c.example', { lookup, cache });
  assert.equal(lookup.calls.length, 5);
  // Errors are not cached.
  zone['_xmpp-server._tcp.e.example'] = new DnsError('TIMEOUT', 't');
  zone['_xmpps-server._tcp.e.example'] = new DnsError('TIMEOUT', 't');
  await assert.rejects(resolveServer('e.example', { lookup, cache }));
  await assert.rejects(resolveServer('e.example', { lookup, cache }));
  assert.equal(lookup.calls.filter((c) => c.endsWith('e.example') && !c.endsWith('c.example')).length, 4);
});
