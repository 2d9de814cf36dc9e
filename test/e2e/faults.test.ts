/**
 * Faults in a cluster (DESIGN.md invariant 2): a c2s node killed with -9,
 * Redis and NATS killed with -9 and restarted on the same port. Recovery
 * times are reported with t.diagnostic.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/faults.test.js
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, Session, login, loginFails, newAccount, stanzaErrorCondition, uniqueName, xml, type LoginOptions } from '../harness/clients.js';
import { clusterSkipReason, metricValue, scrapeMetrics, startCluster, type ClusterServer } from '../harness/server.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

const HEARTBEAT_MS = 500;
const NODE_TTL_MS = 3_000;

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
      config: { sm: { heartbeatIntervalMs: HEARTBEAT_MS, nodeTtlMs: NODE_TTL_MS } },
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
