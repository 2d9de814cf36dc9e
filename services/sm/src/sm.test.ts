import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBus } from '@hyphae/bus';
import { openEmbeddedStores } from '@hyphae/store';
import { createLogger, createMetrics } from '@hyphae/observability';
import { defaultConfig } from '@hyphae/config';
import { EVENTS, decodeEvent, type SessionEvent } from '@hyphae/router';
import { startSm } from './index.js';

test('a silent node is purged, its sessions announced; live nodes are left alone', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-sm-'));
  const stores = await openEmbeddedStores({ dir });
  const bus = createMemoryBus();
  const config = { ...defaultConfig(), nodeId: 'sm-1', sm: { heartbeatIntervalMs: 60_000, nodeTtlMs: 200 } };
  const events: SessionEvent[] = [];
  const down: string[] = [];
  bus.subscribe(EVENTS.sessionUnbound, (m) => { events.push(decodeEvent<SessionEvent>(m.data)); });
  bus.subscribe(EVENTS.nodeDown, (m) => { down.push(decodeEvent<{ node: string }>(m.data).node); });
  const logger = createLogger({ service: 'test', level: 'silent' });
  const metrics = createMetrics({ service: 'test', node: 'sm-1', defaultMetrics: false });
  const sm = await startSm({ config, bus, stores, logger, metrics });

  await stores.sessions.heartbeat('dead', 100);
  await stores.sessions.heartbeat('alive', 60_000);
  await stores.sessions.bind('a@example.org', { resource: 'r', sessionId: 's-dead', node: 'dead', priority: 0, available: true, boundAt: 0 });
  await stores.sessions.bind('b@example.org', { resource: 'r', sessionId: 's-alive', node: 'alive', priority: 0, available: true, boundAt: 0 });
  assert.equal(await sm.sweep(), 0, 'nothing expired yet');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(await sm.sweep(), 1);
  await bus.flush();
  await new Promise((r) => setImmediate(r));
  assert.equal(sm.isLeader(), true);
  assert.deepEqual(await stores.sessions.list('a@example.org'), []);
  assert.equal((await stores.sessions.list('b@example.org')).length, 1);
  assert.deepEqual(events.map((e) => [e.bare, e.sessionId, e.reason]), [['a@example.org', 's-dead', 'node down']]);
  assert.deepEqual(down, ['dead']);
  assert.deepEqual((await stores.sessions.nodes()).map((n) => n.node), ['alive']);
  assert.equal(await sm.sweep(), 0, 'purging is idempotent');

  // A second keeper does not sweep while the first holds the lease.
  const sm2 = await startSm({ config: { ...config, nodeId: 'sm-2' }, bus, stores, logger, metrics });
  assert.equal(await sm2.sweep(), 0);
  assert.equal(sm2.isLeader(), false);
  await sm2.stop();
  await sm.stop();
  await bus.close();
  await stores.close();
  await rm(dir, { recursive: true, force: true });
});

test('after a store outage, expired nodes get a grace period of one TTL before they are reaped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-sm-'));
  const stores = await openEmbeddedStores({ dir });
  let down = false;
  const realLease = stores.sessions.lease.bind(stores.sessions);
  stores.sessions.lease = async (...args) => {
    if (down) throw new Error('store unreachable');
    return realLease(...args);
  };
  const bus = createMemoryBus();
  let t = 1_000_000;
  const config = { ...defaultConfig(), nodeId: 'sm-1', sm: { heartbeatIntervalMs: 60_000, nodeTtlMs: 200 } };
  const logger = createLogger({ service: 'test', level: 'silent' });
  const metrics = createMetrics({ service: 'test', node: 'sm-1', defaultMetrics: false });
  const sm = await startSm({ config, bus, stores, logger, metrics, now: () => t });
  await stores.sessions.heartbeat('c2s-1', 50);
  await stores.sessions.bind('a@example.org', { resource: 'r', sessionId: 's1', node: 'c2s-1', priority: 0, available: true, boundAt: 0 });
  down = true;
  await assert.rejects(sm.sweep(), /unreachable/);
  down = false;
  await new Promise((r) => setTimeout(r, 100)); // the heartbeat has expired meanwhile
  t = Date.now();
  assert.equal(await sm.sweep(), 0, 'no purge right after the outage');
  assert.equal((await stores.sessions.list('a@example.org')).length, 1);
  t += 250;
  assert.equal(await sm.sweep(), 1, 'a node still silent after the grace period is reaped');
  await sm.stop();
  await bus.close();
  await stores.close();
  await rm(dir, { recursive: true, force: true });
});

test('a store that lost its live state (a new epoch) is noticed and counted; reaping waits a TTL while the nodes re-record', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-sm-'));
  const stores = await openEmbeddedStores({ dir });
  // The embedded store never loses its live state: stand in a Redis that came back empty.
  const realEpoch = stores.coordination.epoch.bind(stores.coordination);
  let lost = false;
  stores.coordination.epoch = async () => (lost ? { id: 'after-the-loss', ageMs: 0, afterLoss: true, recovering: true } : realEpoch());
  const bus = createMemoryBus();
  let t = 1_000_000;
  const config = { ...defaultConfig(), nodeId: 'sm-1', sm: { heartbeatIntervalMs: 60_000, nodeTtlMs: 200 } };
  const logger = createLogger({ service: 'test', level: 'silent' });
  const metrics = createMetrics({ service: 'test', node: 'sm-1', defaultMetrics: false });
  const sm = await startSm({ config, bus, stores, logger, metrics, now: () => t });
  await sm.sweep();
  lost = true;
  // A node heartbeated into the new store a moment ago and its beat has lapsed (it is busy re-recording).
  await stores.sessions.heartbeat('c2s-1', 50);
  await stores.sessions.bind('a@example.org', { resource: 'r', sessionId: 's1', node: 'c2s-1', priority: 0, available: true, boundAt: 0 });
  await new Promise((r) => setTimeout(r, 100));
  t = Date.now();
  assert.equal(await sm.sweep(), 0, 'no purge right after the loss');
  assert.equal((await stores.sessions.list('a@example.org')).length, 1);
  assert.match(await metrics.registry.metrics(), /^hyphae_store_resets_total\{service="test",node="sm-1"\} 1$/m);
  t += 250;
  assert.equal(await sm.sweep(), 1, 'a node still silent a TTL later is reaped');
  assert.match(await metrics.registry.metrics(), /^hyphae_store_resets_total\{service="test",node="sm-1"\} 1$/m, 'one loss, counted once');
  await sm.stop();
  await bus.close();
  await stores.close();
  await rm(dir, { recursive: true, force: true });
});
