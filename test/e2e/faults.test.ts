/**
 * Faults in a cluster (DESIGN.md invariant 2): a c2s node killed with -9,
 * Redis and NATS killed with -9 and restarted on the same port, sm killed,
 * a contact's c2s node killed (presence), a roster instance killed in the
 * middle of subscription handshakes. Recovery times are reported with
 * t.diagnostic.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/faults.test.js
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, Session, bareJid, login, loginFails, newAccount, register, sleep, stanzaErrorCondition, uniqueName, xml, type LoginOptions } from '../harness/clients.js';
import { clusterSkipReason, metricValue, scrapeMetrics, startCluster, type ClusterServer } from '../harness/server.js';
import {
  IM_NS,
  acceptRosterPushes,
  isRosterPush,
  itemsOf,
  presenceFrom,
  rosterGet,
  rosterItem,
  sendPresence,
  sendSubscription,
  subscribeBothWays,
  subscriptionFrom,
  userShard,
  waitPush,
  type RosterItem,
} from '../harness/im.js';
import { redisCommand, waitUntil, withServerLogs } from '../harness/util.js';
import { serverHasRoster } from '../harness/server.js';

const HEARTBEAT_MS = 500;
const NODE_TTL_MS = 3_000;
/** roster.leaseTtlMs of the cluster: bounds a roster instance's failover. */
const LEASE_TTL_MS = 2_000;
/** roster.shards (the default). */
const SHARDS = 64;

const skip = clusterSkipReason();

describe('faults (cluster)', () => {
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
  const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: timeoutMs, skip: skip ?? false }, (t) =>
      withServerLogs(t, cluster, async () => {
        try {
          await fn(t);
        } finally {
          await Promise.all(sessions.splice(0).map((s) => s.stop()));
        }
      }),
    );
  };

  /** Pings `to` from `from` with a short timeout; 'timeout' when nothing answers. */
  async function probe(from: Session, to: string, timeoutMs = 1_000): Promise<string> {
    try {
      const res = await from.ping(to, timeoutMs);
      return res.attrs.type === 'result' ? 'result' : `error:${stanzaErrorCondition(res)}`;
    } catch (err) {
      if (!from.isOnline) throw new Error(`prober ${from.jid} is disconnected`);
      if (/timeout/.test((err as Error).message)) return 'timeout';
      throw err;
    }
  }

  /** Registers a fresh account and logs it in on `node`, retrying until `deadlineMs`; returns the session and elapsed ms. */
  async function loginWhenPossible(node: number, deadlineMs: number): Promise<{ session: Session; ms: number; attempts: number }> {
    const start = Date.now();
    let attempts = 0;
    let last = '';
    while (Date.now() - start < deadlineMs) {
      attempts++;
      try {
        const acc = await newAccount(srv(), 'rec');
        const session = await connect({ ...acc, node, timeoutMs: 5_000 });
        const pong = await session.ping(srv().domain, 3_000);
        if (pong.attrs.type === 'result') return { session, ms: Date.now() - start, attempts };
        last = pong.toString();
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`no successful register+login on node ${node} within ${deadlineMs} ms (${attempts} attempts); last: ${last}`);
  }

  before(async () => {
    if (skip) return;
    cluster = await startCluster({
      c2sNodes: 2,
      redisPersistence: true,
      config: { sm: { heartbeatIntervalMs: HEARTBEAT_MS, nodeTtlMs: NODE_TTL_MS }, roster: { leaseTtlMs: LEASE_TTL_MS } },
    });
  }, { timeout: 120_000 });
  after(async () => {
    await cluster?.dispose();
  });

  test('kill -9 of a c2s node: its sessions leave the registry within seconds', 90_000, async (t) => {
    const a = await connect({ ...(await newAccount(srv(), 'live')), node: 0, resource: 'a' });
    const b = await connect({ ...(await newAccount(srv(), 'doomed')), node: 1, resource: 'b' });
    const cAcc = await newAccount(srv(), 'mover');
    const c = await connect({ ...cAcc, node: 1, resource: 'c' });
    assert.equal(await probe(a, b.jid, 5_000), 'result', 'cross-node ping before the kill');
    assert.equal(await probe(a, c.jid, 5_000), 'result', 'cross-node ping before the kill');
    const smMetrics = async (): Promise<{ alive: number | null; reaped: number | null }> => {
      const text = await scrapeMetrics(srv().smHttpPort);
      return { alive: metricValue(text, 'hyphae_nodes_alive'), reaped: metricValue(text, 'hyphae_reaped_sessions_total') };
    };
    const m0 = await smMetrics();
    assert.equal(m0.alive, 2, 'sm sees both c2s nodes alive');

    const killedAt = Date.now();
    await srv().killNode(1);

    // Registry, seen by sm: the dead node is dropped and its sessions reaped.
    let m1 = m0;
    const reapedMs = waitUntil(
      async () => {
        m1 = await smMetrics();
        return m1.alive === 1 && (m1.reaped ?? 0) >= (m0.reaped ?? 0) + 1;
      },
      NODE_TTL_MS + 10_000,
      'sm to declare the node dead and reap its sessions (hyphae_nodes_alive, hyphae_reaped_sessions_total)',
      100,
    ).then(() => Date.now() - killedAt);

    // Behaviour: an iq to the dead session's full JID is answered service-unavailable (never silently dropped once it is known dead).
    const outcomes: string[] = [];
    await waitUntil(
      async () => {
        const o = await probe(a, b.jid);
        outcomes.push(o);
        return o === 'error:service-unavailable';
      },
      NODE_TTL_MS + 10_000,
      `iq to ${b.jid} on the killed node to answer service-unavailable`,
      100,
    );
    const unavailableMs = Date.now() - killedAt;

    // A client of the dead node reconnects at once to the other node with the same resource.
    const moved = await connect({ ...cAcc, node: 0, resource: 'c', timeoutMs: NODE_TTL_MS + 10_000 });
    const movedMs = Date.now() - killedAt;
    assert.equal(moved.jid, c.jid);

    const registryMs = await reapedMs;
    t.diagnostic(
      `c2s node killed (node TTL ${NODE_TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms): iq to its session answered service-unavailable after ${unavailableMs} ms ` +
        `(probe outcomes in order: ${outcomes.join(', ')}); sm dropped the node and reaped ${(m1.reaped ?? 0) - (m0.reaped ?? 0)} session(s) after ${registryMs} ms; ` +
        `a client of the dead node re-logged in on the other node with the same resource after ${movedMs} ms`,
    );
    const reaped = (m1.reaped ?? 0) - (m0.reaped ?? 0);
    assert.ok(reaped >= 1 && reaped <= 2, `reaped ${reaped} sessions, expected 1 or 2 (b, and c unless its re-login replaced it first)`);
    // After reaping, routing is consistent: the dead resource is unavailable, the moved one answers from its new node.
    assert.equal(await probe(a, b.jid, 5_000), 'error:service-unavailable');
    assert.equal(await probe(a, `${b.bare}/other`, 5_000), 'error:service-unavailable');
    assert.equal(await probe(a, moved.jid, 5_000), 'result', 'the re-logged-in session is reachable');
    assert.equal(a.isOnline, true, 'the session on the surviving node is still connected');

    // The node comes back and serves again.
    const restartAt = Date.now();
    await srv().restartNode(1);
    const { session: fresh, ms } = await loginWhenPossible(1, 30_000);
    assert.equal(await probe(a, fresh.jid, 5_000), 'result', 'cross-node ping to the restarted node');
    await waitUntil(async () => (await smMetrics()).alive === 2, 10_000, 'sm to see the restarted node alive');
    t.diagnostic(`restarted node ready + new login in ${Date.now() - restartAt} ms (login took ${ms} ms)`);
  });

  test('Redis kill -9 + restart on the same port: the cluster recovers', 120_000, async (t) => {
    const acc = await newAccount(srv(), 'rb');
    const a = await connect({ ...(await newAccount(srv(), 'ra')), node: 0, resource: 'a' });
    const b = await connect({ ...acc, node: 1, resource: 'b' });
    assert.equal(await probe(a, b.jid, 5_000), 'result');

    const killedAt = Date.now();
    await srv().redis.kill();
    // While Redis is down, a login fails cleanly (RFC 6120 §6.5.11 <temporary-auth-failure/>), it does not hang.
    const outageStart = Date.now();
    const duringOutage = await loginFails(srv(), { ...acc, node: 0, resource: 'outage', timeoutMs: 15_000 });
    t.diagnostic(`login during the Redis outage failed after ${Date.now() - outageStart} ms: ${duringOutage.message.slice(0, 200)}`);
    assert.equal(duringOutage.condition, 'temporary-auth-failure', duringOutage.message);
    // A stanza during the outage fails alone (answered, type 'wait'); the stream stays up.
    const duringIq = await probe(a, b.jid, 10_000);
    t.diagnostic(`iq during the Redis outage: ${duringIq}`);
    assert.equal(duringIq, 'error:internal-server-error');
    assert.ok(a.isOnline, 'a Redis outage must not close client streams');
    await srv().redis.restart();
    const restartedAt = Date.now();

    const { ms: loginMs, attempts } = await loginWhenPossible(1, 60_000);
    const oldLogin = await waitUntil(
      async () => {
        const s = await login(srv(), { ...acc, node: 0, resource: `after-${uniqueName('')}`, timeoutMs: 5_000 });
        sessions.push(s);
        return true;
      },
      30_000,
      'an account registered before the outage to log in again',
      250,
    );
    const crossMs = await waitUntil(async () => (await probe(a, b.jid)) === 'result', 30_000, 'existing sessions to reach each other again', 200);
    for (const st of srv().exitStatus()) assert.equal(st.code ?? st.signal, null, `${st.name} exited: ${JSON.stringify(st)}`);
    t.diagnostic(
      `Redis down ${restartedAt - killedAt} ms; after restart: new register+login in ${loginMs} ms (${attempts} attempts), ` +
        `old account login after ≤${loginMs + oldLogin} ms, existing cross-node sessions reachable after ≤${loginMs + oldLogin + crossMs} ms`,
    );
  });

  test('Redis kill -9 + restart under chat load: module state (carbons flag, blocklist) survives; every message delivered or answered', 150_000, async (t) => {
    const alice = await newAccount(srv(), 'ma');
    const a1 = await connect({ ...alice, node: 0, resource: 'a1' });
    const a2 = await connect({ ...alice, node: 1, resource: 'a2' });
    const bob = await connect({ ...(await newAccount(srv(), 'mb')), node: 1, resource: 'b' });
    const mallory = await connect({ ...(await newAccount(srv(), 'mm')), node: 0, resource: 'm' });
    const enable = await a2.iq(xml('iq', { type: 'set', id: 'carbons-on' }, xml('enable', { xmlns: 'urn:xmpp:carbons:2' })));
    assert.equal(enable.attrs.type, 'result', enable.toString());
    const block = await a1.iq(xml('iq', { type: 'set', id: 'block' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: bareJid(mallory.jid) }))));
    assert.equal(block.attrs.type, 'result', block.toString());
    await sleep(300);

    // Bob writes to alice/a1 every 100 ms while Redis dies and comes back.
    const ids: string[] = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        const id = `load-${i}`;
        ids.push(id);
        await bob.send(xml('message', { to: a1.jid, type: 'chat', id }, xml('body', {}, `m${i}`)));
        await sleep(100);
      }
    })();
    await sleep(1_000);
    await srv().redis.kill();
    await sleep(2_000);
    await srv().redis.restart();
    await waitUntil(async () => (await probe(a1, a2.jid)) === 'result', 60_000, 'cross-node iq after the Redis restart', 200);
    await sleep(3_000); // two heartbeats: every session re-recorded, with its flags
    sending = false;
    await sender;
    await sleep(1_500);

    // Every message: delivered to a1, or answered to bob with an error; none twice.
    const delivered = new Set(a1.buffered((el) => el.is('message') && String(el.attrs.id).startsWith('load-')).map((el) => String(el.attrs.id)));
    const bounced = new Set(bob.buffered((el) => el.is('message') && el.attrs.type === 'error').map((el) => String(el.attrs.id)));
    const lost = ids.filter((id) => !delivered.has(id) && !bounced.has(id));
    t.diagnostic(`${ids.length} sent: ${delivered.size} delivered, ${bounced.size} answered with an error, ${lost.length} lost`);
    assert.deepEqual(lost, [], 'nothing silently lost');
    assert.equal([...delivered].filter((id) => bounced.has(id)).length, 0, 'none both delivered and bounced');

    // The carbons flag came back with the re-recorded session: a message after recovery is copied to a2.
    await bob.send(xml('message', { to: a1.jid, type: 'chat', id: 'after' }, xml('body', {}, 'after the restart')));
    await a1.waitFor((el) => el.is('message') && el.attrs.id === 'after', 10_000, 'the message after the restart');
    const copy = await a2.waitFor((el) => el.is('message') && el.getChild('received', 'urn:xmpp:carbons:2') !== undefined &&
      el.toString().includes('id="after"'), 10_000, 'its carbon copy at a2');
    assert.equal(copy.attrs.from, bareJid(a1.jid));
    // The blocklist is kept (Redis persists it): mallory is still refused.
    await mallory.send(xml('message', { to: a1.jid, type: 'chat', id: 'blocked' }, xml('body', {}, 'let me in')));
    const refused = await mallory.waitFor((el) => el.is('message') && el.attrs.id === 'blocked' && el.attrs.type === 'error', 10_000, 'the blocked message refused');
    assert.equal(stanzaErrorCondition(refused), 'service-unavailable');
    await sleep(500);
    assert.deepEqual(a1.buffered((el) => el.is('message') && el.attrs.id === 'blocked').map(String), [], 'not delivered');
    for (const st of srv().exitStatus()) assert.equal(st.code ?? st.signal, null, `${st.name} exited: ${JSON.stringify(st)}`);
  });

  test('NATS kill -9 + restart on the same port: the cluster recovers, nothing sent in between is silently lost', 120_000, async (t) => {
    const a = await connect({ ...(await newAccount(srv(), 'na')), node: 0, resource: 'a' });
    const b = await connect({ ...(await newAccount(srv(), 'nb')), node: 1, resource: 'b' });
    assert.equal(await probe(a, b.jid, 5_000), 'result');

    const killedAt = Date.now();
    await srv().nats.kill();
    // A message sent across nodes while the bus is down.
    await a.send(xml('message', { to: b.jid, type: 'chat', id: 'during-outage' }, xml('body', {}, 'sent while NATS was down')));
    await new Promise((r) => setTimeout(r, 1_000));
    await srv().nats.restart();
    const restartedAt = Date.now();

    const crossMs = await waitUntil(async () => (await probe(a, b.jid)) === 'result', 60_000, 'cross-node iq after the NATS restart', 200);
    const { ms: loginMs } = await loginWhenPossible(1, 60_000);
    // The outage message was delivered, or bounced to its sender with an error: never silently dropped.
    const fate = await Promise.race([
      b.waitFor((m) => m.name === 'message' && m.attrs.id === 'during-outage', 15_000).then((m) => `delivered (from ${m.attrs.from})`),
      a.waitFor((m) => m.name === 'message' && m.attrs.id === 'during-outage' && m.attrs.type === 'error', 15_000).then(
        (m) => `bounced with ${stanzaErrorCondition(m)}`,
      ),
    ]).catch(() => 'lost');
    t.diagnostic(
      `NATS down ${restartedAt - killedAt} ms; after restart: cross-node iq works after ${crossMs} ms, new register+login after ≤${crossMs + loginMs} ms; ` +
        `message sent during the outage: ${fate}`,
    );
    assert.notEqual(fate, 'lost', 'a message sent while NATS was down was neither delivered nor bounced');
    assert.equal(a.isOnline && b.isOnline, true, 'sessions survive a bus restart');
    for (const st of srv().exitStatus()) assert.equal(st.code ?? st.signal, null, `${st.name} exited: ${JSON.stringify(st)}`);
    // And ordinary traffic flows in both directions.
    const res = await b.iq(xml('iq', { type: 'get', to: a.jid }, xml('ping', { xmlns: NS.ping })));
    assert.equal(res.attrs.type, 'result');
  });
  const rosterSkip = skip ?? (serverHasRoster() ? null : 'the server build has no roster service');
  const rosterTest = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: timeoutMs, skip: rosterSkip ?? false }, (t) =>
      withServerLogs(t, cluster, async () => {
        try {
          await fn(t);
        } finally {
          await Promise.all(sessions.splice(0).map((s) => s.stop()));
        }
      }),
    );
  };
  /** Logs in, answers roster pushes, asks for the roster and sends initial presence: an interested, available resource. */
  const imSession = async (opts: LoginOptions): Promise<Session> => {
    const s = acceptRosterPushes(await connect(opts));
    await rosterGet(s);
    await sendPresence(s);
    return s;
  };
  /** Holder of each user-actor shard lease, read from Redis (`hy:lease:{roster:shard:<n>}`). */
  const shardHolders = async (): Promise<Array<string | null>> =>
    Promise.all(Array.from({ length: SHARDS }, (_, n) => redisCommand(srv().redis.port, ['GET', `hy:lease:{roster:shard:${n}}`]) as Promise<string | null>));

  rosterTest("kill -9 of the contact's c2s node: the other user sees it go unavailable", 90_000, async (t) => {
    const a = await imSession({ ...(await newAccount(srv(), 'pa')), node: 0, resource: 'a' });
    const b = await imSession({ ...(await newAccount(srv(), 'pb')), node: 1, resource: 'b' });
    await subscribeBothWays(a, b);
    const killedAt = Date.now();
    await srv().killNode(1);
    try {
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), NODE_TTL_MS + 15_000, `unavailable from ${b.jid} after its c2s node was killed`);
      const ms = Date.now() - killedAt;
      t.diagnostic(`contact's c2s node killed: unavailable presence reached the other user after ${ms} ms (sm node TTL ${NODE_TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms)`);
      assert.ok(ms <= NODE_TTL_MS + 5_000, `unavailable presence took ${ms} ms, more than the node TTL (${NODE_TTL_MS} ms) + 5 s`);
      assert.equal(a.isOnline, true);
    } finally {
      await srv().restartNode(1);
    }
  });

  rosterTest("SIGTERM (drain) of the contact's c2s node: the other user sees it go unavailable", 90_000, async (t) => {
    const a = await imSession({ ...(await newAccount(srv(), 'da')), node: 0, resource: 'a' });
    const b = await imSession({ ...(await newAccount(srv(), 'db')), node: 1, resource: 'b' });
    await subscribeBothWays(a, b);
    const stoppedAt = Date.now();
    await srv().stopNode(1);
    try {
      const stopMs = Date.now() - stoppedAt;
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), NODE_TTL_MS + 15_000, `unavailable from ${b.jid} after its c2s node drained`);
      t.diagnostic(`contact's c2s node drained in ${stopMs} ms; unavailable presence reached the other user after ${Date.now() - stoppedAt} ms`);
    } finally {
      await srv().restartNode(1);
    }
  });

  rosterTest('kill -9 of a roster instance in the middle of subscription handshakes: every handshake completes', 150_000, async (t) => {
    const victim = 0;
    const victimId = srv().roster[victim]?.nodeId ?? '?';
    const survivorId = srv().roster[1]?.nodeId ?? '?';
    const before = await shardHolders();
    const owned = before.map((h, n) => (h === victimId ? n : -1)).filter((n) => n >= 0);
    assert.ok(owned.length > 0 && owned.length < SHARDS, `both roster instances should own shards before the kill; holders: ${JSON.stringify(before)}`);
    /** A fresh account whose user actor lives on `holder` (usernames drawn until the shard fits). */
    const accountOn = async (holder: string, prefix: string): Promise<{ username: string; password: string }> => {
      for (;;) {
        const username = uniqueName(prefix);
        if (before[userShard(`${username}@${srv().domain}`, SHARDS)] !== holder) continue;
        const password = `pw-${uniqueName('')}`;
        await register(srv(), username, password);
        return { username, password };
      }
    };
    // Every placement of the two actors (victim V / survivor S) × b's approval
    // sent just before the kill (in flight while the instance dies) or right
    // after (during the failover).
    const placements = [['V', 'V'], ['V', 'S'], ['S', 'V'], ['S', 'S']] as const;
    const pairs: Array<{ a: Session; b: Session; what: string; early: boolean; affected: boolean }> = [];
    for (const early of [true, false]) {
      for (const [pa, pb] of placements) {
        const a = await imSession({ ...(await accountOn(pa === 'V' ? victimId : survivorId, 'ka')), node: 0, resource: 'a' });
        const b = await imSession({ ...(await accountOn(pb === 'V' ? victimId : survivorId, 'kb')), node: 1, resource: 'b' });
        pairs.push({ a, b, early, affected: pa === 'V' || pb === 'V', what: `a on ${pa === 'V' ? 'the killed' : 'the surviving'} instance, b on ${pb === 'V' ? 'the killed' : 'the surviving'} one, b's 'subscribed' sent ${early ? 'just before' : 'right after'} the kill` });
      }
    }
    const PAIRS = pairs.length;
    const affected = pairs.map((p) => p.affected);
    // First half of the handshake, before the kill: a subscribes to b.
    await Promise.all(pairs.map(({ a, b }) => sendSubscription(a, 'subscribe', b.bare)));
    await Promise.all(pairs.map(({ a, b }) => b.waitFor(subscriptionFrom(a.bare, 'subscribe'), 10_000, 'the request before the kill')));
    t.diagnostic(`roster-${victim} owns ${owned.length}/${SHARDS} shards; ${affected.filter(Boolean).length}/${PAIRS} pairs have a user there`);

    const approve = (i: number): Promise<void> => sendSubscription(pairs[i]!.b, 'subscribed', pairs[i]!.a.bare);
    await Promise.all(pairs.map((p, i) => (p.early ? approve(i) : undefined)));
    const killedAt = Date.now();
    await srv().killRoster(victim);
    try {
      await Promise.all(pairs.map((p, i) => (p.early ? undefined : approve(i))));
      const takeover = waitUntil(
        async () => (await shardHolders()).every((h) => h !== null && h !== victimId),
        LEASE_TTL_MS + 20_000,
        `every shard of roster-${victim} to be taken over`,
        100,
      ).then(
        () => Date.now() - killedAt,
        (err: unknown) => err as Error, // reported below, after the handshakes
      );

      // Every pair's approval must complete. A stanza answered with an error of
      // type 'wait' was not lost (DESIGN.md invariant 2): b retries it, as a
      // client should. Without either, it was silently lost. All pairs are
      // judged together so a loss is reported precisely.
      const hasPush = (s: Session, jid: string, pred: (it: RosterItem) => boolean): boolean =>
        s.buffered(isRosterPush).some((p) => (p.getChild('query', IM_NS.roster) ? itemsOf(p.getChild('query', IM_NS.roster)!) : []).some((it) => it.jid === jid && pred(it)));
      const retried: string[] = [];
      const approvalDeadline = killedAt + LEASE_TTL_MS + 30_000;
      const settled = await Promise.all(
        pairs.map(async ({ a, b }, i) => {
          for (;;) {
            if (hasPush(a, b.bare, (it) => it.subscription === 'to' && it.ask === undefined) && hasPush(b, a.bare, (it) => it.subscription === 'from')) {
              return { ok: true, ms: Date.now() - killedAt };
            }
            const errs = b.drain((el) => el.name === 'presence' && el.attrs.type === 'error');
            if (errs.length) {
              retried.push(`pair ${i} (${pairs[i]!.what}) after ${Date.now() - killedAt} ms: ${errs.map((e) => `<${stanzaErrorCondition(e)}/> type=${e.getChild('error')?.attrs.type}`).join(' ')}`);
              await approve(i);
            }
            if (Date.now() > approvalDeadline) return { ok: false, ms: -1 };
            await sleep(100);
          }
        }),
      );
      if (retried.length) t.diagnostic(`'subscribed' answered with an error and retried by the client: ${retried.join(' | ')}`);
      const lost: string[] = [];
      for (const [i, r] of settled.entries()) {
        if (r.ok) continue;
        const { a, b } = pairs[i]!;
        const [ia, ib] = await Promise.all([rosterItem(a, b.bare), rosterItem(b, a.bare)]);
        lost.push(`pair ${i} (${pairs[i]!.what}): a's item ${ia ? `${ia.subscription}${ia.ask ? ' ask' : ''}` : 'none'}, b's item ${ib ? `${ib.subscription}${ib.ask ? ' ask' : ''}` : 'none'}, no error to b`);
      }
      const takeoverMs = await takeover;
      const retriedPairs = new Set(retried.map((r) => Number(/^pair (\d+)/.exec(r)?.[1])));
      const clean = settled.map((r, i) => (r.ok && !retriedPairs.has(i) ? r.ms : -1));
      const hit = clean.filter((ms, i) => affected[i] && ms >= 0);
      const miss = clean.filter((ms, i) => !affected[i] && ms >= 0);
      t.diagnostic(
        `roster-${victim} killed (lease TTL ${LEASE_TTL_MS} ms): its ${owned.length} shards taken over after ${takeoverMs instanceof Error ? takeoverMs.message : `${takeoverMs} ms`}; ` +
          `approvals completed without a client retry (both pushes) after max ${hit.length ? Math.max(...hit) : '-'} ms for ${hit.length} pairs with an actor on it, ` +
          `max ${miss.length ? Math.max(...miss) : '-'} ms for the ${miss.length} others; ${retriedPairs.size} retried after an error, ${lost.length} lost`,
      );
      assert.deepEqual(lost, [], `'subscribed' stanzas silently lost across the roster instance kill (waited ${LEASE_TTL_MS + 30_000} ms)`);
      if (takeoverMs instanceof Error) throw takeoverMs;
      for (const { a, b } of pairs) {
        a.drain(isRosterPush);
        b.drain(isRosterPush);
      }
      // Second half: b subscribes to a, a approves.
      await Promise.all(pairs.map(({ a, b }) => sendSubscription(b, 'subscribe', a.bare)));
      await Promise.all(pairs.map(({ a, b }) => a.waitFor(subscriptionFrom(b.bare, 'subscribe'), 30_000, 'the request after the kill')));
      await Promise.all(pairs.map(({ a, b }) => sendSubscription(a, 'subscribed', b.bare)));
      await Promise.all(
        pairs.map(async ({ a, b }, i) => {
          await waitPush(a, b.bare, (it) => it.subscription === 'both', 30_000, `pair ${i}: a sees 'both'`);
          await waitPush(b, a.bare, (it) => it.subscription === 'both', 30_000, `pair ${i}: b sees 'both'`);
        }),
      );
      // Nothing lost: both rosters agree.
      for (const [i, { a, b }] of pairs.entries()) {
        const ia = await rosterItem(a, b.bare);
        const ib = await rosterItem(b, a.bare);
        assert.equal(`${ia?.subscription}/${ia?.ask ?? '-'}`, 'both/-', `pair ${i}: a's item for b`);
        assert.equal(`${ib?.subscription}/${ib?.ask ?? '-'}`, 'both/-', `pair ${i}: b's item for a`);
      }
      // The instance comes back and the cluster still works (shards rebalance to it).
      const restartAt = Date.now();
      await srv().restartRoster(victim);
      const rebalancedMs = await waitUntil(async () => (await shardHolders()).some((h) => h === victimId), LEASE_TTL_MS + 30_000, `roster-${victim} to own shards again`, 200);
      const c = await imSession({ ...(await newAccount(srv(), 'kc')), node: 0, resource: 'c' });
      const d = await imSession({ ...(await newAccount(srv(), 'kd')), node: 1, resource: 'd' });
      await subscribeBothWays(c, d, 30_000);
      t.diagnostic(`roster-${victim} restarted: owns shards again after ${rebalancedMs} ms; a new handshake completed ${Date.now() - restartAt} ms after the restart began`);
    } finally {
      // Leave the cluster whole for the next test even when this one failed.
      if (!srv().rosterRunning(victim)) await srv().restartRoster(victim).catch(() => undefined);
    }
  });

  test('kill -9 of sm: routing and logins go on; sm restarts and sees both nodes', 90_000, async (t) => {
    const a = await connect({ ...(await newAccount(srv(), 'sa')), node: 0, resource: 'a' });
    const b = await connect({ ...(await newAccount(srv(), 'sb')), node: 1, resource: 'b' });
    await srv().killSm();
    // The registry lives in Redis: without sm, existing and new sessions still route.
    assert.equal(await probe(a, b.jid, 5_000), 'result', 'cross-node iq with sm down');
    const { session: fresh, ms } = await loginWhenPossible(1, 20_000);
    assert.equal(await probe(a, fresh.jid, 5_000), 'result');
    const at = Date.now();
    await srv().restartSm();
    t.diagnostic(`with sm down: new login in ${ms} ms; sm restart to ready in ${Date.now() - at} ms`);
    await waitUntil(async () => metricValue(await scrapeMetrics(srv().smHttpPort), 'hyphae_nodes_alive') === 2, 10_000, 'the restarted sm to see both c2s nodes alive');
    assert.equal(await probe(b, a.jid, 5_000), 'result');
  });
});
