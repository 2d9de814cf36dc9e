import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NoRespondersError, createMemoryBus } from '@hyphae/bus';
import { ActorBusyError, requestWithRetry, shardOf, startShardedService } from './index.js';
import { simulateCrash } from './service.js';
import { CoordinationView, FakeCoordination, Ledger, SHARDS, failover, keyFromSubject, quietLogger, sleep, start, subjectOf, waitFor } from './testing.js';

const timing = { leaseTtlMs: 1000, renewIntervalMs: 100 };
const enc = new TextEncoder();
const dec = new TextDecoder();
const leases = Array.from({ length: SHARDS }, (_, n) => `roster:shard:${n}`);

describe('startShardedService (memory bus, fake coordination)', () => {
  it('a single instance owns every shard as soon as it has started', async () => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    const a = await start('a', bus, coord, new Ledger(), timing);
    assert.deepEqual(a.owned(), [...Array(SHARDS).keys()]);
    assert.deepEqual(await coord.members('roster'), ['a']);
    assert.ok((await coord.holders(leases)).every((h) => h === 'a'));
    await a.stop();
    assert.ok((await coord.holders(leases)).every((h) => h === null), 'stop() releases every lease');
    assert.deepEqual(await coord.members('roster'), [], 'stop() leaves the group');
    assert.deepEqual(a.owned(), []);
    await bus.close();
  });

  it('two instances split the shards 32/32 within a few ticks, and onChange reports it', async (t) => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    const a = await start('a', bus, coord, new Ledger(), timing);
    const changes: number[] = [];
    a.onChange((o) => changes.push(o.length));
    const b = await start('b', bus, coord, new Ledger(), timing);
    const ms = await waitFor(() => a.owned().length === 32 && b.owned().length === 32, 2000, '32/32');
    assert.ok(ms < 6 * timing.renewIntervalMs, `split took ${ms} ms`);
    assert.equal(new Set([...a.owned(), ...b.owned()]).size, SHARDS);
    assert.deepEqual(changes, [32]);
    // ...and it stays that way.
    await sleep(5 * timing.renewIntervalMs);
    assert.equal(a.owned().length, 32);
    assert.equal(b.owned().length, 32);
    // Three instances: ceil(64/3) = 22 at most each, all shards owned.
    const c = await start('c', bus, coord, new Ledger(), timing);
    await waitFor(() => [a, b, c].every((s) => s.owned().length <= 22) && a.owned().length + b.owned().length + c.owned().length === SHARDS, 3000, '3-way split');
    t.diagnostic(`split 2 ways ${ms} ms after the second instance started`);
    await Promise.all([a.stop(), b.stop(), c.stop()]);
    await bus.close();
  });

  it('a message to any key reaches exactly one handler, on its shard owner', async () => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    const ledger = new Ledger();
    const a = await start('a', bus, coord, ledger, timing);
    const b = await start('b', bus, coord, ledger, timing);
    await waitFor(() => a.owned().length === 32 && b.owned().length === 32, 2000, '32/32');
    const keys = Array.from({ length: 500 }, (_, i) => `u${i}@example.com`);
    const replies = await Promise.all(keys.map((k) => bus.request(subjectOf(k), enc.encode('1'))));
    await bus.flush();
    for (const [i, k] of keys.entries()) {
      assert.equal(ledger.byKey.get(k)?.length, 1, k);
      const owner = a.owned().includes(shardOf(k, SHARDS)) ? 'a' : 'b';
      assert.equal(dec.decode(replies[i]!.data), owner);
    }
    await Promise.all([a.stop(), b.stop()]);
    await bus.close();
  });

  it('keeps per-key order and loses nothing over a rebalance (1,000 requests)', async (t) => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    const ledger = new Ledger();
    const delay = (): number => (Math.random() < 0.3 ? 2 : 0);
    const a = await start('a', bus, coord, ledger, timing, delay);
    const KEYS = 50;
    const PER_KEY = 20;
    let retried = 0;
    const senders = Array.from({ length: KEYS }, async (_, k) => {
      const key = `k${k}@example.com`;
      for (let seq = 0; seq < PER_KEY; seq++) {
        const t = Date.now();
        await requestWithRetry(bus, subjectOf(key), enc.encode(String(seq)), { timeoutMs: 3000 });
        if (Date.now() - t > 40) retried++;
        await sleep(15);
      }
    });
    await sleep(100);
    const b = await start('b', bus, coord, ledger, timing, delay);
    await Promise.all(senders);
    assert.equal(ledger.overlaps, 0, 'never two handlers of one key at once');
    let byB = 0;
    for (let k = 0; k < KEYS; k++) {
      const got = ledger.byKey.get(`k${k}@example.com`) ?? [];
      assert.deepEqual(got.map((g) => g.seq), [...Array(PER_KEY).keys()], `key ${k}: every message once, in order`);
      byB += got.filter((g) => g.by === 'b').length;
    }
    assert.equal(a.owned().length + b.owned().length, SHARDS);
    assert.equal(b.owned().length, 32);
    assert.ok(byB > 0 && byB < KEYS * PER_KEY, `the rebalance happened mid-stream (b handled ${byB})`);
    t.diagnostic(`rebalance: ${byB}/${KEYS * PER_KEY} handled by the newcomer, ~${retried} sends waited on a handover`);
    await Promise.all([a.stop(), b.stop()]);
    await bus.close();
  });

  it('a crashed instance is replaced within leaseTtl + a tick; a request in the gap succeeds', async (t) => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    const ledger = new Ledger();
    const a = await start('a', bus, coord, ledger, timing);
    const b = await start('b', bus, coord, ledger, timing);
    const r = await failover(a, b, async () => {}, bus, timing);
    t.diagnostic(`memory bus + fake store: failover ${r.failoverMs} ms, request answered after ${r.requestMs} ms (ttl ${timing.leaseTtlMs}, tick ${timing.renewIntervalMs})`);
    assert.ok(r.failoverMs <= timing.leaseTtlMs + 3 * timing.renewIntervalMs, `failover took ${r.failoverMs} ms`);
    assert.equal(r.answeredBy, 'a');
    assert.equal(ledger.overlaps, 0);
    await a.stop();
    await bus.close();
  });

  it('drops its shards at the local deadline when the store is unreachable, and comes back', async (t) => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    const a = await start('a', bus, coord, new Ledger(), timing);
    const t0 = Date.now();
    coord.down = true;
    const ms = await waitFor(() => a.owned().length === 0, 3000, 'shards dropped');
    // Deadline = last renewal sent + ttl - margin (200 ms by default for 1 s).
    assert.ok(ms >= timing.leaseTtlMs - 200 - timing.renewIntervalMs - 20 && ms <= timing.leaseTtlMs - 200 + 50, `dropped after ${ms} ms`);
    await assert.rejects(bus.request(subjectOf('x@example.com'), enc.encode('1')), NoRespondersError);
    coord.down = false;
    const back = await waitFor(() => a.owned().length === SHARDS, 3000, 'shards back');
    t.diagnostic(`store outage: dropped after ${Date.now() - t0 - back} ms, back ${back} ms after the store`);
    await a.stop();
    await bus.close();
  });

  it('stops handling a shard at once when its renewal is refused; queued requests are redirected, not lost', async () => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    let slowRelease!: () => void;
    const slow = new Promise<void>((r) => (slowRelease = r));
    const handled: string[] = [];
    const key = 'q@example.com';
    const shard = shardOf(key, SHARDS);
    const a = await startShardedService({
      group: 'roster',
      instanceId: 'a',
      bus,
      coordination: coord,
      subjectPrefix: 'xmpp.user',
      shardCount: SHARDS,
      ...timing,
      keyOf: keyFromSubject,
      handler: async (msg) => {
        const body = dec.decode(msg.data);
        if (body === 'first') await slow;
        handled.push(body);
        msg.respond(enc.encode('a'));
      },
      logger: quietLogger,
    });
    const first = bus.request(subjectOf(key), enc.encode('first'));
    const second = bus.request(subjectOf(key), enc.encode('second'), { timeoutMs: 3000 });
    await sleep(20);
    // Someone else takes the lease (ours "expired" in the store).
    await coord.release(`roster:shard:${shard}`, 'a');
    await coord.acquire(`roster:shard:${shard}`, 'intruder', 60_000);
    await waitFor(() => !a.owned().includes(shard), 1000, 'the shard dropped');
    assert.equal(a.owned().length, SHARDS - 1);
    slowRelease();
    assert.equal(dec.decode((await first).data), 'a'); // already running: finishes
    const r2 = await second;
    assert.equal(r2.headers['hy-actor'], 'moved', 'the queued one is handed back to the sender');
    assert.deepEqual(handled, ['first']);
    await a.stop();
    assert.equal((await coord.holders([`roster:shard:${shard}`]))[0], 'intruder');
    await bus.close();
  });

  describe('the store loses everything (Redis restarted empty)', () => {
    it('each holder writes its leases back and keeps its shards; nobody takes a "free" shard whose holder is slow to come back', async (t) => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const ledger = new Ledger();
      const viewB = new CoordinationView(coord);
      const resets: string[] = [];
      const onEpoch = (id: string) => async ({ reset, owned }: { reset: boolean; owned: number[] }): Promise<void> => {
        if (reset) resets.push(`${id}:${owned.length}`);
      };
      const a = await start('a', bus, coord, ledger, timing, undefined, { onEpoch: onEpoch('a') });
      const b = await start('b', bus, viewB, ledger, timing, undefined, { onEpoch: onEpoch('b') });
      await waitFor(() => a.owned().length === 32 && b.owned().length === 32, 2000, '32/32');
      const ofA = a.owned();
      const ofB = b.owned();
      const bChanges: number[][] = [];
      b.onChange((o) => bChanges.push(o));
      // b's connection comes back 500 ms after the loss (its lease deadline is 800 ms after its last renewal).
      viewB.down = true;
      coord.wipe();
      const wipedAt = Date.now();
      const stolen = new Set<number>();
      while (Date.now() - wipedAt < 500) {
        const h = await coord.holders(ofB.map((n) => `roster:shard:${n}`));
        h.forEach((x, i) => x === 'a' && stolen.add(ofB[i] ?? -1));
        await sleep(20);
      }
      viewB.down = false;
      assert.deepEqual([...stolen], [], "a took shards of b's while b was still serving them (two owners)");
      assert.deepEqual(a.owned(), ofA, 'a took no shard while the store was recovering');
      await waitFor(() => resets.length === 2, 1000, 'both instances to notice the loss');
      const leases = Array.from({ length: SHARDS }, (_, n) => `roster:shard:${n}`);
      const rewritten = await (async () => {
        const t0 = Date.now();
        for (;;) {
          const h = await coord.holders(leases);
          if (ofA.every((n) => h[n] === 'a') && ofB.every((n) => h[n] === 'b')) return Date.now() - t0;
          if (Date.now() - t0 > 1000) throw new Error(`leases not written back: ${JSON.stringify(h)}`);
          await sleep(10);
        }
      })();
      // Well past the hold: still the same split, and b never lost a shard.
      await sleep(timing.leaseTtlMs + 3 * timing.renewIntervalMs);
      assert.deepEqual(a.owned(), ofA);
      assert.deepEqual(b.owned(), ofB);
      assert.deepEqual(bChanges, [], 'b kept every shard');
      assert.deepEqual(resets.sort(), ['a:32', 'b:32'], 'onEpoch(reset) once per instance, with its shards');
      assert.equal(ledger.overlaps, 0);
      t.diagnostic(`leases written back within ${rewritten} ms of both instances noticing the loss`);
      await Promise.all([a.stop(), b.stop()]);
      await bus.close();
    });

    it("shards of an instance that died with the store are taken once the new epoch is a lease TTL old, not before", async (t) => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const ledger = new Ledger();
      const a = await start('a', bus, coord, ledger, timing);
      const b = await start('b', bus, coord, ledger, timing);
      await waitFor(() => a.owned().length === 32 && b.owned().length === 32, 2000, '32/32');
      simulateCrash(b);
      coord.wipe();
      const ms = await waitFor(() => a.owned().length === SHARDS, timing.leaseTtlMs + 2000, 'the takeover');
      t.diagnostic(`dead instance's shards taken ${ms} ms after the loss (lease TTL ${timing.leaseTtlMs} ms)`);
      assert.ok(ms >= timing.leaseTtlMs - timing.renewIntervalMs, `taken after ${ms} ms: before every holder could have written its lease back`);
      assert.ok(ms <= timing.leaseTtlMs + 3 * timing.renewIntervalMs, `taken after ${ms} ms`);
      await a.stop();
      await bus.close();
    });

    it('an epoch read given up on (the store stalled) that completes later does not swallow the loss', async () => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const view = new CoordinationView(coord);
      const resets: number[] = [];
      const a = await start('a', bus, view, new Ledger(), timing, undefined, {
        onEpoch: async ({ reset, owned }) => {
          if (reset) resets.push(owned.length);
        },
      });
      let resume!: () => void;
      view.stalled = new Promise<void>((r) => (resume = r));
      coord.wipe();
      // Longer than a round's call timeout (ttl / 2): the round gives up on its reads.
      await sleep(timing.leaseTtlMs / 2 + 2 * timing.renewIntervalMs);
      view.stalled = null;
      resume(); // the queued reads complete now, the epoch read among them
      await waitFor(() => resets.length > 0, 2000, 'the loss to be noticed');
      assert.deepEqual(resets, [SHARDS], 'noticed once, while still serving every shard');
      await a.stop();
      await bus.close();
    });

    it('leases taken while the store was being lost are given back, never served', async () => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const view = new CoordinationView(coord);
      // Lost between the read of the holders (all free) and the acquires.
      view.afterHolders = () => coord.wipe();
      const a = await start('a', bus, view, new Ledger(), timing);
      assert.deepEqual(a.owned(), [], 'nothing served from the first round');
      assert.ok((await coord.holders(Array.from({ length: SHARDS }, (_, n) => `roster:shard:${n}`))).every((h) => h === null), 'and nothing kept');
      await waitFor(() => a.owned().length === SHARDS, timing.leaseTtlMs + 2000, 'every shard after the hold');
      await a.stop();
      await bus.close();
    });
  });

  it('runInMailbox runs after what the key already has queued, and only on a shard served here', async () => {
    const bus = createMemoryBus();
    const coord = new FakeCoordination();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const key = 'm@example.com';
    const subject = subjectOf(key);
    const a = await startShardedService({
      group: 'roster', instanceId: 'a', bus, coordination: coord, subjectPrefix: 'xmpp.user', shardCount: SHARDS, ...timing,
      keyOf: (msg) => msg.subject,
      handler: async (msg) => {
        await gate;
        order.push(dec.decode(msg.data));
        msg.respond(enc.encode('ok'));
      },
      logger: quietLogger,
    });
    const reply = bus.request(subject, enc.encode('message'));
    await sleep(20);
    const ran = a.runInMailbox(shardOf(key, SHARDS), subject, async () => {
      order.push('inside');
    });
    await sleep(20);
    assert.deepEqual(order, [], 'waits for the message being handled');
    release();
    assert.equal(await ran, true);
    await reply;
    assert.deepEqual(order, ['message', 'inside']);
    await a.stop();
    assert.equal(await a.runInMailbox(shardOf(key, SHARDS), subject, async () => assert.fail('ran on a shard not served')), false);
    await bus.close();
  });

  describe('overload', () => {
    it('a request whose sender stopped waiting before its turn is not run; its resend is, once', async () => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const ledger = new Ledger();
      const shed: string[] = [];
      // One key whose first message takes 600 ms: the second waits longer than its sender does.
      let calls = 0;
      const a = await start('a', bus, coord, ledger, timing, () => (calls++ === 0 ? 600 : 0), { onShed: (reason) => shed.push(reason) });
      const key = 'busy@example.com';
      const first = requestWithRetry(bus, subjectOf(key), enc.encode('1'));
      const second = requestWithRetry(bus, subjectOf(key), enc.encode('2'), { timeoutMs: 300, retryForMs: 5_000, idempotent: true });
      assert.equal(dec.decode((await first).data), 'a');
      assert.equal(dec.decode((await second).data), 'a');
      // The first attempt of '2' timed out while '1' ran and was resent; once
      // '1' was done, only the resend ran. Before, both did: [1, 2, 2].
      assert.deepEqual(ledger.byKey.get(key)?.map((e) => e.seq), [1, 2]);
      assert.ok(shed.length >= 1 && shed.every((r) => r === 'expired'), `shed: ${shed.join(',')}`);
      await waitFor(() => a.queued() === 0, 1000, 'the mailboxes to empty');
      await a.stop();
      await bus.close();
    });

    it('past maxQueued a request is refused as busy at once, and goes through once the mailboxes drain', async () => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const ledger = new Ledger();
      const shed: string[] = [];
      const a = await start('a', bus, coord, ledger, timing, () => 100, { maxQueued: 3, onShed: (reason) => shed.push(reason) });
      const keys = Array.from({ length: 6 }, (_, i) => `q${i}@example.com`);
      // Six keys at once: three are taken, three refused (and resent until they fit).
      const replies = keys.map((k, i) => requestWithRetry(bus, subjectOf(k), enc.encode(String(i)), { retryForMs: 5_000 }));
      await sleep(20);
      assert.equal(a.queued(), 3, 'never more than maxQueued in the mailboxes');
      assert.equal(shed.filter((r) => r === 'busy').length, 3);
      await Promise.all(replies);
      for (const k of keys) assert.equal(ledger.byKey.get(k)?.length, 1, k);
      await a.stop();
      await bus.close();
    });

    it('a sender that cannot get in within retryForMs gets an ActorBusyError, and nothing ran', async () => {
      const bus = createMemoryBus();
      const coord = new FakeCoordination();
      const ledger = new Ledger();
      const a = await start('a', bus, coord, ledger, timing, () => 600, { maxQueued: 1 });
      const hog = requestWithRetry(bus, subjectOf('hog@example.com'), enc.encode('1'));
      await sleep(20);
      await assert.rejects(requestWithRetry(bus, subjectOf('late@example.com'), enc.encode('2'), { retryForMs: 200 }), ActorBusyError);
      await hog;
      assert.equal(ledger.byKey.get('late@example.com'), undefined);
      await a.stop();
      await bus.close();
    });
  });

  it('rejects timings where a renewal cannot fit before the deadline', async () => {
    await assert.rejects(
      startShardedService({
        group: 'g', instanceId: 'x', bus: createMemoryBus(), coordination: new FakeCoordination(), subjectPrefix: 'p',
        leaseTtlMs: 1000, renewIntervalMs: 900, keyOf: () => 'k', handler: async () => {}, logger: quietLogger,
      }),
      RangeError,
    );
  });
});
