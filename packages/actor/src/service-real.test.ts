import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectNatsBus, createMemoryBus, type Bus } from '@hyphae/bus';
import { openEmbeddedStores, openRedisStores, type CoordinationStore, type Stores } from '@hyphae/store';
import { hasBinary, startNats, startRedis, type ServerProcess } from '@hyphae/testkit';
import { requestWithRetry, shardOf } from './index.js';
import { FakeCoordination, Ledger, SHARDS, failover, start, subjectOf, waitFor } from './testing.js';

// The same scenarios as service.test.ts on real backends: the NATS bus and
// the store's own CoordinationStore implementations (embedded and Redis).

const timing = { leaseTtlMs: 1000, renewIntervalMs: 100 };
/** Real backends add round trips; a takeover must still come within ttl + a few ticks. */
const failoverBound = timing.leaseTtlMs + 3 * timing.renewIntervalMs + 300;
const enc = new TextEncoder();
const quiet = { warn(): void {}, info(): void {}, error(): void {}, debug(): void {} };

/** Stores opened before the coordination store existed have none: skip rather than fail. */
function coordinationOf(stores: Stores): CoordinationStore | undefined {
  const c = (stores as Partial<Stores>).coordination;
  return c !== undefined && typeof c.acquire === 'function' ? c : undefined;
}

describe('sharded service on the embedded store coordination (memory bus)', () => {
  let dir = '';
  let stores: Stores | undefined;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hyphae-actor-'));
    stores = await openEmbeddedStores({ dir });
  });
  after(async () => {
    await stores?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('splits 32/32 and fails over within leaseTtl + a tick', async (t) => {
    const coord = stores && coordinationOf(stores);
    if (!coord) return t.skip('openEmbeddedStores() has no coordination store yet');
    const bus = createMemoryBus();
    const ledger = new Ledger();
    const a = await start('a', bus, coord, ledger, timing);
    const b = await start('b', bus, coord, ledger, timing);
    const r = await failover(a, b, async () => {}, bus, timing);
    t.diagnostic(`memory bus + embedded store: failover ${r.failoverMs} ms, request answered after ${r.requestMs} ms (ttl ${timing.leaseTtlMs}, tick ${timing.renewIntervalMs})`);
    assert.ok(r.failoverMs <= failoverBound, `failover took ${r.failoverMs} ms`);
    assert.equal(r.answeredBy, 'a');
    assert.equal(ledger.overlaps, 0);
    await a.stop();
    await bus.close();
  });
});

const noNats = hasBinary('nats-server') ? false : 'nats-server is not installed';
const noRedis = hasBinary('redis-server') ? false : 'redis-server is not installed';

describe('sharded service on NATS', { skip: noNats }, () => {
  let nats: ServerProcess | undefined;
  let redis: ServerProcess | undefined;
  const buses: Bus[] = [];
  const connect = async (name: string): Promise<Bus> => {
    const b = await connectNatsBus({ servers: nats!.url, name, logger: quiet });
    buses.push(b);
    return b;
  };
  before(async () => {
    nats = await startNats();
    if (!noRedis) redis = await startRedis();
  });
  after(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => undefined)));
    await nats?.stop();
    await redis?.stop();
  });

  it('fails over with the fake coordination store', async (t) => {
    const [ba, bb, sender] = await Promise.all([connect('a'), connect('b'), connect('sender')]);
    const coord = new FakeCoordination();
    const ledger = new Ledger();
    const a = await start('a', ba, coord, ledger, timing);
    const b = await start('b', bb, coord, ledger, timing);
    // A killed process also loses its NATS connection.
    const r = await failover(a, b, () => bb.close(), sender, timing);
    t.diagnostic(`NATS + fake store: failover ${r.failoverMs} ms, request answered after ${r.requestMs} ms (ttl ${timing.leaseTtlMs}, tick ${timing.renewIntervalMs})`);
    assert.ok(r.failoverMs <= failoverBound, `failover took ${r.failoverMs} ms`);
    assert.equal(r.answeredBy, 'a');
    await a.stop();
  });

  /** Opens two Redis store connections (one per instance) on a fresh prefix, or says why not. */
  async function redisCoordination(t: { skip(m: string): void }): Promise<{ ca: CoordinationStore; cb: CoordinationStore; close(): Promise<void> } | null> {
    const prefix = `actor${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const storesA = await openRedisStores({ url: redis!.url, prefix, logger: quiet });
    const storesB = await openRedisStores({ url: redis!.url, prefix, logger: quiet });
    const close = async (): Promise<void> => {
      await storesA.close();
      await storesB.close();
    };
    const ca = coordinationOf(storesA);
    const cb = coordinationOf(storesB);
    if (!ca || !cb) {
      await close();
      t.skip('openRedisStores() has no coordination store yet');
      return null;
    }
    return { ca, cb, close };
  }

  it('with Redis coordination: exactly-once delivery, then failover', { skip: noRedis }, async (t) => {
    const rc = await redisCoordination(t);
    if (!rc) return;
    try {
      const [ba, bb, sender] = await Promise.all([connect('ra'), connect('rb'), connect('rsender')]);
      const ledger = new Ledger();
      const a = await start('a', ba, rc.ca, ledger, timing);
      assert.equal(a.owned().length, SHARDS);
      const b = await start('b', bb, rc.cb, ledger, timing);
      await waitFor(() => a.owned().length === 32 && b.owned().length === 32, 3000, '32/32');
      const keys = Array.from({ length: 300 }, (_, i) => `once${i}@example.com`);
      await Promise.all(keys.map((k) => sender.request(subjectOf(k), enc.encode('0'))));
      for (const k of keys) {
        const got = ledger.byKey.get(k) ?? [];
        assert.equal(got.length, 1, k);
        assert.equal(got[0]!.by, a.owned().includes(shardOf(k, SHARDS)) ? 'a' : 'b');
      }
      const r = await failover(a, b, () => bb.close(), sender, timing);
      t.diagnostic(`NATS + Redis store: failover ${r.failoverMs} ms, request answered after ${r.requestMs} ms (ttl ${timing.leaseTtlMs}, tick ${timing.renewIntervalMs})`);
      assert.ok(r.failoverMs <= failoverBound, `failover took ${r.failoverMs} ms`);
      assert.equal(r.answeredBy, 'a');
      await a.stop();
      assert.ok((await rc.ca.holders(Array.from({ length: SHARDS }, (_, n) => `roster:shard:${n}`))).every((h) => h === null), 'stop() released every lease');
    } finally {
      await rc.close();
    }
  });

  // Lossless because the old owner drains the shard's subscription (see
  // stopTaking() in service.ts) before releasing the lease.
  it('with Redis coordination: per-key order and nothing lost over a rebalance', { skip: noRedis }, async (t) => {
    const [ba, bb, sender] = await Promise.all([connect('oa'), connect('ob'), connect('osender')]);
    const rc = await redisCoordination(t);
    if (!rc) return;
    try {
      const ledger = new Ledger();
      const delay = (): number => (Math.random() < 0.3 ? 1 : 0);
      const a = await start('a', ba, rc.ca, ledger, timing, delay);
      const KEYS = 20;
      const PER_KEY = 25;
      const senders = Array.from({ length: KEYS }, async (_, k) => {
        for (let seq = 0; seq < PER_KEY; seq++) {
          await requestWithRetry(sender, subjectOf(`r${k}@example.com`), enc.encode(String(seq)), { timeoutMs: 2000 });
          await new Promise((r) => setTimeout(r, 15));
        }
      });
      await new Promise((r) => setTimeout(r, 100));
      const b = await start('b', bb, rc.cb, ledger, timing, delay);
      await Promise.all(senders);
      for (let k = 0; k < KEYS; k++) {
        assert.deepEqual(
          (ledger.byKey.get(`r${k}@example.com`) ?? []).map((g) => g.seq),
          [...Array(PER_KEY).keys()],
          `key ${k}: each message once, in order`,
        );
      }
      assert.equal(ledger.overlaps, 0);
      await Promise.all([a.stop(), b.stop()]);
    } finally {
      await rc.close();
    }
  });
});
