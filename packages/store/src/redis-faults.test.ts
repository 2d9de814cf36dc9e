/**
 * Redis dying under us: commands must fail with a StoreError within the
 * command timeout (never hang), and the store must recover by itself when
 * Redis comes back on the same address — and say so when it came back
 * without its data (a new epoch).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Redis } from 'ioredis';
import { hasBinary, startRedis } from '@hyphae/testkit';
import { openRedisStores } from './redis.js';
import { StoreError } from './types.js';
import { EpochWatch } from './epoch.js';

const skip = hasBinary('redis-server') ? false : 'redis-server is not installed';
const TIMEOUT_MS = 1_000;

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it('kill -9 of Redis: StoreError within the timeout, then recovery on restart', { skip, timeout: 60_000 }, async (t) => {
  const server = await startRedis({ persistence: true });
  const warnings: string[] = [];
  const s = await openRedisStores({
    url: server.url,
    commandTimeoutMs: TIMEOUT_MS,
    logger: { warn: (_o, msg) => warnings.push(msg), info: (_o, msg) => warnings.push(msg) },
  });
  try {
    const acct = { username: 'juliet', domain: 'example.com', credentials: {}, createdAt: 1 };
    assert.equal(await s.accounts.create(acct), true);
    assert.equal(s.isReady(), true);

    await server.kill();
    await until(() => !s.isReady(), 2_000);

    // Both a command issued while down and one issued right at the kill must fail, not hang.
    const started = Date.now();
    const err = await s.accounts.get('example.com', 'juliet').then(
      () => assert.fail('a command succeeded with Redis dead'),
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    assert.ok(err instanceof StoreError, `got ${String(err)}`);
    assert.ok(err.cause instanceof Error, 'the ioredis error is kept as cause');
    assert.ok(took >= TIMEOUT_MS - 50 && took < TIMEOUT_MS + 1_500, `failed after ${took} ms`);
    await assert.rejects(s.sessions.count(), StoreError);
    assert.ok(warnings.some((w) => w.includes('connection lost')), 'the outage is logged');
    assert.equal(warnings.filter((w) => w.includes('connection lost')).length, 1, 'once, not per reconnect attempt');

    const restartAt = Date.now();
    await server.restart();
    const serverUp = Date.now() - restartAt;
    await until(() => s.isReady(), 5_000);
    const ready = Date.now() - restartAt;
    // Accounts were written with AOF fsync always, so they survived the kill.
    assert.deepEqual(await s.accounts.get('example.com', 'juliet'), acct);
    const working = Date.now() - restartAt;
    assert.ok(warnings.some((w) => w.includes('restored')));
    t.diagnostic(`redis restart: server answering PING after ${serverUp} ms, store ready after ${ready} ms, first command ok after ${working} ms`);
  } finally {
    await s.close();
    await server.stop();
  }
});

it('a command queued while Redis is down runs once it is back within the timeout', { skip, timeout: 30_000 }, async () => {
  const server = await startRedis();
  const s = await openRedisStores({ url: server.url, commandTimeoutMs: 3_000 });
  try {
    await server.kill();
    // Queued while down; the restart is quicker than the timeout, so it runs.
    const pending = s.sessions.heartbeat('n1', 60_000);
    await server.restart();
    await pending;
    assert.deepEqual((await s.sessions.nodes()).map((n) => n.node), ['n1']);
  } finally {
    await s.close();
    await server.stop();
  }
});

it('a command in flight when Redis dies is not resent (it could run twice): StoreError, outcome unknown', { skip, timeout: 30_000 }, async () => {
  const server = await startRedis();
  const s = await openRedisStores({ url: server.url, commandTimeoutMs: 2_000 });
  const raw = new Redis(server.url);
  try {
    // Block the server with a busy script (DEBUG SLEEP is disabled by
    // default in Redis 7) so the create is written to the socket but not run.
    raw.eval('for i = 1, 1e10 do end return 1', 0).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const acct = { username: 'romeo', domain: 'example.com', credentials: {}, createdAt: 1 };
    const inFlight = s.accounts.create(acct);
    await new Promise((r) => setTimeout(r, 50));
    await server.kill();
    raw.disconnect(); // or it would resend the busy script to the new server
    await server.restart();
    await assert.rejects(inFlight, StoreError);
    // Had it been resent, this would say "exists" for the user's own new account.
    assert.equal(await s.accounts.create(acct), true);
  } finally {
    raw.disconnect();
    await s.close();
    await server.stop();
  }
});

it('Redis restarted without its data: a new epoch, marked as a loss as soon as a client reconnects; recovering for recoveryMs', { skip, timeout: 30_000 }, async (t) => {
  const server = await startRedis(); // no persistence: a restart comes back empty
  const RECOVERY_MS = 1_500;
  const warnings: string[] = [];
  const s = await openRedisStores({ url: server.url, commandTimeoutMs: 2_000, recoveryMs: RECOVERY_MS, logger: { warn: (_o, msg) => warnings.push(msg), info: () => undefined } });
  let late: Awaited<ReturnType<typeof openRedisStores>> | undefined;
  try {
    const watch = new EpochWatch(s.coordination);
    const first = await watch.check();
    assert.equal(first.epoch.afterLoss, false, 'a fresh Redis is no loss');
    // Reconnecting to the same data is the same generation.
    const again = await openRedisStores({ url: server.url });
    assert.equal((await again.coordination.epoch()).id, first.epoch.id);
    await again.close();

    await server.kill();
    await until(() => !s.isReady(), 2_000);
    await server.restart();
    const restartedAt = Date.now();
    await until(() => s.isReady(), 5_000);
    // The store reads the epoch on reconnect, so even a process that opens
    // the store only now (no earlier epoch to compare with) learns of the loss.
    await until(() => warnings.some((w) => w.includes('without its live state')), 2_000);
    late = await openRedisStores({ url: server.url, recoveryMs: RECOVERY_MS });
    const seenByLate = await late.coordination.epoch();
    assert.equal(seenByLate.afterLoss, true, 'marked as a loss by the reconnecting client');
    assert.equal(seenByLate.recovering, true);
    const after = await watch.check();
    assert.equal(after.reset, true);
    assert.equal(after.epoch.id, seenByLate.id);
    assert.notEqual(after.epoch.id, first.epoch.id);
    t.diagnostic(`new epoch seen ${Date.now() - restartedAt} ms after the restart, age ${after.epoch.ageMs} ms`);
    await until(async () => !(await s.coordination.epoch()).recovering, RECOVERY_MS + 2_000);
    const settled = await s.coordination.epoch();
    assert.ok(settled.ageMs >= RECOVERY_MS, `recovering ended at age ${settled.ageMs} ms`);
    assert.equal(settled.afterLoss, true);
  } finally {
    await late?.close();
    await s.close();
    await server.stop();
  }
});
