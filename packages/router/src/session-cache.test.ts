/**
 * The router's session cache (session-cache.ts): hits and misses, the
 * invalidation a registry write announces on the bus, a node going down,
 * expiry, and a read in flight during an invalidation not being cached.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBus, type Bus } from '@hyphae/bus';
import { openEmbeddedStores, type SessionEntry, type SessionStore, type Stores } from '@hyphae/store';
import { SessionCache, announceSessionChanges } from './session-cache.js';
import { EVENTS, encodeEvent } from './delivery.js';

const bare = 'juliet@example.org';
const entry = (resource: string, sessionId = `s-${resource}`): SessionEntry => ({ resource, sessionId, node: 'n1', priority: 0, available: true, boundAt: 0 });

describe('SessionCache', () => {
  let dir: string;
  let bus: Bus;
  let stores: Stores;
  let sessions: SessionStore;
  let reads: number;
  let clock: number;
  let cache: SessionCache;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hyphae-session-cache-'));
    bus = createMemoryBus();
    stores = await openEmbeddedStores({ dir });
    sessions = announceSessionChanges(stores.sessions, bus);
    reads = 0;
    clock = 1_000;
    const counting: SessionStore = { ...sessions, list: (b) => (reads++, stores.sessions.list(b)) };
    cache = new SessionCache(counting, { ttlMs: 5_000, maxEntries: 100, now: () => clock }).attach(bus);
  });

  afterEach(async () => {
    cache.detach();
    await bus.close();
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  });

  const settle = (): Promise<void> => bus.flush();

  test('the second lookup of a bare JID is a hit: one store read', async () => {
    await sessions.bind(bare, entry('balcony'));
    await settle();
    assert.deepEqual((await cache.list(bare)).map((s) => s.resource), ['balcony']);
    assert.deepEqual((await cache.list(bare)).map((s) => s.resource), ['balcony']);
    assert.equal(reads, 1);
    assert.deepEqual(cache.counters, { hits: 1, misses: 1 });
  });

  test('bind, presence update and unbind each drop the entry, so the next lookup sees the change', async () => {
    await cache.list(bare);
    await sessions.bind(bare, entry('balcony'));
    await settle();
    assert.deepEqual((await cache.list(bare)).map((s) => s.resource), ['balcony'], 'the bind is seen');
    await sessions.update(bare, 'balcony', 's-balcony', { available: false });
    await settle();
    assert.equal((await cache.list(bare))[0]?.available, false, 'the presence change is seen');
    await sessions.unbind(bare, 'balcony', 's-balcony');
    await settle();
    assert.deepEqual(await cache.list(bare), [], 'the unbind is seen');
    assert.equal(reads, 4);
  });

  test("this process's own write is seen at once, before its event comes back over the bus", async () => {
    // Events published where this cache does not listen: as with NATS, where
    // the event comes back only after a round trip through the server.
    const elsewhere = createMemoryBus();
    const own = announceSessionChanges(stores.sessions, elsewhere);
    const c = new SessionCache(own, { ttlMs: 5_000, maxEntries: 100, now: () => clock }).attach(bus);
    try {
      await own.bind(bare, { ...entry('balcony'), available: false });
      assert.equal((await c.list(bare))[0]?.available, false);
      await own.update(bare, 'balcony', 's-balcony', { available: true });
      assert.equal((await c.list(bare))[0]?.available, true, 'the availability this process just wrote');
    } finally {
      c.detach();
      await elsewhere.close();
    }
  });

  test('a write that changes nothing announces nothing', async () => {
    await sessions.bind(bare, entry('balcony'));
    await settle();
    await cache.list(bare);
    assert.equal(await sessions.unbind(bare, 'balcony', 'another-session'), false);
    await settle();
    await cache.list(bare);
    assert.equal(reads, 1, 'still cached');
  });

  test('a new status with the same availability and priority keeps the entry; a new priority drops it', async () => {
    await sessions.bind(bare, entry('balcony'));
    await sessions.update(bare, 'balcony', 's-balcony', { available: true, priority: 5, presence: '<presence/>' });
    await settle();
    await cache.list(bare);
    assert.equal(await sessions.update(bare, 'balcony', 's-balcony', { presence: '<presence><show>away</show></presence>' }), true);
    await settle();
    assert.equal((await cache.list(bare))[0]?.priority, 5);
    assert.equal(reads, 1, 'still cached: routing reads nothing that changed');
    assert.match((await stores.sessions.get(bare, 'balcony'))?.presence ?? '', /away/, 'the store has the new presence');
    await sessions.update(bare, 'balcony', 's-balcony', { priority: -1, presence: '<presence><priority>-1</priority></presence>' });
    await settle();
    assert.equal((await cache.list(bare))[0]?.priority, -1, 'the new priority is seen');
    assert.equal(reads, 2);
  });

  test('a node going down drops everything; entries expire after ttlMs', async () => {
    await sessions.bind(bare, entry('balcony'));
    await settle();
    await cache.list(bare);
    await cache.list('romeo@example.org');
    assert.equal(cache.size, 2);
    bus.publish(EVENTS.nodeDown, encodeEvent({ node: 'n1', sessions: 1 }));
    await settle();
    assert.equal(cache.size, 0);
    await cache.list(bare);
    assert.equal(reads, 3);
    clock += 4_999;
    await cache.list(bare);
    assert.equal(reads, 3, 'still fresh');
    clock += 1;
    await cache.list(bare);
    assert.equal(reads, 4, 'expired');
  });

  test('a node marked gone: its sessions are hidden from cached and fresh answers until it expires', async () => {
    const other = { ...entry('garden'), node: 'n2' };
    await sessions.bind(bare, entry('balcony'));
    await sessions.bind(bare, other);
    await settle();
    await cache.list(bare);
    cache.deadNodes.mark('n1', 1_000);
    assert.deepEqual((await cache.list(bare)).map((s) => s.resource), ['garden'], 'cached answer');
    assert.deepEqual((await cache.fresh(bare)).map((s) => s.resource), ['garden'], 'fresh answer');
    assert.equal(await cache.get(bare, 'balcony'), null);
    assert.deepEqual(cache.peek(bare)?.map((s) => s.resource), ['garden']);
    clock += 1_000;
    assert.deepEqual((await cache.list(bare)).map((s) => s.resource).sort(), ['balcony', 'garden'], 'the mark expired');
  });

  test('a node marked gone counts again once a session binds on it, or once sm reports it down', async () => {
    await stores.sessions.bind(bare, entry('balcony'));
    cache.deadNodes.mark('n1', 60_000);
    assert.deepEqual(await cache.list(bare), []);
    // The node restarted with the same id: a bind there shows it alive.
    await sessions.bind('romeo@example.org', entry('hall', 's-hall'));
    await settle();
    assert.equal(cache.deadNodes.isGone('n1'), false);
    assert.deepEqual((await cache.fresh(bare)).map((s) => s.resource), ['balcony']);
    // sm reaped it: its sessions have left the registry, the mark has no more to hide.
    cache.deadNodes.mark('n1', 60_000);
    bus.publish(EVENTS.nodeDown, encodeEvent({ node: 'n1', sessions: 1 }));
    await settle();
    assert.equal(cache.deadNodes.isGone('n1'), false);
  });

  test('get: a resource missing from the cached list is read afresh', async () => {
    await sessions.bind(bare, entry('balcony'));
    await settle();
    await cache.list(bare);
    // Bound behind the cache's back (no announcement): only a fresh read finds it.
    await stores.sessions.bind(bare, entry('garden'));
    assert.equal((await cache.get(bare, 'garden'))?.sessionId, 's-garden');
    assert.equal(await cache.get(bare, 'cellar'), null);
  });

  test('get on a cold entry reads the store once', async () => {
    await sessions.bind(bare, entry('balcony'));
    await settle();
    assert.equal((await cache.get(bare, 'balcony'))?.sessionId, 's-balcony');
    assert.equal(reads, 1);
    assert.equal((await cache.get(bare, 'balcony'))?.sessionId, 's-balcony');
    assert.equal(reads, 1, 'then from the cache');
    assert.deepEqual(cache.counters, { hits: 1, misses: 1 });
  });

  test('a read in flight when the entry is invalidated is not cached', async () => {
    await sessions.bind(bare, entry('balcony'));
    await settle();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new SessionCache({ ...sessions, list: async (b) => { const v = await stores.sessions.list(b); await gate; return v; } }, { ttlMs: 5_000, maxEntries: 100 });
    const pending = slow.list(bare);
    slow.invalidate(bare);
    release();
    await pending;
    assert.equal(slow.size, 0, 'the answer may predate the change: not kept');
    await slow.list(bare);
    assert.equal(slow.size, 1);
  });

  test('the cache stays within maxEntries', async () => {
    const small = new SessionCache(sessions, { ttlMs: 5_000, maxEntries: 20 });
    for (let i = 0; i < 50; i++) await small.list(`u${i}@example.org`);
    assert.ok(small.size <= 20, `size ${small.size}`);
  });
});
