/**
 * NATS killed with -9 and restarted on the same port while users talk
 * (DESIGN.md invariants 1 and 2): chat between users on two c2s nodes and
 * groupchat in a room with occupants on both nodes. Every message is
 * delivered, in the order sent (RFC 6120 §10.1), or answered with an error
 * to its sender; a groupchat message reaches every occupant (XEP-0045 §7.4)
 * or its sender hears that it did not — never a silent partial broadcast.
 * In the room test one c2s node comes back to NATS later than the others
 * (paused with SIGSTOP while NATS comes back, as a long GC pause or CPU
 * throttling would): what the room sends it meanwhile meets nobody on its
 * subject.
 * The figures go to t.diagnostic.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/faults-nats.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Session, login, newAccount, sleep, xml, type XmlElement } from '../harness/clients.js';
import { clusterSkipReason, startCluster, type ClusterServer } from '../harness/server.js';
import { createRoom, describeError, fromRoom, join, mucSkipReason, newRoomJid, pool, receivedSince, track } from '../harness/muc.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

const skip = clusterSkipReason() ?? mucSkipReason('cluster');

/** What became of the messages of one sender to one recipient (or to a room). */
interface Account {
  total: number;
  delivered: number;
  errors: number;
  lost: string[];
  /** Delivered after a message sent later than it had arrived. */
  reordered: string[];
  duplicates: number;
}

/**
 * `sent`: ids in the order sent; `got`: ids as they arrived; `bounced`: ids
 * answered with an error. A message is reordered when one sent after it
 * arrived before it.
 */
function account(sent: readonly string[], got: readonly string[], bounced: ReadonlySet<string>): Account {
  const index = new Map(sent.map((id, i) => [id, i]));
  const seen = new Set<string>();
  const reordered: string[] = [];
  let duplicates = 0;
  let highest = -1;
  for (const id of got) {
    const i = index.get(id);
    if (i === undefined) continue;
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    if (i < highest) reordered.push(id);
    highest = Math.max(highest, i);
  }
  const lost = sent.filter((id) => !seen.has(id) && !bounced.has(id));
  const errors = sent.filter((id) => bounced.has(id)).length;
  return { total: sent.length, delivered: seen.size, errors, lost, reordered, duplicates };
}

describe('NATS restarted (cluster)', () => {
  let cluster: ClusterServer | undefined;
  const sessions: Session[] = [];
  const srv = (): ClusterServer => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };
  const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: timeoutMs, skip: skip ?? false }, (t) => withServerLogs(t, cluster, () => fn(t)));
  };
  const online = async (prefix: string, node: number, resource: string): Promise<Session> => {
    const s = track(await login(srv(), { ...(await newAccount(srv(), prefix)), node, resource, timeoutMs: 20_000 }));
    sessions.push(s);
    return s;
  };
  /** kill -9 of nats-server, and a new one on the same port `downMs` later. */
  const restartNats = async (downMs: number): Promise<void> => {
    await srv().nats.kill();
    await sleep(downMs);
    await srv().nats.restart();
  };
  /** The pid of the process listening on `port` (a c2s node's HTTP port). */
  const pidOn = (port: number): number => {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
    const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
    if (!Number.isInteger(pid)) throw new Error(`no process found listening on ${port}: ${out}`);
    return pid;
  };
  const errorIds = (s: Session): Set<string> => new Set(receivedSince(s, 0, (el) => el.name === 'message' && el.attrs.type === 'error').map((el) => String(el.attrs.id)));

  before(async () => {
    if (skip) return;
    cluster = await startCluster({
      c2sNodes: 2,
      rosterNodes: 1,
      mucNodes: 1,
      proxy65Nodes: 0,
      // A paused node must not be declared dead meanwhile: that is another fault (faults.test.ts).
      config: { sm: { heartbeatIntervalMs: 500, nodeTtlMs: 10_000 }, muc: { messagesPerSecond: 1_000 } },
    });
  }, { timeout: 120_000 });
  afterEach(async () => {
    await pool(sessions.splice(0), 10, (s) => s.stop());
  });
  after(async () => {
    await cluster?.dispose();
  });

  /**
   * Users in pairs across the two c2s nodes write to each other every 50 ms
   * from 1 s before the kill to 3 s after the restart.
   */
  const chatThrough = async (t: TestContext, downMs: number): Promise<void> => {
    const PAIRS = 3;
    const pairs: Array<[Session, Session]> = [];
    for (let i = 0; i < PAIRS; i++) pairs.push([await online('na', 0, `a${i}`), await online('nb', 1, `b${i}`)]);
    const sent = new Map<Session, string[]>();
    let sending = true;
    const talk = async (from: Session, to: Session, tag: string): Promise<void> => {
      const ids: string[] = [];
      sent.set(from, ids);
      for (let n = 0; sending; n++) {
        const id = `${tag}-${n}`;
        ids.push(id);
        await from.send(xml('message', { to: to.jid, type: 'chat', id }, xml('body', {}, id)));
        await sleep(50);
      }
    };
    const talkers = pairs.flatMap(([a, b], i) => [talk(a, b, `${downMs}p${i}ab`), talk(b, a, `${downMs}p${i}ba`)]);
    await sleep(1_000);
    await restartNats(downMs);
    await sleep(3_000);
    sending = false;
    await Promise.all(talkers);

    const directions = pairs.flatMap(([a, b]) => [[a, b], [b, a]] as const);
    const tally = (): Account[] =>
      directions.map(([from, to]) => {
        const got = receivedSince(to, 0, (el) => el.name === 'message' && el.attrs.type === 'chat' && el.attrs.from === from.jid).map((el) => String(el.attrs.id));
        return account(sent.get(from) ?? [], got, errorIds(from));
      });
    // A delivery nobody acknowledged is answered once its request times out.
    const settledMs = await waitUntil(() => tally().every((a) => a.lost.length === 0), 15_000, 'every message delivered or answered', 250).catch(() => -1);
    const accounts = tally();
    const sum = (f: (a: Account) => number): number => accounts.reduce((n, a) => n + f(a), 0);
    const lost = accounts.flatMap((a) => a.lost);
    const reordered = accounts.flatMap((a) => a.reordered);
    t.diagnostic(
      `NATS down ${downMs} ms: ${sum((a) => a.total)} chat messages between ${PAIRS} pairs across two c2s nodes: ${sum((a) => a.delivered)} delivered, ` +
        `${sum((a) => a.errors)} answered with an error, ${lost.length} silently lost, ${reordered.length} reordered, ${sum((a) => a.duplicates)} duplicates; ` +
        `${settledMs < 0 ? 'not all settled' : `all settled ${settledMs} ms after the talk stopped`}` +
        (lost.length ? `; lost: ${lost.slice(0, 10).join(' ')}` : '') +
        (reordered.length ? `; reordered: ${reordered.slice(0, 10).join(' ')}` : ''),
    );
    assert.deepEqual(lost, [], 'messages neither delivered nor answered');
    assert.deepEqual(reordered, [], 'messages delivered after one sent later');
    assert.equal(sum((a) => a.duplicates), 0, 'duplicates');
    assert.ok(pairs.flat().every((s) => s.isOnline), 'nobody was disconnected');
  };

  test('chat across c2s nodes through a 2 s NATS outage: in order, nothing silently lost', 60_000, (t) => chatThrough(t, 2_000));
  test('chat across c2s nodes through a 15 s NATS outage: in order, nothing silently lost', 60_000, (t) => chatThrough(t, 15_000));

  /**
   * A room with three occupants on each c2s node; each writes to the room
   * every 50 ms from 1 s before the kill to 3 s after the restart. c2s node
   * 1 is paused from just before the restart until `lagMs` after it.
   */
  const roomThrough = async (t: TestContext, downMs: number, lagMs: number): Promise<void> => {
    const room = newRoomJid(srv(), 'nats');
    const occupants = [await online('mo', 0, 'o')];
    for (let i = 1; i < 6; i++) occupants.push(await online('mm', i % 2, `m${i}`));
    await createRoom(occupants[0] as Session, room, 'owner');
    for (const [i, m] of occupants.slice(1).entries()) await join(m, room, `nick${i}`);

    const sent = new Map<Session, string[]>();
    let sending = true;
    const talk = async (s: Session, tag: string): Promise<void> => {
      const ids: string[] = [];
      sent.set(s, ids);
      for (let n = 0; sending; n++) {
        const id = `${tag}-${n}`;
        ids.push(id);
        await s.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, id)));
        await sleep(50);
      }
    };
    const talkers = occupants.map((s, i) => talk(s, `${downMs}o${i}`));
    await sleep(1_000);
    const lagging = pidOn(srv().c2s[1]?.httpPort ?? 0);
    await srv().nats.kill();
    await sleep(downMs);
    process.kill(lagging, 'SIGSTOP');
    try {
      await srv().nats.restart();
      await sleep(lagMs);
    } finally {
      process.kill(lagging, 'SIGCONT');
    }
    await sleep(3_000);
    sending = false;
    await Promise.all(talkers);

    const reflections = (o: Session): XmlElement[] => receivedSince(o, 0, (m) => m.name === 'message' && m.attrs.type === 'groupchat' && fromRoom(m, room));
    const tally = (): { full: number; errors: XmlElement[]; partial: string[]; lost: string[]; reordered: string[]; total: number } => {
      const seen = occupants.map((o) => new Set(reflections(o).map((m) => String(m.attrs.id))));
      const out = { full: 0, errors: [] as XmlElement[], partial: [] as string[], lost: [] as string[], reordered: [] as string[], total: 0 };
      for (const s of occupants) {
        const bounced = receivedSince(s, 0, (m) => m.name === 'message' && m.attrs.type === 'error');
        const bouncedIds = new Set(bounced.map((m) => String(m.attrs.id)));
        const ids = sent.get(s) ?? [];
        for (const id of ids) {
          out.total++;
          const at = seen.filter((set) => set.has(id)).length;
          if (bouncedIds.has(id)) out.errors.push(...bounced.filter((m) => m.attrs.id === id));
          else if (at === occupants.length) out.full++;
          else if (at === 0) out.lost.push(id);
          else out.partial.push(`${id} (${at}/${occupants.length})`);
        }
        // Each occupant gets one sender's messages in the order sent.
        for (const o of occupants) {
          const got = reflections(o).map((m) => String(m.attrs.id));
          out.reordered.push(...account(ids, got, new Set()).reordered.map((id) => `${id}@${o.resource}`));
        }
      }
      return out;
    };
    const settledMs = await waitUntil(() => {
      const x = tally();
      return x.lost.length === 0 && x.partial.length === 0;
    }, 15_000, 'every groupchat reflected to all or answered', 250).catch(() => -1);
    const x = tally();
    const conditions = [...new Set(x.errors.map(describeError))];
    t.diagnostic(
      `room with occupants on both c2s nodes, NATS down ${downMs} ms, one node back ${lagMs} ms after the others: ${x.total} groupchat messages: ${x.full} reached all ${occupants.length}, ` +
        `${x.errors.length} answered with an error (${conditions.join(', ') || '-'}), ${x.partial.length} reached only some, ${x.lost.length} silently lost, ` +
        `${x.reordered.length} reordered; ${settledMs < 0 ? 'not all settled' : `all settled ${settledMs} ms after the talk stopped`}` +
        (x.partial.length ? `; partial: ${x.partial.slice(0, 8).join(' ')}` : '') +
        (x.reordered.length ? `; reordered: ${x.reordered.slice(0, 8).join(' ')}` : ''),
    );
    assert.deepEqual(x.partial, [], 'groupchat reflected to some occupants only, and its sender not told');
    assert.deepEqual(x.lost, [], 'groupchat neither reflected nor answered');
    assert.deepEqual(x.reordered, [], 'groupchat reflected out of order');
    assert.ok(occupants.every((s) => s.isOnline), 'nobody was disconnected');
  };

  test('groupchat in a room with occupants on both c2s nodes through a 2 s NATS outage, one node back late: every occupant gets it or its sender is told', 60_000, (t) => roomThrough(t, 2_000, 3_000));
  test('groupchat in a room with occupants on both c2s nodes through a 15 s NATS outage, one node back late: every occupant gets it or its sender is told', 60_000, (t) => roomThrough(t, 15_000, 1_500));
});
