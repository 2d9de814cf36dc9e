/**
 * Pairing, activation on the holding instance (over the bus), and the
 * relay: integrity, half-close, backpressure, limits and timeouts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { createMemoryBus, NoRespondersError, type Bus } from '@hyphae/bus';
import { Holder, TokenBucket, type HolderLimits } from './holder.js';
import { REP, connectRequest, failureReply } from './socks5.js';
import { RESULT_HEADER, streamSubject, type ActivateRequest } from './hash.js';
import { metric, quietLogger, randomHash, sleep, socksConnect, tcp, testMetrics, waitFor } from './test-helpers.js';

const enc = new TextEncoder();

async function startHolder(limits: Partial<HolderLimits> = {}, bus: Bus = createMemoryBus()) {
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
      if (bus.isConnected()) await bus.close();
    },
  };
}

async function activate(bus: Bus, hash: string, requester = 'alice@example.org/a'): Promise<string> {
  const req: ActivateRequest = { sid: 's1', requester, requesterBare: requester.split('/')[0] ?? requester, target: 'bob@example.org/b' };
  const reply = await bus.request(streamSubject(hash), enc.encode(JSON.stringify(req)));
  return String(reply.headers[RESULT_HEADER]);
}

/** Target connects first, then the requester (XEP-0065 §6.3.2, §6.3.4). */
async function pair(port: number, hash = randomHash()) {
  const target = await socksConnect(port, hash);
  const requester = await socksConnect(port, hash);
  return { hash, target, requester };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Writes `data` in 64 KiB chunks, honouring the socket's backpressure, then FIN. */
async function writeAll(socket: Socket, data: Buffer, progress?: (sent: number) => void): Promise<void> {
  for (let off = 0; off < data.length; off += 65536) {
    const ok = socket.write(data.subarray(off, off + 65536));
    progress?.(Math.min(data.length, off + 65536));
    if (!ok) await once(socket, 'drain');
  }
  socket.end();
}

test('activation: one side only, ok, already active, per-user limit, unknown hash', async () => {
  const p = await startHolder({ maxStreamsPerUser: 1 });
  try {
    const hash = randomHash();
    const target = await socksConnect(p.port, hash);
    assert.equal(await activate(p.bus, hash), 'one-side');
    const requester = await socksConnect(p.port, hash);
    assert.equal(await activate(p.bus, hash), 'ok');
    assert.equal(await activate(p.bus, hash), 'active');

    // A second stream of the same user (another resource too) is over the limit.
    const second = await pair(p.port);
    assert.equal(await activate(p.bus, second.hash, 'alice@example.org/other'), 'limit');
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'max-streams-per-user' }), 1);
    // Someone else is not.
    const third = await pair(p.port);
    assert.equal(await activate(p.bus, third.hash, 'carol@example.org/c'), 'ok');
    // Once the first ends, alice may activate again.
    target.socket.destroy();
    requester.socket.destroy();
    await waitFor(() => p.holder.socketsOf(hash).length === 0, 3000, 'first stream freed');
    assert.equal(await activate(p.bus, second.hash, 'alice@example.org/other'), 'ok');

    await assert.rejects(activate(p.bus, randomHash()), NoRespondersError);
    for (const s of [second, third]) {
      s.target.socket.destroy();
      s.requester.socket.destroy();
    }
    await waitFor(() => p.holder.size === 0, 3000, 'all freed');
    assert.equal(await metric(p.metrics.proxyStreams), 0);
  } finally {
    await p.close();
  }
});

test('a few MB both ways at once arrive intact; half-close is relayed', async () => {
  const p = await startHolder();
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await p.metrics.proxyStreams.get().then((g) => g.values[0]?.value), 1);
    assert.equal(await activate(p.bus, hash), 'ok');
    const up = randomBytes(4 * 1024 * 1024 + 123);
    const down = randomBytes(3 * 1024 * 1024 + 7);
    const [gotAtTarget, gotAtRequester] = await Promise.all([
      target.reader.readToEnd(15_000),
      requester.reader.readToEnd(15_000),
      writeAll(requester.socket, up),
      writeAll(target.socket, down),
    ]);
    assert.equal(gotAtTarget.length, up.length);
    assert.equal(sha(gotAtTarget), sha(up));
    assert.equal(gotAtRequester.length, down.length);
    assert.equal(sha(gotAtRequester), sha(down));
    assert.equal(await metric(p.metrics.proxyBytes, { direction: 'to-target' }), up.length);
    assert.equal(await metric(p.metrics.proxyBytes, { direction: 'to-requester' }), down.length);
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed after both FINs');
    assert.equal(await metric(p.metrics.proxyStreams), 0);
  } finally {
    await p.close();
  }
});

test('half-close: the requester finishes sending, the target still answers', async () => {
  const p = await startHolder();
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await activate(p.bus, hash), 'ok');
    requester.socket.end('question');
    assert.equal((await target.reader.readToEnd()).toString(), 'question');
    assert.equal(requester.reader.ended, false, 'the other direction is still open');
    target.socket.write('answer, ');
    await sleep(20);
    target.socket.end('in two parts');
    assert.equal((await requester.reader.readToEnd()).toString(), 'answer, in two parts');
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed');
  } finally {
    await p.close();
  }
});

test('bytes sent before activation are ignored, never relayed (XEP-0065 §10.1)', async () => {
  const p = await startHolder();
  try {
    const { hash, target, requester } = await pair(p.port);
    requester.socket.write('too early');
    target.socket.write('also too early');
    await sleep(50);
    assert.equal(target.reader.pending(), 0);
    assert.equal(requester.reader.pending(), 0);
    assert.equal(await activate(p.bus, hash), 'ok');
    requester.socket.end('after activation');
    assert.equal((await target.reader.readToEnd()).toString(), 'after activation');
    target.socket.end();
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed');
  } finally {
    await p.close();
  }
});

test('backpressure: a reader that stops reading stalls the sender; the proxy buffers a bounded amount', async (t) => {
  const p = await startHolder();
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await activate(p.bus, hash), 'ok');
    const [proxyToTarget] = p.holder.socketsOf(hash);
    assert.ok(proxyToTarget);
    target.socket.pause(); // the target reads nothing for now
    const data = randomBytes(48 * 1024 * 1024);
    let sent = 0;
    const writing = writeAll(requester.socket, data, (n) => { sent = n; });
    let maxBuffered = 0;
    let lastSent = -1;
    let stableSince = Date.now();
    // Sample until the sender has been stuck for 300 ms.
    while (Date.now() - stableSince < 300) {
      maxBuffered = Math.max(maxBuffered, proxyToTarget.writableLength);
      if (sent !== lastSent) {
        lastSent = sent;
        stableSince = Date.now();
      }
      await sleep(5);
    }
    t.diagnostic(`sender stalled after ${sent} bytes; proxy write buffer toward the target peaked at ${maxBuffered} bytes`);
    assert.ok(sent < data.length, `the sender is stalled (${sent} of ${data.length} bytes written)`);
    assert.ok(maxBuffered <= 256 * 1024, `the proxy's write buffer toward the target stayed bounded (max ${maxBuffered} bytes)`);
    // The reader catches up: everything arrives, in order.
    target.socket.resume();
    const got = await target.reader.readToEnd(30_000);
    await writing;
    assert.equal(got.length, data.length);
    assert.equal(sha(got), sha(data));
    target.socket.end();
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed');
  } finally {
    await p.close();
  }
});

test('idle streams are closed after idleTimeoutMs and everything is freed', async () => {
  const p = await startHolder({ idleTimeoutMs: 200 });
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await activate(p.bus, hash), 'ok');
    requester.socket.write('some traffic');
    await target.reader.read(12);
    const t0 = Date.now();
    await Promise.all([target.reader.waitClosed(3000), requester.reader.waitClosed(3000)]);
    assert.ok(Date.now() - t0 >= 150, 'closed after the idle time, not before');
    await waitFor(() => p.holder.size === 0 && p.holder.openSockets === 0, 3000, 'freed');
    assert.equal(await metric(p.metrics.proxyStreams), 0);
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'idle' }), 1);
  } finally {
    await p.close();
  }
});

test('connections not activated within pairingTimeoutMs are closed and freed', async () => {
  const p = await startHolder({ pairingTimeoutMs: 250 });
  try {
    const lone = await socksConnect(p.port, randomHash());
    const both = await pair(p.port);
    assert.equal(await metric(p.metrics.proxyStreams), 2);
    await Promise.all([lone.reader.waitClosed(3000), both.target.reader.waitClosed(3000), both.requester.reader.waitClosed(3000)]);
    await waitFor(() => p.holder.size === 0 && p.holder.openSockets === 0, 3000, 'freed');
    assert.equal(await metric(p.metrics.proxyStreams), 0);
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'pairing-timeout' }), 2);
    // Activation after the timeout finds nothing.
    await assert.rejects(activate(p.bus, both.hash), NoRespondersError);
  } finally {
    await p.close();
  }
});

test('a connection closed while waiting leaves; the stream goes with its last connection', async () => {
  const p = await startHolder();
  try {
    const { hash, target, requester } = await pair(p.port);
    target.socket.end();
    await waitFor(() => p.holder.socketsOf(hash).length === 1, 3000, 'target gone');
    assert.equal(await activate(p.bus, hash), 'one-side');
    requester.socket.destroy();
    await waitFor(() => p.holder.size === 0, 3000, 'stream freed');
    assert.equal(await metric(p.metrics.proxyStreams), 0);
  } finally {
    await p.close();
  }
});

test('a reset on one side closes the other', async () => {
  const p = await startHolder();
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await activate(p.bus, hash), 'ok');
    requester.socket.write('x');
    await target.reader.read(1);
    requester.socket.resetAndDestroy();
    await target.reader.waitClosed(3000);
    await waitFor(() => p.holder.size === 0 && p.holder.openSockets === 0, 3000, 'freed');
  } finally {
    await p.close();
  }
});

test('maxBytes: the stream relays that many bytes, then both sides are closed', async () => {
  const p = await startHolder({ maxBytes: 100_000 });
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await activate(p.bus, hash), 'ok');
    const data = randomBytes(300_000);
    requester.socket.write(data);
    const got = await target.reader.readToEnd();
    assert.equal(got.length, 100_000);
    assert.ok(got.equals(data.subarray(0, 100_000)));
    await requester.reader.waitClosed();
    target.socket.end();
    requester.socket.end();
    await waitFor(() => p.holder.size === 0, 3000, 'freed');
    assert.equal(await metric(p.metrics.proxyRefused, { reason: 'max-bytes' }), 1);
    assert.equal(await metric(p.metrics.proxyStreams), 0);
  } finally {
    await p.close();
  }
});

test('maxBytesPerSecond caps each direction (measured roughly)', async (t) => {
  const rate = 256 * 1024;
  const p = await startHolder({ maxBytesPerSecond: rate });
  try {
    const { hash, target, requester } = await pair(p.port);
    assert.equal(await activate(p.bus, hash), 'ok');
    const data = randomBytes(3 * rate);
    const t0 = Date.now();
    void writeAll(requester.socket, data);
    const got = await target.reader.readToEnd(10_000);
    const secs = (Date.now() - t0) / 1000;
    t.diagnostic(`${data.length} bytes at ${rate} B/s took ${secs.toFixed(2)} s`);
    assert.equal(got.length, data.length);
    // One second of burst, then the rate: ~2 s for three seconds' worth.
    assert.ok(secs >= 1.6 && secs <= 4, `took ${secs.toFixed(2)} s for ${data.length} bytes at ${rate} B/s`);
    target.socket.end();
  } finally {
    await p.close();
  }
});

test('token bucket: one second of burst, then the rate', () => {
  let t = 0;
  const b = new TokenBucket(1000, () => t);
  assert.equal(b.take(1000), 0);
  assert.equal(b.take(500), 500);
  t += 500;
  assert.equal(b.take(0), 0);
  t += 10_000;
  assert.equal(b.take(1000), 0, 'never more than one second banked');
  assert.equal(b.take(1), 1);
});

test('stop() closes every connection and the listener', async () => {
  const p = await startHolder();
  const { hash, target, requester } = await pair(p.port);
  assert.equal(await activate(p.bus, hash), 'ok');
  const waiting = await socksConnect(p.port, randomHash());
  await p.close();
  await Promise.all([target.reader.waitClosed(), requester.reader.waitClosed(), waiting.reader.waitClosed()]);
  assert.equal(p.holder.size, 0);
  assert.equal(await metric(p.metrics.proxyStreams), 0);
});

test('the second party on another instance is forwarded to the holder: pairing, activation, relay, half-close, refusals', async () => {
  const bus = createMemoryBus();
  const a = await startHolder({}, bus);
  const b = await startHolder({}, bus);
  try {
    const hash = randomHash();
    const target = await socksConnect(a.port, hash);
    // The requester reaches B (same StreamHost JID, another address): B forwards it to A.
    const requester = await socksConnect(b.port, hash);
    await waitFor(() => a.holder.socketsOf(hash).length === 2, 3000, 'paired at the holder');
    assert.equal(b.holder.size, 0, 'B holds nothing');
    assert.equal(b.holder.forwarded, 1);
    // A third party is refused, whichever instance it reaches.
    const greetAndConnect = async (port: number): Promise<Buffer> => {
      const raw = await tcp(port);
      raw.socket.write(Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from(connectRequest(hash))]));
      const got = await raw.reader.readToEnd();
      raw.socket.end();
      return got;
    };
    assert.equal((await greetAndConnect(a.port)).toString('hex'), '0500' + Buffer.from(failureReply(REP.notAllowed)).toString('hex'));
    assert.equal((await greetAndConnect(b.port)).toString('hex'), '0500' + Buffer.from(failureReply(REP.notAllowed)).toString('hex'));

    // Early bytes through the forwarder are ignored too.
    requester.socket.write('too early');
    await sleep(30);
    assert.equal(target.reader.pending(), 0);
    assert.equal(await activate(bus, hash), 'ok');
    const up = randomBytes(2 * 1024 * 1024 + 5);
    const down = randomBytes(1024 * 1024 + 3);
    const [atTarget, atRequester] = await Promise.all([
      target.reader.readToEnd(15_000),
      requester.reader.readToEnd(15_000),
      writeAll(requester.socket, up),
      writeAll(target.socket, down),
    ]);
    assert.equal(sha(atTarget), sha(up));
    assert.equal(sha(atRequester), sha(down));
    await waitFor(() => a.holder.size === 0 && a.holder.openSockets === 0 && b.holder.openSockets === 0 && b.holder.forwarded === 0, 3000, 'all freed');
    assert.equal(await metric(a.metrics.proxyStreams), 0);
    assert.equal(await metric(a.metrics.proxyBytes, { direction: 'to-target' }), up.length);
  } finally {
    await a.close();
    await b.close();
    await bus.close();
  }
});

test('a forwarded connection ends with its holder: pairing timeout at the holder closes both legs', async () => {
  const bus = createMemoryBus();
  const a = await startHolder({ pairingTimeoutMs: 300 }, bus);
  const b = await startHolder({ pairingTimeoutMs: 5000 }, bus);
  try {
    const hash = randomHash();
    const target = await socksConnect(a.port, hash);
    const requester = await socksConnect(b.port, hash);
    await Promise.all([target.reader.waitClosed(3000), requester.reader.waitClosed(3000)]);
    await waitFor(() => a.holder.size === 0 && a.holder.openSockets === 0, 3000, 'freed at the holder');
    // The requester's leg at B got FIN (half-close relayed); it goes once the client closes its side too.
    requester.socket.end();
    await waitFor(() => b.holder.forwarded === 0 && b.holder.openSockets === 0, 3000, 'forwarder sockets closed');
  } finally {
    await a.close();
    await b.close();
    await bus.close();
  }
});

test('a refusal from the holder reaches the forwarded client as it is', async () => {
  const bus = createMemoryBus();
  const b = await startHolder({}, bus);
  // A stand-in holder: claims the hash on the bus, then refuses the forwarded CONNECT with REP 5.
  const fake = createServer((s) => {
    s.once('data', () => s.end(Buffer.concat([Buffer.from([5, 0]), Buffer.from(failureReply(REP.connectionRefused))])));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
  const addr = fake.address();
  const fakePort = typeof addr === 'object' && addr ? addr.port : 0;
  const hash = randomHash();
  const sub = bus.subscribe(streamSubject(hash), (msg) => {
    msg.respond(enc.encode(JSON.stringify({ host: '127.0.0.1', port: fakePort })), { [RESULT_HEADER]: 'here' });
  });
  try {
    const raw = await tcp(b.port);
    raw.socket.write(Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from(connectRequest(hash))]));
    const got = await raw.reader.readToEnd();
    assert.equal(got.toString('hex'), '0500' + Buffer.from(failureReply(REP.connectionRefused)).toString('hex'));
    raw.socket.end();
    await waitFor(() => b.holder.forwarded === 0 && b.holder.openSockets === 0, 3000, 'forwarder freed');
  } finally {
    sub.unsubscribe();
    await b.close();
    await new Promise<void>((r) => fake.close(() => r()));
    await bus.close();
  }
});
