/**
 * XEP-0045 in a cluster (sm + 2 muc instances + 2 c2s nodes on NATS and
 * Redis): a 50-occupant room keeps the order of 100 messages for everyone;
 * the muc instance owning a room is killed (kill -9) or stopped (SIGTERM,
 * handover) while an occupant keeps talking: every message reaches every
 * occupant exactly once and in order, or its sender gets an error — none is
 * lost — and the room (occupants, subject, history, configuration) survives.
 * Failover times are reported with t.diagnostic.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/muc-cluster.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Session, login, newAccount, sleep, uniqueName, type XmlElement } from '../harness/clients.js';
import { startCluster, type ClusterServer } from '../harness/server.js';
import {
  arrivedAt,
  createRoom,
  describeError,
  fieldValue,
  fromRoom,
  getConfig,
  join,
  mark,
  mucLeaseKey,
  mucOwner,
  mucShard,
  mucSkipReason,
  newRoomJid,
  nickOf,
  pool,
  receivedSince,
  roomInfo,
  roomInfoForm,
  say,
  sendGroupchat,
  setSubject,
  track,
  type ConfigFields,
} from '../harness/muc.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

/** muc.leaseTtlMs: bounds how long a room is without an owner after its instance dies. */
const LEASE_TTL_MS = 2_000;
/** High enough that the rate limit never refuses the test's traffic (default 20/s). */
const MESSAGES_PER_SECOND = 1_000;

const skip = mucSkipReason('cluster');

describe('XEP-0045 in a cluster: 50 occupants, failover of the muc instance owning a room', () => {
  let server: ClusterServer | undefined;
  const sessions: Session[] = [];
  const srv = (): ClusterServer => {
    if (!server) throw new Error('cluster did not start');
    return server;
  };
  const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: timeoutMs, skip: skip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
  };
  const online = async (node: number): Promise<Session> => {
    const acc = await newAccount(srv(), 'mc');
    const s = track(await login(srv(), { username: acc.username, password: acc.password, node, timeoutMs: 30_000 }));
    sessions.push(s);
    return s;
  };

  before(async () => {
    if (skip) return;
    server = await startCluster({ c2sNodes: 2, mucNodes: 2, config: { muc: { leaseTtlMs: LEASE_TTL_MS, messagesPerSecond: MESSAGES_PER_SECOND } } });
  }, { timeout: 120_000 });
  afterEach(async () => {
    await pool(sessions.splice(0), 10, (s) => s.stop());
  });
  after(async () => {
    await server?.dispose();
  });

  /** Predicate: a reflected groupchat of this run (body `<tag>:<n>`). */
  const ofRun = (room: string, tag: string) => (el: XmlElement): boolean =>
    el.name === 'message' && el.attrs.type === 'groupchat' && fromRoom(el, room) && (el.getChildText('body') ?? '').startsWith(`${tag}:`);
  const indexOf = (el: XmlElement): number => Number((el.getChildText('body') ?? '').split(':')[1]);

  test('50 occupants on both c2s nodes: 100 groupchat messages reach every occupant exactly once, in order', 240_000, async (t) => {
    const N = 50;
    const M = 100;
    let at = Date.now();
    const ss = await pool(Array.from({ length: N }, (_, i) => i), 5, (i) => online(i % 2));
    t.diagnostic(`${N} accounts registered and logged in (5 at a time, both nodes) in ${Date.now() - at} ms`);
    const room = newRoomJid(srv());
    at = Date.now();
    await createRoom(ss[0]!, room, 'occ0');
    await pool(ss.slice(1), 5, (s, i) => join(s, room, `occ${i + 1}`));
    t.diagnostic(`${N} occupants entered in ${Date.now() - at} ms`);

    const tag = uniqueName('o');
    const marks = ss.map(mark);
    const sender = ss[1]!; // on the second c2s node: every copy crosses the bus
    const counts = (): number[] => ss.map((s, k) => receivedSince(s, marks[k]!, ofRun(room, tag)).length);
    at = Date.now();
    for (let i = 0; i < M; i++) await sendGroupchat(sender, room, `${tag}:${i}`, `${tag}-${i}`);
    const sentMs = Date.now() - at;
    try {
      await waitUntil(() => counts().every((c) => c >= M), 90_000, `every occupant to receive ${M} messages`, 100);
    } catch (err) {
      const c = counts();
      throw new Error(`${(err as Error).message}: received per occupant ${c.join(',')} (${c.filter((x) => x < M).length} of ${N} short)`);
    }
    const deliveredMs = Date.now() - at;
    await sleep(1_500); // late duplicates would land here
    const problems: string[] = [];
    for (const [k, s] of ss.entries()) {
      const got = receivedSince(s, marks[k]!, ofRun(room, tag));
      const idx = got.map(indexOf);
      if (idx.length !== M) problems.push(`occ${k} got ${idx.length} copies (duplicates: ${idx.length - new Set(idx).size})`);
      const firstBad = idx.findIndex((v, i) => v !== i);
      if (firstBad >= 0) problems.push(`occ${k} out of order at position ${firstBad}: ${idx.slice(Math.max(0, firstBad - 2), firstBad + 3).join(',')}`);
      const strangers = got.filter((el) => nickOf(el) !== 'occ1' || el.attrs.to !== s.jid);
      if (strangers.length) problems.push(`occ${k}: ${strangers.length} copies not from room/occ1 to its full JID, e.g. ${strangers[0]!.toString().slice(0, 200)}`);
    }
    const errors = receivedSince(sender, marks[1]!, (el) => el.name === 'message' && el.attrs.type === 'error');
    if (errors.length) problems.push(`the sender got ${errors.length} errors, e.g. ${describeError(errors[0]!)}`);
    t.diagnostic(`${M} messages sent in ${sentMs} ms; all ${N * M} copies delivered ${deliveredMs} ms after the first was sent`);
    assert.deepEqual(problems, [], 'every occupant receives every message once, in order');

    const late = await online(0);
    const j = await join(late, room, 'late');
    assert.deepEqual(j.others.map((el) => nickOf(el)).sort(), ss.map((_, i) => `occ${i}`).sort(), 'a new occupant sees all 50');
    const history = j.history.map(indexOf);
    assert.ok(history.length > 0, 'the new occupant gets history');
    assert.deepEqual(history, Array.from({ length: history.length }, (_, i) => M - history.length + i), 'the history is the newest messages, in order');
  });

  /**
   * Kills (kill -9) or stops (SIGTERM) the muc instance owning a room while
   * an occupant sends a groupchat message every 20 ms, then judges every
   * message and checks that the room survived.
   */
  const failover = async (t: TestContext, how: 'kill' | 'stop'): Promise<void> => {
    const OCC = 6;
    const ss = await pool(Array.from({ length: OCC }, (_, i) => i), 3, (i) => online(i % 2));
    const nicks = ss.map((_, i) => `o${i}`);
    const room = newRoomJid(srv(), `fo${how}`);
    const config: ConfigFields = {
      roomname: `Failover ${how}`,
      roomdesc: 'outlives its muc instance',
      whois: 'anyone',
      allowpm: 'participants',
      publicroom: true,
      persistentroom: false,
      changesubject: false,
    };
    await createRoom(ss[0]!, room, nicks[0]!, config);
    for (let i = 1; i < OCC; i++) await join(ss[i]!, room, nicks[i]!);
    const subject = `before the ${how}`;
    await setSubject(ss[0]!, room, subject);
    const pre = [`pre-${how}:0`, `pre-${how}:1`];
    for (const body of pre) await say(ss[2]!, room, body);
    const infoBefore = await roomInfo(ss[3]!, room);
    const formBefore = await getConfig(ss[0]!, room);

    const sender = ss[1]!;
    const tag = uniqueName('f');
    const marks = ss.map(mark);
    const sentAt: number[] = [];
    let stopSending = false;
    let sendError: Error | null = null;
    const sending = (async () => {
      for (let i = 0; !stopSending; i++) {
        sentAt[i] = Date.now();
        try {
          await sendGroupchat(sender, room, `${tag}:${i}`, `${tag}-${i}`);
        } catch (err) {
          sendError = err as Error;
          return;
        }
        await sleep(20);
      }
    })();

    let victim = -1;
    let faultAt = 0;
    let resumedMs = -1;
    try {
      await sleep(1_000);
      victim = await mucOwner(srv(), room);
      assert.ok(victim >= 0, `no muc instance holds the lease of ${room}'s shard ${mucShard(room)} (Redis key ${mucLeaseKey(mucShard(room))})`);
      faultAt = Date.now();
      if (how === 'kill') await srv().killMuc(victim);
      else await srv().stopMuc(victim);
      const faultMs = Date.now() - faultAt;
      // Keep talking until a message sent after the fault has come back to the sender, then 2 s more.
      const afterFault = (el: XmlElement): boolean => (sentAt[indexOf(el)] ?? 0) > faultAt + faultMs;
      await waitUntil(
        () => receivedSince(sender, marks[1]!, ofRun(room, tag)).some(afterFault),
        LEASE_TTL_MS + 30_000,
        `a message sent after the ${how} of muc-${victim} to be reflected`,
        50,
      );
      await sleep(2_000);
    } finally {
      stopSending = true;
      await sending;
    }
    if (sendError) throw new Error(`sending failed: ${(sendError as Error).message}`);
    const sent = sentAt.length;

    // Settle: every message delivered to every occupant or answered with an error (at most 30 s).
    const errorIds = (): Map<number, XmlElement> =>
      new Map(
        receivedSince(sender, marks[1]!, (el) => el.name === 'message' && el.attrs.type === 'error' && (el.attrs.id ?? '').startsWith(`${tag}-`)).map((el) => [
          Number((el.attrs.id ?? '').slice(tag.length + 1)),
          el,
        ]),
      );
    const received = (): number[][] => ss.map((s, k) => receivedSince(s, marks[k]!, ofRun(room, tag)).map(indexOf));
    const settled = (): boolean => {
      const errs = errorIds();
      const sets = received().map((l) => new Set(l));
      for (let i = 0; i < sent; i++) if (!errs.has(i) && !sets.every((set) => set.has(i))) return false;
      return true;
    };
    await waitUntil(settled, 30_000, 'every message to be delivered or answered with an error', 200).catch(() => undefined);
    await sleep(1_000); // late duplicates would land here

    const errs = errorIds();
    const lists = received();
    const sets = lists.map((l) => new Set(l));
    const lost: string[] = [];
    const errored: number[] = [];
    const erroredYetDelivered: string[] = [];
    const deliveredToAll: number[] = [];
    for (let i = 0; i < sent; i++) {
      const n = sets.filter((set) => set.has(i)).length;
      if (errs.has(i)) {
        errored.push(i);
        if (n > 0) erroredYetDelivered.push(`#${i} (${describeError(errs.get(i)!)}) reached ${n}/${OCC}`);
      } else if (n === OCC) deliveredToAll.push(i);
      else lost.push(`#${i} (sent ${sentAt[i]! - faultAt} ms after the ${how}) reached ${n}/${OCC}: ${nicks.filter((_, k) => !sets[k]!.has(i)).join(',')} missed it`);
    }
    const dupes: string[] = [];
    const disorder: string[] = [];
    for (const [k, l] of lists.entries()) {
      if (l.length !== sets[k]!.size) dupes.push(`${nicks[k]}: ${l.length - sets[k]!.size} duplicate(s)`);
      const bad = l.findIndex((v, i) => i > 0 && v <= l[i - 1]!);
      if (bad > 0) disorder.push(`${nicks[k]}: ${l[bad - 1]} then ${l[bad]}`);
    }
    const conditions = new Map<string, number>();
    for (const e of errs.values()) conditions.set(describeError(e), (conditions.get(describeError(e)) ?? 0) + 1);
    const firstBack = receivedSince(sender, marks[1]!, ofRun(room, tag)).find((el) => (sentAt[indexOf(el)] ?? 0) > faultAt);
    resumedMs = firstBack ? arrivedAt(sender, firstBack) - faultAt : -1;
    t.diagnostic(
      `${how} of muc-${victim} (lease TTL ${LEASE_TTL_MS} ms): the first message sent after it was reflected ${resumedMs} ms after the ${how}; ` +
        `${sent} messages sent (one every ~20 ms): ${deliveredToAll.length} delivered to all ${OCC} occupants, ${errored.length} answered with an error ` +
        `(${[...conditions].map(([c, n]) => `${n}× ${c}`).join(', ') || 'none'}), ${lost.length} lost`,
    );
    if (errored.length) t.diagnostic(`answered with an error: ${errored.map((i) => `#${i} sent ${sentAt[i]! - faultAt} ms after the ${how}`).join(', ')}`);
    if (erroredYetDelivered.length) t.diagnostic(`answered with an error although delivered: ${erroredYetDelivered.join('; ')}`);
    // Worst sender-to-reflection latency: how long a message waited while the room had no owner.
    const back = receivedSince(sender, marks[1]!, ofRun(room, tag));
    const latencies = back.map((el) => ({ i: indexOf(el), ms: arrivedAt(sender, el) - sentAt[indexOf(el)]! }));
    const worst = latencies.reduce((m, l) => (l.ms > m.ms ? l : m), { i: -1, ms: 0 });
    if (worst.i >= 0) t.diagnostic(`slowest reflection: #${worst.i}, sent ${sentAt[worst.i]! - faultAt} ms after the ${how}, came back after ${worst.ms} ms`);
    assert.deepEqual(lost, [], 'messages neither delivered to every occupant nor answered with an error');
    assert.deepEqual(dupes, [], 'duplicates');
    assert.deepEqual(disorder, [], 'out-of-order delivery');

    // The room survived, whole.
    const owner = await mucOwner(srv(), room);
    if (how === 'kill') assert.notEqual(owner, victim, `the lease of ${room}'s shard is still held by the killed instance`);
    assert.ok(owner >= 0, `nobody holds the lease of ${room}'s shard after the ${how}`);
    const infoAfter = await roomInfo(ss[3]!, room);
    assert.deepEqual([...infoAfter.features].sort(), [...infoBefore.features].sort(), 'disco#info features after the failover');
    assert.equal(infoAfter.identities.find((i) => i.category === 'conference')?.name, `Failover ${how}`);
    assert.equal(fieldValue(roomInfoForm(infoAfter)!, 'muc#roominfo_description'), 'outlives its muc instance');
    const formAfter = await getConfig(ss[0]!, room);
    for (const v of formBefore.fields.keys()) {
      assert.deepEqual(formAfter.fields.get(v)?.values, formBefore.fields.get(v)?.values, `configuration field ${v} after the failover`);
    }
    const fresh = await online(0);
    const j = await join(fresh, room, 'fresh');
    assert.deepEqual(j.others.map((el) => nickOf(el)).sort(), [...nicks].sort(), 'a new occupant sees every occupant that was there');
    assert.equal(j.subject.getChildText('subject'), subject, 'the subject survived');
    const story = [...pre, ...deliveredToAll.map((i) => `${tag}:${i}`)];
    const history = j.history.map((el) => el.getChildText('body') ?? '');
    const limit = Number(fieldValue(formBefore, 'muc#maxhistoryfetch') ?? fieldValue(formBefore, 'muc#roomconfig_historylength') ?? 20);
    assert.equal(history.length, Math.min(limit, story.length), `history length (room limit ${limit})`);
    assert.deepEqual(history, story.slice(-history.length), 'the history is the newest messages the occupants received, in order');
    // And the room still works for everyone.
    const id = await sendGroupchat(ss[4]!, room, 'still here');
    for (const s of [...ss, fresh]) await s.waitFor((el) => el.name === 'message' && el.attrs.id === id && fromRoom(el, room), 10_000, 'a message after the failover');
  };

  const restore = async (): Promise<void> => {
    for (const [i] of srv().muc.entries()) if (!srv().mucRunning(i)) await srv().restartMuc(i);
  };

  test('kill -9 of the muc instance owning a room while an occupant talks: every message reaches all occupants once, in order, or is answered with an error; the room survives intact', 180_000, async (t) => {
    try {
      await failover(t, 'kill');
    } finally {
      await restore();
    }
  });

  test('SIGTERM of the muc instance owning a room (handover) while an occupant talks: nothing lost, the room survives intact', 180_000, async (t) => {
    try {
      await failover(t, 'stop');
    } finally {
      await restore();
    }
  });
});
