/**
 * The accounting rules of the fault harness (account.ts) on fixed journals:
 * what counts as live, offline, bounced, cut or lost, reordered and
 * duplicated, which groupchat copies are expected, stale presence and the
 * recovery time. No cluster.
 *
 * Run: npx tsc -b test && node --test test/dist/faults/account.test.js
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { account, type Bounce, type Conn, type Journal, type Received, type Sent, type Stay } from './account.js';

const OPTS = { injectedAt: 4_000, stoppedAt: 10_000, settledAt: 11_000, flowMs: 1_000, cutWindowMs: 2_000 };

function conn(user: number, index: number, openedAt: number, closedAt: number | null = null, closedByHarness = false): Conn {
  return { user, index, node: user % 2, openedAt, closedAt, closedByHarness };
}
const chat = (from: number, to: number, seq: number, at: number, c = 0): Sent => ({ id: `c.t.${from}.${to}.${seq}`, kind: 'chat', from, to, seq, at, conn: c });
const got = (s: Sent, by: number, at: number, c = 0, delayed = false): Received => ({ id: s.id, kind: s.kind, from: s.from, by, seq: s.seq, at, conn: c, delayed });
const bounce = (s: Sent, at: number): Bounce => ({ id: s.id, kind: s.kind, at, condition: 'service-unavailable', type: 'cancel' });
const journal = (j: Partial<Journal> & { users: number }): Journal => ({ conns: [], stays: [], sent: [], received: [], bounces: [], ...j });

describe('fault accounting', () => {
  it('chat: live, offline, bounced, cut (in flight on a broken connection), lost; reordered and duplicated', () => {
    const m = [0, 1000, 2000, 2500, 3500, 4500, 6000, 7000, 8050, 9000].map((at, seq) => chat(0, 1, seq, at));
    const [, s1, s2, s3, s4, s5, s6, s7, s8, s9] = m as [Sent, Sent, Sent, Sent, Sent, Sent, Sent, Sent, Sent, Sent];
    const j = journal({
      users: 2,
      // The recipient's connection breaks at 5 s; it is back at 8 s.
      conns: [conn(0, 0, 0), conn(1, 0, 0, 5_000), conn(1, 1, 8_000)],
      sent: [s1, s2, s3, s4, s5, s6, s7, s8, s9],
      received: [
        got(s1, 1, 1_010),
        got(s2, 1, 2_010),
        got(s4, 1, 3_510), // s3 never came: a gap before s4, so lost whatever happened later
        got(s8, 1, 8_060, 1), // live on the new connection, ahead of s6 from offline storage: reordered
        got(s6, 1, 8_100, 1, true),
        got(s9, 1, 9_010, 1),
        got(s9, 1, 9_020, 1), // twice
      ],
      bounces: [bounce(s7, 7_010)],
    });
    const a = account(j, OPTS);
    assert.deepEqual(a.chat, { sent: 9, live: 5, offline: 1, bounced: 1, cut: 1, lost: 1, reordered: 1, duplicates: 1, deliveredAndBounced: 0 });
    assert.deepEqual(a.lostIds, [s3.id]);
    assert.deepEqual(a.reorderSamples, ['chat 0→1: 6 after 8']);
    assert.deepEqual(a.bounceConditions, { 'chat:service-unavailable': 1 });
    // Disrupted after the injection (4 s): s5 cut, s6 offline, s7 bounced, the recipient away until 8 s.
    assert.equal(a.recoveryMs, 4_000);
    assert.equal(a.recovered, true);
  });

  it('chat: a message the recipient missed long before its connection broke is lost, not cut; one sent on a broken connection after the last that got through is cut', () => {
    const early = chat(0, 1, 1, 1_000);
    const late = chat(0, 1, 2, 4_500);
    const fromDead = chat(1, 0, 1, 4_600);
    const j = journal({
      users: 2,
      conns: [conn(0, 0, 0), conn(1, 0, 0, 5_000)],
      sent: [early, late, fromDead],
    });
    const a = account(j, OPTS);
    assert.equal(a.chat.lost, 1);
    assert.equal(a.chat.cut, 2);
    assert.deepEqual(a.lostIds, [early.id]);
    assert.equal(a.recovered, false, 'a client never came back');
  });

  it('chat: delivered and bounced is counted apart; nothing disrupted means no recovery time', () => {
    const s = chat(0, 1, 1, 5_000);
    const j = journal({ users: 2, conns: [conn(0, 0, 0), conn(1, 0, 0)], sent: [s], received: [got(s, 1, 5_010)], bounces: [bounce(s, 5_020)] });
    const a = account(j, OPTS);
    assert.equal(a.chat.live, 1);
    assert.equal(a.chat.deliveredAndBounced, 1);
    assert.equal(a.recoveryMs, null);
    assert.equal(a.recovered, true);
  });

  it('groupchat: copies expected per occupant in the room when sent; received, cut, bounced, lost; removed by the room is not expected', () => {
    const g = (seq: number, at: number): Sent => ({ id: `g.t.0.${seq}`, kind: 'groupchat', from: 0, to: -1, seq, at, conn: 0 });
    const [g1, g2, g3, g4, g5] = [g(1, 1_000), g(2, 4_500), g(3, 5_500), g(4, 9_000), g(5, 9_500)] as [Sent, Sent, Sent, Sent, Sent];
    const stays: Stay[] = [
      { user: 0, conn: 0, joinedAt: 0, leftAt: null, endedBy: null },
      { user: 1, conn: 0, joinedAt: 0, leftAt: 5_000, endedBy: 'connection' },
      { user: 2, conn: 0, joinedAt: 0, leftAt: 6_000, endedBy: 'room' },
      { user: 1, conn: 1, joinedAt: 8_000, leftAt: null, endedBy: null },
    ];
    const j = journal({
      users: 3,
      conns: [conn(0, 0, 0), conn(1, 0, 0, 5_000), conn(1, 1, 7_900), conn(2, 0, 0)],
      stays,
      sent: [g1, g2, g3, g4, g5],
      received: [
        got(g1, 0, 1_010),
        got(g1, 1, 1_010),
        got(g1, 2, 1_010),
        got(g2, 0, 4_510), // g2 never reaches user 1, whose connection broke 0.5 s later: cut
        got(g2, 2, 4_510),
        got(g3, 0, 5_510), // user 2 was removed by the room before g3 reached it: not expected
        got(g4, 1, 9_010, 1), // g4 never reaches user 0: lost
      ],
      bounces: [bounce(g5, 9_510)],
    });
    const a = account(j, OPTS);
    assert.deepEqual(a.groupchat, { sent: 5, expected: 11, received: 7, bounced: 2, cut: 1, lost: 1, reordered: 0, duplicates: 0 });
    assert.deepEqual(a.lostIds, [`${g4.id}@0`]);
  });

  it('groupchat: order and duplicates per sender and occupant', () => {
    const g = (seq: number, at: number): Sent => ({ id: `g.t.0.${seq}`, kind: 'groupchat', from: 0, to: -1, seq, at, conn: 0 });
    const [g1, g2, g3] = [g(1, 1_000), g(2, 1_100), g(3, 1_200)] as [Sent, Sent, Sent];
    const j = journal({
      users: 2,
      conns: [conn(0, 0, 0), conn(1, 0, 0)],
      stays: [
        { user: 0, conn: 0, joinedAt: 0, leftAt: null, endedBy: null },
        { user: 1, conn: 0, joinedAt: 0, leftAt: null, endedBy: null },
      ],
      sent: [g1, g2, g3],
      received: [got(g1, 0, 1_010), got(g2, 0, 1_110), got(g3, 0, 1_210), got(g2, 1, 1_110), got(g1, 1, 1_120), got(g3, 1, 1_210), got(g3, 1, 1_220)],
    });
    const a = account(j, OPTS);
    assert.equal(a.groupchat.received, 6);
    assert.equal(a.groupchat.reordered, 1);
    assert.equal(a.groupchat.duplicates, 1);
    assert.deepEqual(a.reorderSamples, ['groupchat 0→1: 1 after 2']);
  });

  it("presence: a contact whose last view is not the user's last presence is stale", () => {
    const p = (from: number, to: number, seq: number, at: number): Sent => ({ id: `p.t.${seq}`, kind: 'presence', from, to, seq, at, conn: 0 });
    const [a1, a2, b1] = [p(0, 1, 1, 1_000), p(0, 1, 2, 3_000), p(1, 0, 1, 1_000)] as [Sent, Sent, Sent];
    // Sent on logging in again, after the views were judged.
    const relogin = p(1, 0, 2, OPTS.settledAt + 500);
    const j = journal({
      users: 2,
      conns: [conn(0, 0, 0), conn(1, 0, 0)],
      sent: [a1, a2, b1, relogin],
      received: [got(a1, 1, 1_010), got(b1, 0, 1_010)],
    });
    const a = account(j, OPTS);
    assert.deepEqual(a.presence, { sent: 4, received: 2, stale: 1, reordered: 0 });
  });
});
