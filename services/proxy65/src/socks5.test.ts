/**
 * The SOCKS5 handshake (RFC 1928, as profiled by XEP-0065), byte by byte,
 * against a real listener: what is accepted, and every way to be refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBus } from '@hyphae/bus';
import { Holder, type HolderLimits } from './holder.js';
import { REP, parseGreeting, parseRequest, successReply, failureReply } from './socks5.js';
import { metric, quietLogger, randomHash, request, sleep, socksConnect, tcp, testMetrics, waitFor } from './test-helpers.js';

async function startHolder(limits: Partial<HolderLimits> = {}) {
  const bus = createMemoryBus();
  const metrics = testMetrics();
  const holder = new Holder({
    bus, metrics, logger: quietLogger(), host: '127.0.0.1', port: 0,
    limits: { maxStreams: 100, maxStreamsPerUser: 10, pairingTimeoutMs: 10_000, idleTimeoutMs: 10_000, maxBytesPerSecond: 0, maxBytes: 0, ...limits },
  });
  const port = await holder.listen();
  return {
    bus, metrics, holder, port,
    async close() {
      await holder.stop();
      await bus.close();
    },
  };
}

const METHOD_OK = Buffer.from([5, 0]);
const fail = (rep: number): Buffer => Buffer.from(failureReply(rep));

/** Sends `chunks` (one write each), then expects exactly `reply` before the proxy closes. */
async function expectRefused(port: number, chunks: Buffer[], reply: Buffer): Promise<void> {
  const { socket, reader } = await tcp(port);
  for (const c of chunks) socket.write(c);
  const got = await reader.readToEnd();
  assert.equal(got.toString('hex'), reply.toString('hex'));
  socket.end();
  await reader.waitClosed();
}

test('parsers: need more, done, refuse', () => {
  assert.deepEqual(parseGreeting(Buffer.from([])), { kind: 'more' });
  assert.deepEqual(parseGreeting(Buffer.from([5])), { kind: 'more' });
  assert.deepEqual(parseGreeting(Buffer.from([5, 2, 2])), { kind: 'more' });
  assert.deepEqual(parseGreeting(Buffer.from([5, 2, 2, 0, 9])), { kind: 'done', used: 4, value: null });
  assert.equal(parseGreeting(Buffer.from([4])).kind, 'refuse');
  const noAuth = parseGreeting(Buffer.from([5, 1, 2]));
  assert.ok(noAuth.kind === 'refuse' && noAuth.reason === 'auth' && Buffer.from(noAuth.reply ?? []).equals(Buffer.from([5, 0xff])));
  const zero = parseGreeting(Buffer.from([5, 0]));
  assert.ok(zero.kind === 'refuse' && zero.reason === 'auth');

  const h = randomHash();
  const full = request(h);
  for (let i = 0; i < full.length; i++) assert.deepEqual(parseRequest(full.subarray(0, i)), { kind: 'more' }, `prefix of ${i} bytes`);
  assert.deepEqual(parseRequest(Buffer.concat([full, Buffer.from('extra')])), { kind: 'done', used: full.length, value: { addr: h, hash: h } });
  const upper = parseRequest(request(h.toUpperCase()));
  assert.ok(upper.kind === 'done' && upper.value.hash === h && upper.value.addr === h.toUpperCase());
  // Refused as soon as the deciding byte is there.
  assert.equal(parseRequest(Buffer.from([4])).kind, 'refuse');
  assert.equal(parseRequest(Buffer.from([5, 2])).kind, 'refuse');
  assert.equal(parseRequest(Buffer.from([5, 1, 0, 1])).kind, 'refuse');
  assert.equal(parseRequest(Buffer.from([5, 1, 0, 3, 39])).kind, 'refuse');
  assert.deepEqual(Buffer.from(successReply(h)), Buffer.concat([Buffer.from([5, 0, 0, 3, 40]), Buffer.from(h), Buffer.from([0, 0])]));
});

test('a good handshake sent one byte at a time; pipelined in one write too', async () => {
  const p = await startHolder();
  try {
    const hash = randomHash();
    const { socket, reader } = await tcp(p.port);
    for (const b of [5, 2, 2, 0]) {
      assert.equal(reader.pending(), 0, 'no reply before the greeting is complete');
      socket.write(Buffer.from([b]));
      await sleep(5);
    }
    assert.deepEqual(await reader.read(2), METHOD_OK);
    const req = request(hash.toUpperCase());
    for (const b of req) {
      assert.equal(reader.pending(), 0, 'no reply before the request is complete');
      socket.write(Buffer.from([b]));
      await sleep(2);
    }
    // BND.ADDR/BND.PORT echo DST.ADDR/DST.PORT as sent (XEP-0065 §6.3.2).
    assert.deepEqual(await reader.read(47), Buffer.concat([Buffer.from([5, 0, 0, 3, 40]), Buffer.from(hash.toUpperCase()), Buffer.from([0, 0])]));

    // The second party, everything in one write; pairs under the lower-case hash.
    const second = await tcp(p.port);
    second.socket.write(Buffer.concat([Buffer.from([5, 1, 0]), request(hash)]));
    assert.deepEqual(await second.reader.read(2 + 47), Buffer.concat([METHOD_OK, Buffer.from(successReply(hash))]));
    assert.equal(p.holder.size, 1);
    assert.equal(p.holder.socketsOf(hash).length, 2);
    socket.destroy();
    second.socket.destroy();
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed');
    assert.equal(await metric(p.metrics.proxyStreams), 0);
  } finally {
    await p.close();
  }
});

test('greeting: not version 5 → closed without a reply; no "no authentication" method → X\'FF\' and closed', async () => {
  const p = await startHolder();
  try {
    await expectRefused(p.port, [Buffer.from([4, 1, 0])], Buffer.alloc(0));
    await expectRefused(p.port, [Buffer.from([5, 1, 2])], Buffer.from([5, 0xff]));
    await expectRefused(p.port, [Buffer.from([5, 2, 1, 2])], Buffer.from([5, 0xff]));
    await expectRefused(p.port, [Buffer.from([5, 0])], Buffer.from([5, 0xff]));
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'version' }), 1);
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'auth' }), 3);
  } finally {
    await p.close();
  }
});

test('request: each bad field gets its RFC 1928 reply code, then the connection is closed', async () => {
  const p = await startHolder();
  const greet = Buffer.from([5, 1, 0]);
  const h = randomHash();
  try {
    // VER ≠ 5 → general failure
    await expectRefused(p.port, [greet, request(h, { ver: 4 })], Buffer.concat([METHOD_OK, fail(REP.generalFailure)]));
    // BIND, UDP ASSOCIATE → command not supported
    await expectRefused(p.port, [greet, request(h, { cmd: 2 })], Buffer.concat([METHOD_OK, fail(REP.commandNotSupported)]));
    await expectRefused(p.port, [greet, request(h, { cmd: 3 })], Buffer.concat([METHOD_OK, fail(REP.commandNotSupported)]));
    // IPv4, IPv6 → address type not supported (decided on ATYP alone)
    await expectRefused(p.port, [greet, Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 0, 0])], Buffer.concat([METHOD_OK, fail(REP.addressTypeNotSupported)]));
    await expectRefused(p.port, [greet, Buffer.from([5, 1, 0, 4])], Buffer.concat([METHOD_OK, fail(REP.addressTypeNotSupported)]));
    // A DOMAINNAME that is not 40 hex digits → host unreachable
    await expectRefused(p.port, [greet, request(h.slice(0, 39))], Buffer.concat([METHOD_OK, fail(REP.hostUnreachable)]));
    await expectRefused(p.port, [greet, request(h + 'a')], Buffer.concat([METHOD_OK, fail(REP.hostUnreachable)]));
    await expectRefused(p.port, [greet, request('g' + h.slice(1))], Buffer.concat([METHOD_OK, fail(REP.hostUnreachable)]));
    await expectRefused(p.port, [greet, request('example.org'.padEnd(40, 'x'))], Buffer.concat([METHOD_OK, fail(REP.hostUnreachable)]));
    // DST.PORT must be 0 (XEP-0065 §6.3.2) → not allowed by ruleset
    await expectRefused(p.port, [greet, request(h, { port: 1080 })], Buffer.concat([METHOD_OK, fail(REP.notAllowed)]));
    await expectRefused(p.port, [greet, request(h, { port: 1 })], Buffer.concat([METHOD_OK, fail(REP.notAllowed)]));
    for (const [reason, n] of [['version', 1], ['command', 2], ['address-type', 2], ['address', 4], ['port', 2]] as const) {
      assert.equal(await metric(p.metrics.proxyRefused, { reason }), n, reason);
    }
    assert.equal(p.holder.size, 0, 'no stream was created');
    await waitFor(() => p.holder.openSockets === 0, 3000, 'sockets closed');
  } finally {
    await p.close();
  }
});

test('a third connection for a hash is refused; maxStreams refuses new hashes', async () => {
  const p = await startHolder({ maxStreams: 1 });
  try {
    const h = randomHash();
    const a = await socksConnect(p.port, h);
    const b = await socksConnect(p.port, h);
    await expectRefused(p.port, [Buffer.from([5, 1, 0]), request(h)], Buffer.concat([METHOD_OK, fail(REP.notAllowed)]));
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'duplicate' }), 1);
    await expectRefused(p.port, [Buffer.from([5, 1, 0]), request(randomHash())], Buffer.concat([METHOD_OK, fail(REP.generalFailure)]));
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'max-streams' }), 1);
    assert.equal(p.holder.hasRoom(), false);
    // The first two are untouched.
    assert.equal(a.reader.closed || b.reader.closed, false);
    a.socket.destroy();
    b.socket.destroy();
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed');
    assert.equal(p.holder.hasRoom(), true);
    const c = await socksConnect(p.port, randomHash());
    c.socket.destroy();
  } finally {
    await p.close();
  }
});

test('a connection that does not finish its handshake is closed after pairingTimeoutMs', async () => {
  const p = await startHolder({ pairingTimeoutMs: 200 });
  try {
    const { socket, reader } = await tcp(p.port);
    socket.write(Buffer.from([5, 1]));
    const t0 = Date.now();
    await reader.waitClosed(3000);
    assert.ok(Date.now() - t0 >= 150, 'not before the timeout');
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'handshake-timeout' }), 1);
    await waitFor(() => p.holder.openSockets === 0, 3000, 'socket gone');
  } finally {
    await p.close();
  }
});
