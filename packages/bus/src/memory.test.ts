import assert from 'node:assert/strict';
import { it } from 'node:test';
import { busContract } from './contract.js';
import type { BusLogger } from './logger.js';
import { createMemoryBus } from './memory.js';

/** Keeps the expected "handler failed" warnings of the contract suite out of the test output. */
const quiet: BusLogger = { warn: () => {}, info: () => {} };

busContract('memory', async () => {
  const bus = createMemoryBus({ logger: quiet });
  return { bus, cleanup: () => bus.close() };
});

it('memory: a throwing handler is logged with its subject', async () => {
  const warnings: { obj: object; msg: string }[] = [];
  const bus = createMemoryBus({ logger: { warn: (obj, msg) => warnings.push({ obj, msg }), info: () => {} } });
  bus.subscribe('a.b', () => {
    throw new Error('boom');
  });
  bus.publish('a.b', new Uint8Array(1));
  await bus.flush();
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.msg, 'bus handler failed');
  assert.deepEqual((warnings[0]?.obj as { subject: string }).subject, 'a.b');
  await bus.close();
});

it('memory: payloads are shared, not copied (documented: read-only)', async () => {
  const bus = createMemoryBus({ logger: quiet });
  const got: Uint8Array[] = [];
  bus.subscribe('x', (m) => void got.push(m.data));
  bus.subscribe('x', (m) => void got.push(m.data));
  const data = Uint8Array.of(1, 2, 3);
  bus.publish('x', data);
  await bus.flush();
  assert.equal(got[0], data);
  assert.equal(got[1], data);
  await bus.close();
});

it('memory: order of publish() calls is kept across publishers and subjects', async () => {
  const bus = createMemoryBus({ logger: quiet });
  const got: string[] = [];
  bus.subscribe('o.>', (m) => void got.push(m.subject));
  const want: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const s = `o.${i % 7}.${i % 3}`;
    want.push(s);
    bus.publish(s, new Uint8Array(0));
  }
  await bus.flush();
  assert.deepEqual(got, want);
  await bus.close();
});

it('memory: a busy subscription yields to the event loop', async () => {
  const bus = createMemoryBus({ logger: quiet });
  // Two handlers bouncing a message forever would starve timers if delivery never yielded.
  let bounces = 0;
  bus.subscribe('ping', () => {
    bounces++;
    bus.publish('pong', new Uint8Array(0));
  });
  bus.subscribe('pong', () => bus.publish('ping', new Uint8Array(0)));
  bus.publish('ping', new Uint8Array(0));
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(bounces > 100, `timer fired after ${bounces} bounces`);
  await bus.close();
});

it('memory: throughput, 1M small publishes to one subscriber', async (t) => {
  const bus = createMemoryBus({ logger: quiet });
  const N = 1_000_000;
  const data = new TextEncoder().encode('<message to="a@b/c">hi</message>');
  let n = 0;
  bus.subscribe('xmpp.c2s.node1', () => {
    n++;
  });
  const headers = { sid: 's-1' };
  for (const withHeaders of [false, true]) {
    n = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) bus.publish('xmpp.c2s.node1', data, withHeaders ? headers : undefined);
    const tPub = process.hrtime.bigint();
    await bus.flush();
    const t1 = process.hrtime.bigint();
    assert.equal(n, N);
    const s = Number(t1 - t0) / 1e9;
    t.diagnostic(
      `memory bus ${withHeaders ? 'with 1 header' : 'no headers'}: ${N} msgs in ${s.toFixed(3)} s = ${Math.round(N / s).toLocaleString('en')} msgs/s ` +
        `(publish loop ${(Number(tPub - t0) / 1e6).toFixed(0)} ms)`,
    );
  }
  // Interleaved publish/deliver (a steady flow rather than one burst).
  n = 0;
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < 1000; b++) {
    for (let i = 0; i < 1000; i++) bus.publish('xmpp.c2s.node1', data);
    await Promise.resolve();
  }
  await bus.flush();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  assert.equal(n, N);
  t.diagnostic(`memory bus, batches of 1000: ${Math.round(N / s).toLocaleString('en')} msgs/s`);
  await bus.close();
});
