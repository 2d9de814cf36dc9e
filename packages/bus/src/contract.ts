import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusClosedError, BusError, BusTimeoutError, NoRespondersError } from './errors.js';
import { TRACE_HEADER, currentTrace, runWithTrace } from './trace.js';
import type { Bus, BusMessage, BusStatus } from './types.js';

/*
 * The one behavioural suite both bus implementations must pass (invariant 4:
 * same behaviour in both modes). `other`, when given, is a second connection
 * to the same broker: messages are published on `bus` and received on
 * `other`, so delivery across connections is what gets tested. Without it,
 * both roles fall to `bus`.
 *
 * Tests are written for the weaker of the two: a NATS subscription is only
 * known to be active at the server once flush() on its connection resolved,
 * and a published message has only reached the server after flush().
 */

export interface ContractEnv {
  bus: Bus;
  other?: Bus;
  cleanup(): Promise<void>;
}

const te = new TextEncoder();
const td = new TextDecoder();
const enc = (s: string): Uint8Array => te.encode(s);
const dec = (b: Uint8Array): string => td.decode(b);

let seq = 0;
/** A subject prefix no other test uses, so tests sharing a server cannot see each other's traffic. */
function fresh(): string {
  return `t${process.pid}x${Date.now().toString(36)}x${++seq}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until cond() holds, failing with `what` after timeoutMs. */
async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Collects what a subscription receives. */
function collector(): { msgs: BusMessage[]; handler: (m: BusMessage) => void; texts(): string[] } {
  const msgs: BusMessage[] = [];
  return { msgs, handler: (m) => void msgs.push(m), texts: () => msgs.map((m) => dec(m.data)) };
}

export function busContract(name: string, make: () => Promise<ContractEnv>): void {
  describe(`bus contract: ${name}`, () => {
    /** Runs a test with a fresh environment: pub publishes, sub subscribes (a different connection when available). */
    function test(title: string, fn: (pub: Bus, sub: Bus, env: ContractEnv) => Promise<void>): void {
      it(title, async () => {
        const env = await make();
        try {
          await fn(env.bus, env.other ?? env.bus, env);
        } finally {
          await env.cleanup();
        }
      });
    }

    test('exact subscription gets its subject only', async (pub, sub) => {
      const p = fresh();
      const c = collector();
      sub.subscribe(`${p}.a.b`, c.handler);
      await sub.flush();
      pub.publish(`${p}.a.b`, enc('1'));
      pub.publish(`${p}.a.c`, enc('no'));
      pub.publish(`${p}.a`, enc('no'));
      pub.publish(`${p}.a.b.c`, enc('no'));
      pub.publish(`${p}.a.b`, enc('2'));
      await pub.flush();
      await until(() => c.msgs.length >= 2, 'two messages');
      await sleep(20);
      assert.deepEqual(c.texts(), ['1', '2']);
      assert.equal(c.msgs[0]?.subject, `${p}.a.b`);
    });

    test('wildcards * and > match as in NATS', async (pub, sub) => {
      const p = fresh();
      const star = collector();
      const tail = collector();
      const mid = collector();
      sub.subscribe(`${p}.*`, star.handler);
      sub.subscribe(`${p}.>`, tail.handler);
      sub.subscribe(`${p}.*.x`, mid.handler);
      await sub.flush();
      for (const s of [`${p}.a`, `${p}.a.x`, `${p}.a.b.x`, `${p}.b`, p]) pub.publish(s, enc(s));
      await pub.flush();
      await until(() => tail.msgs.length >= 4 && star.msgs.length >= 2 && mid.msgs.length >= 1, 'wildcard deliveries');
      await sleep(20);
      assert.deepEqual(star.texts(), [`${p}.a`, `${p}.b`]);
      assert.deepEqual(tail.texts(), [`${p}.a`, `${p}.a.x`, `${p}.a.b.x`, `${p}.b`]);
      assert.deepEqual(mid.texts(), [`${p}.a.x`]);
      // The subject of a message is the published one, not the pattern.
      assert.equal(star.msgs[0]?.subject, `${p}.a`);
    });

    test('queue groups: each message once per group, plain subscribers get all', async (pub, sub) => {
      const p = fresh();
      const g1 = [collector(), collector(), collector()];
      const g2 = [collector(), collector()];
      const plain = collector();
      for (const c of g1) sub.subscribe(`${p}.work`, c.handler, { queue: 'g1' });
      // A group spans subscriptions with different (matching) subjects, as in NATS.
      sub.subscribe(`${p}.work`, (g2[0] as ReturnType<typeof collector>).handler, { queue: 'g2' });
      sub.subscribe(`${p}.*`, (g2[1] as ReturnType<typeof collector>).handler, { queue: 'g2' });
      sub.subscribe(`${p}.work`, plain.handler);
      await sub.flush();
      const N = 300;
      for (let i = 0; i < N; i++) pub.publish(`${p}.work`, enc(String(i)));
      await pub.flush();
      const count = (g: ReturnType<typeof collector>[]): number => g.reduce((n, c) => n + c.msgs.length, 0);
      await until(() => count(g1) >= N && count(g2) >= N && plain.msgs.length >= N, 'all deliveries');
      await sleep(30);
      assert.equal(plain.msgs.length, N);
      for (const g of [g1, g2]) {
        const seen = g.flatMap((c) => c.texts()).map(Number).sort((a, b) => a - b);
        assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i), 'each message exactly once per group');
        for (const c of g) assert.ok(c.msgs.length > 0, 'every member gets a share');
      }
    });

    test('unsubscribe stops delivery; other subscriptions go on', async (pub, sub) => {
      const p = fresh();
      const a = collector();
      const b = collector();
      const sa = sub.subscribe(`${p}.x`, a.handler);
      sub.subscribe(`${p}.x`, b.handler);
      assert.equal(sa.subject, `${p}.x`);
      await sub.flush();
      pub.publish(`${p}.x`, enc('1'));
      await pub.flush();
      await until(() => a.msgs.length === 1 && b.msgs.length === 1, 'first message');
      sa.unsubscribe();
      sa.unsubscribe(); // idempotent
      await sub.flush();
      pub.publish(`${p}.x`, enc('2'));
      await pub.flush();
      await until(() => b.msgs.length === 2, 'second message on the remaining subscription');
      await sleep(30);
      assert.equal(a.msgs.length, 1);
    });

    test('drain() hands over gracefully: queued messages are handled, later ones are not delivered', async (pub, sub) => {
      const p = fresh();
      const seen: string[] = [];
      const s = sub.subscribe(`${p}.d`, async (m) => {
        await sleep(5);
        seen.push(new TextDecoder().decode(m.data));
      });
      await sub.flush();
      for (let i = 0; i < 5; i++) pub.publish(`${p}.d`, enc(String(i)));
      await pub.flush();
      await until(() => seen.length >= 1, 'the first message to be in hand');
      await s.drain();
      assert.deepEqual(seen, ['0', '1', '2', '3', '4']);
      pub.publish(`${p}.d`, enc('late'));
      await pub.flush();
      await sleep(30);
      assert.deepEqual(seen, ['0', '1', '2', '3', '4']);
      await s.drain(); // idempotent
    });

    test('headers round trip; frozen; none gives {}', async (pub, sub) => {
      const p = fresh();
      const c = collector();
      sub.subscribe(`${p}.h`, c.handler);
      await sub.flush();
      const h = { 'Hyphae-Session': 'abc123', 'hop': '2', 'Trace-Id': 'f00/ba+r=', empty: '' };
      pub.publish(`${p}.h`, enc('x'), h);
      h.hop = 'changed after publish';
      pub.publish(`${p}.h`, enc('y'));
      await pub.flush();
      await until(() => c.msgs.length === 2, 'two messages');
      assert.deepEqual({ ...c.msgs[0]?.headers }, { 'Hyphae-Session': 'abc123', 'hop': '2', 'Trace-Id': 'f00/ba+r=', empty: '' });
      assert.ok(Object.isFrozen(c.msgs[0]?.headers));
      assert.deepEqual({ ...c.msgs[1]?.headers }, {});
      // Values are trimmed and CR/LF or bad names rejected, the same way on both buses.
      assert.throws(() => pub.publish(`${p}.h`, enc('z'), { a: 'x\r\ny' }), BusError);
      assert.throws(() => pub.publish(`${p}.h`, enc('z'), { 'bad name': 'v' }), BusError);
      assert.throws(() => pub.publish(`${p}.h`, enc('z'), { 'a:b': 'v' }), BusError);
    });

    test('trace ids: a publish or request inside runWithTrace carries hy-trace; handlers run in it; none leaks', async (pub, sub) => {
      const p = fresh();
      const seen: Array<{ header: string | undefined; current: string | undefined }> = [];
      sub.subscribe(`${p}.t`, (m) => {
        seen.push({ header: m.headers[TRACE_HEADER], current: currentTrace() });
        // Anything the handler sends carries the same id.
        if (m.headers.fwd === '1') pub.publish(`${p}.t`, enc('forwarded'));
        m.respond(enc('ok'));
      });
      await sub.flush();
      runWithTrace('trace-one', () => pub.publish(`${p}.t`, enc('a'), { fwd: '1' }));
      pub.publish(`${p}.t`, enc('b'));
      const reply = await runWithTrace('trace-two', () => pub.request(`${p}.t`, enc('c'), { timeoutMs: 2000 }));
      await pub.flush();
      await until(() => seen.length === 4, 'four messages');
      assert.equal(dec(reply.data), 'ok');
      const byHeader = seen.map((x) => `${String(x.header)}/${String(x.current)}`).sort();
      assert.deepEqual(byHeader, ['trace-one/trace-one', 'trace-one/trace-one', 'trace-two/trace-two', 'undefined/undefined']);
      // An explicit header wins over the context.
      const c = collector();
      sub.subscribe(`${p}.u`, c.handler);
      await sub.flush();
      runWithTrace('ctx', () => pub.publish(`${p}.u`, enc('x'), { [TRACE_HEADER]: 'explicit' }));
      await pub.flush();
      await until(() => c.msgs.length === 1, 'one message');
      assert.equal(c.msgs[0]?.headers[TRACE_HEADER], 'explicit');
    });

    test('binary payloads arrive byte for byte, including empty and large', async (pub, sub) => {
      const p = fresh();
      const c = collector();
      sub.subscribe(`${p}.bin`, c.handler);
      await sub.flush();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const large = new Uint8Array(512 * 1024);
      for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
      const nul = Uint8Array.of(0, 0, 13, 10, 13, 10, 0);
      pub.publish(`${p}.bin`, all);
      pub.publish(`${p}.bin`, new Uint8Array(0));
      pub.publish(`${p}.bin`, large, { k: 'v' });
      pub.publish(`${p}.bin`, nul);
      await pub.flush();
      await until(() => c.msgs.length === 4, 'four messages');
      assert.deepEqual([...(c.msgs[0]?.data ?? [])], [...all]);
      assert.equal(c.msgs[1]?.data.length, 0);
      assert.ok(Buffer.from(c.msgs[2]?.data ?? []).equals(Buffer.from(large)));
      assert.deepEqual([...(c.msgs[3]?.data ?? [])], [...nul]);
    });

    test('request/respond with headers; respond() is false for a plain message', async (pub, sub) => {
      const p = fresh();
      let plainRespond: boolean | undefined;
      sub.subscribe(`${p}.echo`, (m) => {
        if (m.headers['kind'] === 'plain') {
          plainRespond = m.respond(enc('nobody listens'));
          return;
        }
        assert.equal(m.respond(enc(`echo:${dec(m.data)}`), { 'Reply-To-Trace': m.headers['trace'] ?? '' }), true);
      });
      await sub.flush();
      const r = await pub.request(`${p}.echo`, enc('ping'), { headers: { trace: 't-1' }, timeoutMs: 2000 });
      assert.equal(dec(r.data), 'echo:ping');
      assert.equal(r.headers['Reply-To-Trace'], 't-1');
      assert.equal(r.respond(enc('x')), false, 'a reply is not itself a request');
      pub.publish(`${p}.echo`, enc('p'), { kind: 'plain' });
      await pub.flush();
      await until(() => plainRespond !== undefined, 'plain message handled');
      assert.equal(plainRespond, false);
      // Many concurrent requests each get their own reply.
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => pub.request(`${p}.echo`, enc(String(i)))));
      assert.deepEqual(replies.map((m) => dec(m.data)), Array.from({ length: 50 }, (_, i) => `echo:${i}`));
    });

    test('request to a subject nobody subscribes: NoRespondersError at once', async (pub) => {
      const p = fresh();
      const t0 = Date.now();
      const err = await pub.request(`${p}.nobody`, enc('?'), { timeoutMs: 5000 }).then(
        () => assert.fail('expected NoRespondersError'),
        (e: unknown) => e,
      );
      const elapsed = Date.now() - t0;
      assert.ok(err instanceof NoRespondersError, `got ${String(err)}`);
      assert.ok(err instanceof BusError);
      assert.equal(err.subject, `${p}.nobody`);
      assert.ok(elapsed < 1000, `took ${elapsed} ms; must not wait for the timeout`);
    });

    test('request nobody answers: BusTimeoutError after the timeout', async (pub, sub) => {
      const p = fresh();
      sub.subscribe(`${p}.silent`, () => {});
      await sub.flush();
      const t0 = Date.now();
      const err = await pub.request(`${p}.silent`, enc('?'), { timeoutMs: 150 }).then(
        () => assert.fail('expected BusTimeoutError'),
        (e: unknown) => e,
      );
      const elapsed = Date.now() - t0;
      assert.ok(err instanceof BusTimeoutError, `got ${String(err)}`);
      assert.equal(err.subject, `${p}.silent`);
      assert.ok(elapsed >= 140 && elapsed < 2000, `took ${elapsed} ms`);
      await assert.rejects(pub.request(`${p}.silent`, enc('?'), { timeoutMs: 0 }), BusError);
    });

    test('10,000 messages from one publisher arrive in order', async (pub, sub) => {
      const p = fresh();
      const N = 10_000;
      const got: number[] = [];
      const view = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);
      sub.subscribe(`${p}.seq`, (m) => void got.push(view(m.data)));
      await sub.flush();
      for (let i = 0; i < N; i++) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, i);
        pub.publish(`${p}.seq`, b);
      }
      await pub.flush();
      await until(() => got.length >= N, `${N} messages`, 10_000);
      for (let i = 0; i < N; i++) if (got[i] !== i) assert.fail(`message ${i} arrived as ${got[i]}`);
    });

    test('one handler at a time per subscription, in order, even when async', async (pub, sub) => {
      const p = fresh();
      let running = 0;
      let maxRunning = 0;
      const order: number[] = [];
      sub.subscribe(`${p}.slow`, async (m) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const i = Number(dec(m.data));
        // Uneven delays: if handlers overlapped, later ones would finish first.
        await sleep(i % 3 === 0 ? 8 : 1);
        order.push(i);
        running--;
      });
      await sub.flush();
      for (let i = 0; i < 30; i++) pub.publish(`${p}.slow`, enc(String(i)));
      await pub.flush();
      await until(() => order.length === 30, 'all handled');
      assert.equal(maxRunning, 1);
      assert.deepEqual(order, Array.from({ length: 30 }, (_, i) => i));
    });

    test('delivery is asynchronous: a handler that publishes does not recurse', async (pub, sub) => {
      const p = fresh();
      let depth = 0;
      let maxDepth = 0;
      let count = 0;
      sub.subscribe(`${p}.loop`, (m) => {
        depth++;
        maxDepth = Math.max(maxDepth, depth);
        count++;
        const n = Number(dec(m.data));
        if (n < 50) sub.publish(`${p}.loop`, enc(String(n + 1)));
        depth--;
      });
      await sub.flush();
      let inPublish = true;
      let calledDuringPublish = false;
      sub.subscribe(`${p}.loop`, () => {
        if (inPublish) calledDuringPublish = true;
      });
      await sub.flush();
      pub.publish(`${p}.loop`, enc('0'));
      inPublish = false;
      await until(() => count === 51, 'the chain of 51 messages');
      assert.equal(maxDepth, 1);
      assert.equal(calledDuringPublish, false);
    });

    test('a throwing or rejecting handler does not stop the subscription', async (pub, sub, env) => {
      const p = fresh();
      const seen: string[] = [];
      sub.subscribe(`${p}.bad`, async (m) => {
        const s = dec(m.data);
        seen.push(s);
        if (s === 'throw') throw new Error('handler failure (expected by the test)');
        if (s === 'reject') await Promise.reject(new Error('async handler failure (expected by the test)'));
      });
      // A synchronous throw too, on a second subscription.
      const seen2: string[] = [];
      sub.subscribe(`${p}.bad`, (m) => {
        seen2.push(dec(m.data));
        if (seen2.length === 1) throw new Error('sync handler failure (expected by the test)');
      });
      await sub.flush();
      for (const s of ['throw', 'reject', 'ok']) pub.publish(`${p}.bad`, enc(s));
      await pub.flush();
      await until(() => seen.length === 3 && seen2.length === 3, 'all three on both subscriptions');
      assert.deepEqual(seen, ['throw', 'reject', 'ok']);
      void env;
    });

    test('flush(): resolves on an idle bus and after publishes, which then arrive', async (pub, sub) => {
      const p = fresh();
      await pub.flush();
      let n = 0;
      sub.subscribe(`${p}.f`, async () => {
        await sleep(1);
        n++;
      });
      await sub.flush();
      for (let i = 0; i < 20; i++) pub.publish(`${p}.f`, enc('x'));
      await pub.flush();
      await until(() => n === 20, 'twenty handled');
      if (pub === sub && pub.kind === 'memory') {
        // In-process, flush() also waits for the handlers themselves.
        for (let i = 0; i < 5; i++) pub.publish(`${p}.f`, enc('x'));
        await pub.flush();
        assert.equal(n, 25);
      }
    });

    test('invalid subjects are rejected with BusError', async (pub, sub) => {
      for (const s of ['', 'a..b', '.a', 'a.', 'a b', 'a.*', 'a.>', '>']) {
        assert.throws(() => pub.publish(s, enc('x')), BusError, `publish '${s}'`);
      }
      for (const s of ['', 'a..b', 'a.>.b', 'a b']) {
        assert.throws(() => sub.subscribe(s, () => {}), BusError, `subscribe '${s}'`);
      }
      await assert.rejects(pub.request('a.*', enc('x')), BusError);
    });

    test('close(): idempotent, status closed, then publish/request/subscribe/flush fail with BusClosedError', async (pub, sub) => {
      const p = fresh();
      const statuses: BusStatus[] = [];
      const off = pub.onStatus((s) => statuses.push(s));
      const removed: BusStatus[] = [];
      pub.onStatus((s) => removed.push(s))();
      // Messages already queued when close() starts are still handled (drain).
      let handled = 0;
      pub.subscribe(`${p}.drain`, async () => {
        await sleep(2);
        handled++;
      });
      await pub.flush();
      for (let i = 0; i < 5; i++) pub.publish(`${p}.drain`, enc('x'));
      assert.equal(pub.isConnected(), true);
      await Promise.all([pub.close(), pub.close()]);
      await pub.close();
      assert.equal(handled, 5);
      assert.equal(pub.isConnected(), false);
      assert.deepEqual(statuses, ['closed']);
      assert.deepEqual(removed, []);
      off();
      assert.throws(() => pub.publish(`${p}.x`, enc('x')), BusClosedError);
      assert.throws(() => pub.subscribe(`${p}.x`, () => {}), BusClosedError);
      await assert.rejects(pub.request(`${p}.x`, enc('x')), BusClosedError);
      await assert.rejects(pub.flush(), BusClosedError);
      void sub;
    });
  });
}
