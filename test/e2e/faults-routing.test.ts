/**
 * Routing under faults, in a cluster (issue 21, findings 2 and 4):
 *
 * - Redis dies while a delivery falls back: the c2s node lives on (its
 *   other clients stay connected) and the sender gets a `wait` error
 *   (DESIGN.md invariant 7) — it used to exit on an unhandled rejection.
 * - A c2s node dies: messages to its users sent at once go to offline
 *   storage (RFC 6121 §8.5.2.2.1) and arrive at their next login; the
 *   sender gets no error — it used to get <service-unavailable/> until sm
 *   reaped the node.
 *
 * - A client leaves while Redis is down: its unbind fails, and its node
 *   lives, so nobody would reap the entry; the node's heartbeat finishes
 *   the session end once Redis is back (contacts get unavailable, the
 *   entry goes, messages to the user go to offline storage).
 *
 * Every test also ends with no unhandled error reported by any process
 * (the harness's guard; dispose() fails otherwise).
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/faults-routing.test.js
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Session, bareJid, login, newAccount, sleep, stanzaErrorCondition, xml, type LoginOptions } from '../harness/clients.js';
import { clusterSkipReason, startCluster, type ClusterServer } from '../harness/server.js';
import { acceptRosterPushes, presenceFrom, sendPresence, subscribeBothWays } from '../harness/im.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

const skip = clusterSkipReason();

describe('routing under faults (cluster)', () => {
  let cluster: ClusterServer | undefined;
  const sessions: Session[] = [];
  const srv = (): ClusterServer => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const connect = async (opts: LoginOptions): Promise<Session> => {
    const s = await login(srv(), opts);
    sessions.push(s);
    return s;
  };
  /** Logged in on `node` with initial presence sent and echoed (RFC 6121 §4.2.2). */
  const online = async (opts: LoginOptions): Promise<Session> => {
    const s = await connect(opts);
    await sendPresence(s);
    await s.waitFor(presenceFrom(s.jid), 10_000, 'the own initial presence');
    return s;
  };
  const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: timeoutMs, skip: skip ?? false }, (t) =>
      withServerLogs(t, cluster, async () => {
        try {
          await fn(t);
          assert.deepEqual(srv().unhandledErrors(), [], 'no process reported an unhandled error');
        } finally {
          await Promise.all(sessions.splice(0).map((s) => s.stop()));
        }
      }),
    );
  };
  const chat = (to: string, id: string, body: string) => xml('message', { to, type: 'chat', id }, xml('body', {}, body));
  const isError = (id: string) => (el: { name: string; attrs: Record<string, unknown> }) => el.name === 'message' && el.attrs.id === id && el.attrs.type === 'error';

  before(async () => {
    if (skip) return;
    // Redis keeps its data across kill -9 (appendfsync always): this file is about routing, not registry loss.
    cluster = await startCluster({ c2sNodes: 2, redisPersistence: true, mucNodes: 0, proxy65Nodes: 0 });
  }, { timeout: 120_000 });
  after(async () => {
    await cluster?.dispose();
  });

  test('Redis dies, the recipient closes, the sender writes to it: the node lives on and the sender gets a wait error', 120_000, async (t) => {
    const aliceAcc = await newAccount(srv(), 'fa');
    const alice = await online({ ...aliceAcc, node: 0, resource: 'writer' });
    const bystander = await online({ ...(await newAccount(srv(), 'fc')), node: 0, resource: 'idle' });
    const bob = await online({ ...(await newAccount(srv(), 'fb')), node: 1, resource: 'desk' });
    // Node 0's router now has bob's registry entry cached.
    await alice.send(chat(bob.jid, 'before', 'before the outage'));
    await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'before', 10_000, 'the message before the outage');

    await srv().redis.kill();
    await bob.stop(); // node 1 answers "gone" for his session from now on
    const sentAt = Date.now();
    await alice.send(chat(bob.jid, 'during', 'during the outage'));
    const err = await alice.waitFor(isError('during'), 30_000, 'the error for the message sent during the outage');
    const errorMs = Date.now() - sentAt;
    assert.equal(err.getChild('error')?.attrs.type, 'wait', err.toString());
    assert.equal(stanzaErrorCondition(err), 'internal-server-error', err.toString());
    assert.ok(alice.isOnline, 'the sender is still connected');
    assert.ok(bystander.isOnline, 'another client of the same node is still connected');
    const c2s0 = srv().exitStatus().find((s) => s.name === 'c2s-0');
    assert.deepEqual([c2s0?.code, c2s0?.signal], [null, null], `c2s-0 exited: ${JSON.stringify(c2s0)}`);

    await srv().redis.restart();
    // Once Redis is back the node serves as before: a ping to the server, and to a fresh contact on the other node.
    await waitUntil(async () => (await alice.ping(srv().domain, 3_000)).attrs.type === 'result', 30_000, 'a ping after the Redis restart', 250);
    const carol = await online({ ...(await newAccount(srv(), 'fd')), node: 1, resource: 'x' });
    await waitUntil(async () => (await alice.ping(carol.jid, 3_000)).attrs.type === 'result', 30_000, 'a cross-node ping after the Redis restart', 250);
    t.diagnostic(`Redis killed, recipient gone: the sender's error came after ${errorMs} ms (two registry reads timing out), the node stayed up`);
  });

  test('a session that ends while Redis is down is finished once it is back: contacts get unavailable, messages go to offline storage', 120_000, async (t) => {
    const aliceAcc = await newAccount(srv(), 'ua');
    const alice = acceptRosterPushes(await online({ ...aliceAcc, node: 0, resource: 'leaving' }));
    const bob = acceptRosterPushes(await online({ ...(await newAccount(srv(), 'ub')), node: 1, resource: 'desk' }));
    await subscribeBothWays(alice, bob);
    await sendPresence(alice);
    await bob.waitFor(presenceFrom(alice.jid), 10_000, "alice's presence");

    await srv().redis.kill();
    await alice.stop(); // its unbind cannot reach the registry
    await sleep(7_000); // longer than the store's command timeout (5 s): the unbind fails, it is not just queued
    await srv().redis.restart(); // with its data: alice's entry is still there, on a live node nobody reaps
    const back = Date.now();
    await bob.waitFor(presenceFrom(alice.jid, 'unavailable'), 20_000, "alice's unavailable once the registry is back");
    const ms = Date.now() - back;
    // Her entry is gone too: a message to her is kept offline, not refused as to a vanished session.
    await waitUntil(async () => (await bob.ping(srv().domain, 3_000)).attrs.type === 'result', 30_000, 'a ping after the Redis restart', 250);
    await bob.send(chat(bareJid(alice.jid), 'later', 'for later'));
    await sleep(1_500);
    assert.deepEqual(bob.buffered(isError('later')).map(String), [], 'no error for a message to the user who left');
    const again = await online({ ...aliceAcc, node: 1, resource: 'back' });
    await again.waitFor((el) => el.name === 'message' && el.attrs.id === 'later', 10_000, 'the message from offline storage');
    t.diagnostic(`the session end interrupted by the outage was finished ${ms} ms after Redis came back`);
  });

  test('a c2s node dies: messages sent at once to its user go to offline storage and arrive at the next login, no error', 120_000, async (t) => {
    const alice = await online({ ...(await newAccount(srv(), 'oa')), node: 0, resource: 'writer' });
    const bobAcc = await newAccount(srv(), 'ob');
    const bob = await online({ ...bobAcc, node: 1, resource: 'desk' });
    await alice.send(chat(bob.jid, 'before', 'before the kill'));
    await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'before', 10_000, 'the message before the kill');

    await srv().killNode(1);
    const killedAt = Date.now();
    // At once: sm has not reaped the node (sm.nodeTtlMs), the registry still lists bob's session.
    const ids = ['m1', 'm2', 'm3', 'm4'];
    await alice.send(chat(bob.jid, 'm1', 'one'));
    await alice.send(chat(bareJid(bob.jid), 'm2', 'two'));
    await alice.send(chat(bob.jid, 'm3', 'three'));
    await alice.send(chat(bareJid(bob.jid), 'm4', 'four'));
    const sentMs = Date.now() - killedAt;
    await sleep(3_000);
    const errors = alice.buffered((el) => el.name === 'message' && el.attrs.type === 'error');
    assert.deepEqual(errors.map((e) => `${String(e.attrs.id)}: ${stanzaErrorCondition(e)}`), [], 'no error to the sender');

    // Bob logs in again (on the surviving node): the messages come from offline storage, in order (XEP-0160, XEP-0203 delay).
    const again = await online({ ...bobAcc, node: 0, resource: 'laptop' });
    const got = await again.collect(ids.length, (el) => el.name === 'message' && ids.includes(String(el.attrs.id)), 15_000, 'the stored messages');
    assert.deepEqual(got.map((m) => m.attrs.id), ids);
    assert.ok(got.every((m) => m.getChild('delay', 'urn:xmpp:delay') !== undefined), 'delivered from offline storage (with <delay/>)');
    assert.deepEqual(alice.buffered((el) => el.name === 'message' && el.attrs.type === 'error').map(String), [], 'still no error');
    t.diagnostic(`node killed; ${ids.length} messages sent within ${sentMs} ms of the kill all went to offline storage`);
    await srv().restartNode(1);
  });
});
