/**
 * RFC 6121 with real clients: roster (get/set/remove, versioning, pushes,
 * validation), presence subscriptions (handshakes, pending requests,
 * pre-approval, cancellation, every row of Appendix A), presence (probes,
 * unavailable on logout and broken connections, directed presence), message
 * routing to bare JIDs by priority, and offline messages (XEP-0160 with
 * XEP-0203 delay, cap, deleted accounts).
 *
 * One suite, run against both modes (DESIGN.md invariant 4): `hyphae all`,
 * and a cluster of sm + 2 roster instances + 2 c2s nodes in which the two
 * users of a test sit on different c2s nodes.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/roster.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  NS,
  Session,
  login,
  newAccount,
  register,
  sleep,
  stanzaErrorCondition,
  uniqueName,
  xml,
  type LoginOptions,
  type XmlElement,
} from '../harness/clients.js';
import { rosterSkipReason, startCluster, startEmbedded, type HyphaeServer } from '../harness/server.js';
import {
  IM_NS,
  acceptRosterPushes,
  breakConnection,
  describeItem,
  isRosterPush,
  presenceFrom,
  rosterGet,
  rosterItem,
  rosterSet,
  rosterSetOk,
  sendPresence,
  sendSubscription,
  subscribeBothWays,
  subscriptionFrom,
  waitPush,
  type RosterItem,
  type SubscriptionType,
} from '../harness/im.js';
import { withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';
type Account = { username: string; password: string; bare: string };

/** Roster lease TTL in cluster tests (faster failover than the 5 s default). */
const LEASE_TTL_MS = 2_000;

// ---------------------------------------------------------------------------
// RFC 6121 Appendix A, as data.

/** A.1 defined states, short names; `+out` = Pending Out (ask), `+in` = Pending In. */
type St = 'none' | 'none+out' | 'none+in' | 'none+out+in' | 'to' | 'to+in' | 'from' | 'from+out' | 'both';
const STATES: readonly St[] = ['none', 'none+out', 'none+in', 'none+out+in', 'to', 'to+in', 'from', 'from+out', 'both'];
const RFC_NAME: Record<St, string> = {
  none: 'None',
  'none+out': 'None + Pending Out',
  'none+in': 'None + Pending In',
  'none+out+in': 'None + Pending Out+In',
  to: 'To',
  'to+in': 'To + Pending In',
  from: 'From',
  'from+out': 'From + Pending Out',
  both: 'Both',
};
/** The contact's view of the user when the user's view of the contact is the key (both accounts are local). */
const MIRROR: Record<St, St> = {
  none: 'none',
  'none+out': 'none+in',
  'none+in': 'none+out',
  'none+out+in': 'none+out+in',
  to: 'from',
  'to+in': 'from+out',
  from: 'to',
  'from+out': 'to+in',
  both: 'both',
};
const TYPES: readonly SubscriptionType[] = ['subscribe', 'unsubscribe', 'subscribed', 'unsubscribed'];
/** A.2: the user's server processing an outbound stanza → the user's new state. */
const OUTBOUND: Record<SubscriptionType, Record<St, St>> = {
  // A.2.1
  subscribe: { none: 'none+out', 'none+out': 'none+out', 'none+in': 'none+out+in', 'none+out+in': 'none+out+in', to: 'to', 'to+in': 'to+in', from: 'from+out', 'from+out': 'from+out', both: 'both' },
  // A.2.2
  unsubscribe: { none: 'none', 'none+out': 'none', 'none+in': 'none+in', 'none+out+in': 'none+in', to: 'none', 'to+in': 'none+in', from: 'from', 'from+out': 'from', both: 'from' },
  // A.2.3 (None, None + Pending Out, To: §3.4 pre-approval, no state change)
  subscribed: { none: 'none', 'none+out': 'none+out', 'none+in': 'from', 'none+out+in': 'from+out', to: 'to', 'to+in': 'both', from: 'from', 'from+out': 'from+out', both: 'both' },
  // A.2.4
  unsubscribed: { none: 'none', 'none+out': 'none+out', 'none+in': 'none', 'none+out+in': 'none+out', to: 'to', 'to+in': 'to', from: 'none', 'from+out': 'none+out', both: 'to' },
};
/** A.3: the contact's server processing the inbound stanza → [the contact's new state, deliver to the contact?]. */
const INBOUND: Record<SubscriptionType, Record<St, [St, boolean]>> = {
  // A.3.1 (From, From + Pending Out, Both: not delivered, the server auto-replies 'subscribed')
  subscribe: { none: ['none+in', true], 'none+out': ['none+out+in', true], 'none+in': ['none+in', false], 'none+out+in': ['none+out+in', false], to: ['to+in', true], 'to+in': ['to+in', false], from: ['from', false], 'from+out': ['from+out', false], both: ['both', false] },
  // A.3.2
  unsubscribe: { none: ['none', false], 'none+out': ['none+out', false], 'none+in': ['none', true], 'none+out+in': ['none+out', true], to: ['to', false], 'to+in': ['to', true], from: ['none', true], 'from+out': ['none+out', true], both: ['to', true] },
  // A.3.3
  subscribed: { none: ['none', false], 'none+out': ['to', true], 'none+in': ['none+in', false], 'none+out+in': ['to+in', true], to: ['to', false], 'to+in': ['to+in', false], from: ['from', false], 'from+out': ['both', true], both: ['both', false] },
  // A.3.4
  unsubscribed: { none: ['none', false], 'none+out': ['none', true], 'none+in': ['none+in', false], 'none+out+in': ['none+in', true], to: ['none', true], 'to+in': ['none+in', true], from: ['from', false], 'from+out': ['from', true], both: ['from', true] },
};
/** How to drive A's view of B into each state (B's view of A ends in the mirror state): [sender, type]. */
const SETUP: Record<St, Array<['A' | 'B', SubscriptionType]>> = {
  none: [],
  'none+out': [['A', 'subscribe']],
  'none+in': [['B', 'subscribe']],
  'none+out+in': [['A', 'subscribe'], ['B', 'subscribe']],
  to: [['A', 'subscribe'], ['B', 'subscribed']],
  'to+in': [['A', 'subscribe'], ['B', 'subscribed'], ['B', 'subscribe']],
  from: [['B', 'subscribe'], ['A', 'subscribed']],
  'from+out': [['B', 'subscribe'], ['A', 'subscribed'], ['A', 'subscribe']],
  both: [['A', 'subscribe'], ['B', 'subscribed'], ['B', 'subscribe'], ['A', 'subscribed']],
};
// A self-check of the data: replaying SETUP through the tables lands in the named states.
for (const st of STATES) {
  let a: St = 'none';
  let b: St = 'none';
  for (const [who, type] of SETUP[st]) {
    if (who === 'A') {
      a = OUTBOUND[type][a];
      b = INBOUND[type][b][0];
    } else {
      b = OUTBOUND[type][b];
      a = INBOUND[type][a][0];
    }
  }
  if (a !== st || b !== MIRROR[st]) throw new Error(`SETUP[${st}] reaches ${a}/${b}`);
}
const parts = (s: St): { subscription: string; out: boolean; in: boolean } => {
  const p = s.split('+');
  return { subscription: p[0] ?? 'none', out: p.includes('out'), in: p.includes('in') };
};
/** What a roster get shows of a state: subscription and ask. */
const visible = (s: St): string => {
  const p = parts(s);
  return `${p.subscription}${p.out ? '+ask' : ''}`;
};
const visibleOf = (item: RosterItem | null): string =>
  item ? `${item.subscription}${item.ask === 'subscribe' ? '+ask' : item.ask !== undefined ? `+ask=${item.ask}` : ''}` : 'absent';

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function rosterSuite(mode: Mode): void {
  const skip = rosterSkipReason(mode);
  describe(`roster, subscriptions, presence, offline (${mode})`, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    const extraServers: HyphaeServer[] = [];
    /** c2s node of the "first" and of the "second" user of a test: different nodes in cluster mode. */
    const nodeA = 0;
    const nodeB = mode === 'cluster' ? 1 : 0;
    /** How long to wait before concluding that something was not delivered. */
    const quietMs = mode === 'cluster' ? 1_200 : 800;

    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
      it(name, { timeout: timeoutMs, skip: skip ?? false }, async (t) => {
        const started = Date.now();
        await withServerLogs(t, server, () => fn(t));
        t.diagnostic(`${mode}: ${Date.now() - started} ms`);
      });
    };

    /** Logs in (roster pushes answered); `roster` → roster get first (an interested resource); `presence` → initial presence. */
    const online = async (
      acc: Account,
      opts: Partial<LoginOptions> & { roster?: boolean; presence?: boolean; priority?: number; status?: string; on?: HyphaeServer } = {},
    ): Promise<Session> => {
      const s = await login(opts.on ?? srv(), { username: acc.username, password: acc.password, ...opts });
      sessions.push(s);
      acceptRosterPushes(s);
      if (opts.roster ?? true) await rosterGet(s);
      if (opts.presence ?? true) await sendPresence(s, {}, { priority: opts.priority, status: opts.status });
      return s;
    };
    const account = (prefix: string, on?: HyphaeServer): Promise<Account> => newAccount(on ?? srv(), prefix);

    /** Nothing matching `pred` arrives at `s` within `ms` (checked buffered and future). */
    const assertNothing = async (s: Session, pred: (el: XmlElement) => boolean, what: string, ms = quietMs): Promise<void> => {
      try {
        const el = await s.waitFor(pred, ms, what);
        assert.fail(`${s.jid} received ${what}, which it must not: ${el.toString()}`);
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        if (!/timeout/.test((err as Error).message)) throw err;
      }
    };

    const makeBoth = (a: Session, b: Session): Promise<void> => subscribeBothWays(a, b);

    before(async () => {
      if (skip) return;
      server =
        mode === 'embedded'
          ? await startEmbedded()
          : await startCluster({ c2sNodes: 2, rosterNodes: 2, config: { roster: { leaseTtlMs: LEASE_TTL_MS } } });
    }, { timeout: 120_000 });
    afterEach(async () => {
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
      await Promise.all(extraServers.splice(0).map((s) => s.dispose()));
    });
    after(async () => {
      await server?.dispose();
    });

    // --- roster ----------------------------------------------------------------

    test('stream features advertise roster versioning and subscription pre-approval', 30_000, async () => {
      const s = await online(await account('feat'), { node: nodeA, roster: false, presence: false });
      const f = s.postAuthFeatures;
      assert.ok(f, 'no stream features after authentication');
      assert.ok(f.getChild('ver', IM_NS.rosterVer), `no <ver xmlns='${IM_NS.rosterVer}'/> in ${f.toString()}`);
      assert.ok(f.getChild('sub', IM_NS.preApproval), `no <sub xmlns='${IM_NS.preApproval}'/> in ${f.toString()}`);
    });

    test('roster get of a new account: empty, with a ver', 30_000, async () => {
      const s = await online(await account('empty'), { node: nodeB, roster: false, presence: false });
      const r = await rosterGet(s);
      assert.ok(r.items, `roster get answered without a query: ${r.stanza.toString()}`);
      assert.deepEqual(r.items, [], `items of a new account: ${r.stanza.toString()}`);
      assert.ok(r.ver !== undefined, `no ver attribute although versioning is advertised: ${r.stanza.toString()}`);
      assert.equal(r.stanza.attrs.to, s.jid);
    });

    test('roster set/update/remove: result to the requester and a push to every resource (incl. a second one on another node)', 45_000, async () => {
      const acc = await account('own');
      const r1 = await online(acc, { node: nodeA, resource: 'r1', presence: false });
      const r2 = await online(acc, { node: nodeB, resource: 'r2', presence: false });
      const contact = `${uniqueName('romeo')}@${srv().domain}`;

      // Add.
      const res = await rosterSet(r1, { jid: contact, name: 'Romeo', groups: ['Friends', 'Lovers'] });
      assert.equal(res.attrs.type, 'result', res.toString());
      assert.equal(res.getChild('query', IM_NS.roster), undefined, `the result of a roster set carries no query: ${res.toString()}`);
      const pushes = await Promise.all([r1, r2].map((s) => waitPush(s, contact, (i) => i.name === 'Romeo')));
      for (const p of pushes) {
        assert.equal(p.item.subscription, 'none', describeItem(p.item));
        assert.equal(p.item.ask, undefined, describeItem(p.item));
        assert.deepEqual([...p.item.groups].sort(), ['Friends', 'Lovers'], describeItem(p.item));
        assert.ok(p.ver !== undefined, `push without ver: ${p.stanza.toString()}`);
        assert.ok(p.stanza.attrs.id, 'push without id');
      }
      assert.equal(pushes[0]?.ver, pushes[1]?.ver, 'both resources got the same version');
      const v1 = pushes[0]?.ver;
      const got = await rosterGet(r2);
      assert.equal(got.items?.length, 1, got.stanza.toString());
      assert.equal(describeItem(got.items?.[0]), describeItem({ jid: contact, name: 'Romeo', subscription: 'none', groups: got.items?.[0]?.groups ?? [] }));
      assert.equal(got.ver, v1, 'roster get after the push has the push version');

      // Update: new name, new groups.
      const upd = await rosterSet(r2, { jid: contact, name: 'Romeo Montague', groups: ['Verona'] });
      assert.equal(upd.attrs.type, 'result', upd.toString());
      const updPushes = await Promise.all([r1, r2].map((s) => waitPush(s, contact, (i) => i.name === 'Romeo Montague')));
      for (const p of updPushes) {
        assert.deepEqual(p.item.groups, ['Verona'], describeItem(p.item));
        assert.notEqual(p.ver, v1, 'an update changes the version');
      }
      const afterUpd = await rosterItem(r1, contact);
      assert.equal(afterUpd?.name, 'Romeo Montague');
      assert.deepEqual(afterUpd?.groups, ['Verona']);

      // Remove.
      const rem = await rosterSet(r1, { jid: contact, subscription: 'remove' });
      assert.equal(rem.attrs.type, 'result', rem.toString());
      const remPushes = await Promise.all([r1, r2].map((s) => waitPush(s, contact, (i) => i.subscription === 'remove')));
      for (const p of remPushes) assert.ok(p.ver !== undefined && p.ver !== updPushes[0]?.ver, `remove push version: ${p.stanza.toString()}`);
      const empty = await rosterGet(r2);
      assert.deepEqual(empty.items, [], empty.stanza.toString());
    });

    test('roster versioning: current ver → empty result; older or unknown ver → the full roster', 45_000, async () => {
      const s = await online(await account('ver'), { node: nodeB, roster: false, presence: false });
      const v0 = (await rosterGet(s)).ver;
      assert.ok(v0 !== undefined, 'no ver on the first get');
      const c1 = `${uniqueName('c1')}@${srv().domain}`;
      const c2 = `${uniqueName('c2')}@${srv().domain}`;
      await rosterSetOk(s, { jid: c1, name: 'one' });
      const v1 = (await waitPush(s, c1)).ver;
      await rosterSetOk(s, { jid: c2, name: 'two' });
      const v2 = (await waitPush(s, c2)).ver;
      assert.ok(v1 !== undefined && v2 !== undefined && new Set([v0, v1, v2]).size === 3, `versions must differ: ${v0}, ${v1}, ${v2}`);

      const same = await rosterGet(s, v2);
      assert.equal(same.items, null, `roster get with the current ver (${v2}) must be an empty result (RFC 6121 §2.6.3); got ${same.stanza.toString()}`);

      for (const old of [v1, v0, '', 'no-such-version']) {
        const full = await rosterGet(s, old);
        assert.ok(
          full.items,
          `roster get with an older ver (${JSON.stringify(old)}) must return the full roster; got ${full.stanza.toString()}`,
        );
        assert.deepEqual(full.items.map((i) => i.jid).sort(), [c1, c2].sort(), full.stanza.toString());
        assert.equal(full.ver, v2, `ver of the full roster: ${full.stanza.toString()}`);
      }
      // No pushes were sent for these gets (the full roster came in the result).
      await sleep(300);
      assert.deepEqual(s.buffered(isRosterPush).map((p) => p.toString()), []);
    });

    test('roster set errors: two items → bad-request; long name → not-acceptable; removing a missing item → item-not-found', 45_000, async () => {
      const s = await online(await account('bad'), { node: nodeA, presence: false });
      const d = srv().domain;
      const cases: Array<{ what: string; items: Parameters<typeof rosterSet>[1][]; expect: string }> = [
        { what: 'two items', items: [{ jid: `x1@${d}` }, { jid: `x2@${d}` }], expect: 'bad-request' },
        { what: 'a 1024-character name (limit 1023)', items: [{ jid: `x3@${d}`, name: 'n'.repeat(1024) }], expect: 'not-acceptable' },
        { what: 'removing an item that is not there', items: [{ jid: `${uniqueName('missing')}@${d}`, subscription: 'remove' }], expect: 'item-not-found' },
        { what: 'the same group twice (§2.3.3)', items: [{ jid: `x4@${d}`, groups: ['g', 'g'] }], expect: 'bad-request' },
        { what: 'an empty group (§2.3.3)', items: [{ jid: `x5@${d}`, groups: [''] }], expect: 'not-acceptable' },
      ];
      const failures: string[] = [];
      for (const c of cases) {
        const res = await rosterSet(s, ...c.items);
        const got = res.attrs.type === 'error' ? stanzaErrorCondition(res) : `type=${res.attrs.type}`;
        if (got !== c.expect) failures.push(`${c.what}: expected <${c.expect}/>, got ${got}: ${res.toString().slice(0, 300)}`);
      }
      // §2.1.5: another account's roster is not ours to read.
      const other = await s.iq(xml('iq', { type: 'get', to: `${uniqueName('other')}@${d}` }, xml('query', { xmlns: 'jabber:iq:roster' })));
      const otherGot = other.attrs.type === 'error' ? stanzaErrorCondition(other) : `type=${other.attrs.type}`;
      if (otherGot !== 'forbidden') failures.push(`roster get addressed to another account: expected <forbidden/>, got ${otherGot}: ${other.toString().slice(0, 300)}`);
      // An item with the maximum name length is fine.
      const ok = await rosterSet(s, { jid: `x6@${d}`, name: 'n'.repeat(1023) });
      if (ok.attrs.type !== 'result') failures.push(`a 1023-character name was refused: ${ok.toString().slice(0, 300)}`);
      const r = await rosterGet(s);
      const jids = (r.items ?? []).map((i) => i.jid);
      if (jids.join() !== `x6@${d}`) failures.push(`after the refused sets the roster must hold only x6@${d}; it holds [${jids.join(', ')}]`);
      assert.deepEqual(failures, []);
    });

    // --- subscriptions -----------------------------------------------------------

    test('subscription handshake both ways: pushes, presented requests, both items end in "both"', 60_000, async () => {
      const a = await online(await account('ha'), { node: nodeA, resource: 'a', status: 'A here' });
      const b = await online(await account('hb'), { node: nodeB, resource: 'b', status: 'B here' });

      await sendSubscription(a, 'subscribe', b.bare);
      const p1 = await waitPush(a, b.bare, (i) => i.ask === 'subscribe', 10_000, 'A: ask=subscribe');
      assert.equal(p1.item.subscription, 'none', describeItem(p1.item));
      const req = await b.waitFor(subscriptionFrom(a.bare, 'subscribe'), 10_000, 'the subscription request from A');
      assert.equal(req.attrs.from, a.bare, `a subscription request is stamped with the bare JID (§3.1.2): ${req.toString()}`);

      await sendSubscription(b, 'subscribed', a.bare);
      const pb1 = await waitPush(b, a.bare, (i) => i.subscription === 'from', 10_000, 'B: from');
      assert.equal(pb1.item.ask, undefined, describeItem(pb1.item));
      const pa2 = await waitPush(a, b.bare, (i) => i.subscription === 'to', 10_000, 'A: to');
      assert.equal(pa2.item.ask, undefined, `ask must be cleared once subscribed: ${describeItem(pa2.item)}`);
      const ok = await a.waitFor(subscriptionFrom(b.bare, 'subscribed'), 10_000, 'subscribed from B');
      assert.equal(ok.attrs.from, b.bare, ok.toString());
      // §3.1.5/§3.1.6: A now gets B's current presence.
      const pres = await a.waitFor(presenceFrom(b.jid), 10_000, "B's presence after the approval");
      assert.equal(pres.getChildText('status'), 'B here', pres.toString());

      await sendSubscription(b, 'subscribe', a.bare);
      await waitPush(b, a.bare, (i) => i.subscription === 'from' && i.ask === 'subscribe', 10_000, 'B: from + ask');
      await a.waitFor(subscriptionFrom(b.bare, 'subscribe'), 10_000, 'the subscription request from B');
      await sendSubscription(a, 'subscribed', b.bare);
      await waitPush(a, b.bare, (i) => i.subscription === 'both', 10_000, 'A: both');
      await waitPush(b, a.bare, (i) => i.subscription === 'both' && i.ask === undefined, 10_000, 'B: both');
      const presA = await b.waitFor(presenceFrom(a.jid), 10_000, "A's presence after the approval");
      assert.equal(presA.getChildText('status'), 'A here', presA.toString());

      const ia = await rosterItem(a, b.bare);
      const ib = await rosterItem(b, a.bare);
      assert.equal(describeItem(ia), `${b.bare} subscription=both`);
      assert.equal(describeItem(ib), `${a.bare} subscription=both`);
    });

    test('a subscription request to an offline user is presented when it logs in and sends initial presence', 60_000, async () => {
      const a = await online(await account('oa'), { node: nodeA });
      const bAcc = await account('ob');
      await sendSubscription(a, 'subscribe', bAcc.bare);
      await waitPush(a, bAcc.bare, (i) => i.ask === 'subscribe');
      await sleep(300); // let it reach B's side

      const b = await online(bAcc, { node: nodeB, presence: false });
      const roster = await rosterGet(b);
      assert.ok(
        !(roster.items ?? []).some((i) => i.jid === a.bare),
        `"None + Pending In" must not show in the roster (RFC 6121 A.1: the server SHOULD NOT push or deliver roster items in this state): ${roster.stanza.toString()}`,
      );
      await assertNothing(b, subscriptionFrom(a.bare, 'subscribe'), 'the subscription request before initial presence');
      await sendPresence(b);
      const req = await b.waitFor(subscriptionFrom(a.bare, 'subscribe'), 10_000, 'the stored subscription request after initial presence');
      assert.equal(req.attrs.from, a.bare, req.toString());
      // It can be approved like a live one.
      await sendSubscription(b, 'subscribed', a.bare);
      await waitPush(a, b.bare, (i) => i.subscription === 'to' && i.ask === undefined);
      assert.equal((await rosterItem(b, a.bare))?.subscription, 'from');
    });

    test('subscription stanzas addressed to a full JID act on the bare JID and are stamped with bare JIDs (§3.1.2)', 45_000, async () => {
      const a = await online(await account('fja'), { node: nodeA, resource: 'a' });
      const b = await online(await account('fjb'), { node: nodeB, resource: 'b' });
      await sendSubscription(a, 'subscribe', b.jid);
      const p = await waitPush(a, b.bare, (i) => i.ask === 'subscribe');
      assert.equal(p.item.jid, b.bare);
      const req = await b.waitFor(subscriptionFrom(a.bare, 'subscribe'), 10_000, 'the request');
      assert.equal(req.attrs.from, a.bare, req.toString());
      await sendSubscription(b, 'subscribed', a.jid);
      await waitPush(a, b.bare, (i) => i.subscription === 'to');
      const ok = await a.waitFor(subscriptionFrom(b.bare, 'subscribed'), 10_000, "the 'subscribed'");
      assert.equal(ok.attrs.from, b.bare, ok.toString());
      assert.deepEqual((await rosterGet(b)).items?.map(describeItem), [`${a.bare} subscription=from`]);
    });

    test('a repeated subscribe while pending is not presented twice (offline and online)', 60_000, async () => {
      const a = await online(await account('ra'), { node: nodeA });
      const bAcc = await account('rb');
      await sendSubscription(a, 'subscribe', bAcc.bare);
      await sendSubscription(a, 'subscribe', bAcc.bare);
      await waitPush(a, bAcc.bare, (i) => i.ask === 'subscribe');
      await sleep(300);
      const b = await online(bAcc, { node: nodeB });
      await b.waitFor(subscriptionFrom(a.bare, 'subscribe'), 10_000, 'the stored request');
      await assertNothing(b, subscriptionFrom(a.bare, 'subscribe'), 'a second copy of the stored request');
      // B is online and still has not answered: another subscribe from A is not delivered again (A.3.1 "None + Pending In": no).
      await sendSubscription(a, 'subscribe', bAcc.bare);
      await assertNothing(b, subscriptionFrom(a.bare, 'subscribe'), 'a repeated request while one is pending');
    });

    test('subscription pre-approval: "subscribed" before the request, then the request is approved automatically', 60_000, async () => {
      const a = await online(await account('pa'), { node: nodeA, resource: 'a', status: 'pre' });
      const b = await online(await account('pb'), { node: nodeB, resource: 'b' });
      await sendSubscription(a, 'subscribed', b.bare);
      const pre = await waitPush(a, b.bare, (i) => i.approved === 'true', 10_000, "A: approved='true'");
      assert.equal(pre.item.subscription, 'none', describeItem(pre.item));
      await assertNothing(b, subscriptionFrom(a.bare, 'subscribed'), "a pre-approval 'subscribed' (it is not routed, §3.4.2)");

      await sendSubscription(b, 'subscribe', a.bare);
      await waitPush(b, a.bare, (i) => i.subscription === 'to' && i.ask === undefined, 10_000, 'B: to');
      await b.waitFor(subscriptionFrom(a.bare, 'subscribed'), 10_000, "the automatic 'subscribed' from A");
      const pres = await b.waitFor(presenceFrom(a.jid), 10_000, "A's presence after the automatic approval");
      assert.equal(pres.getChildText('status'), 'pre');
      const pa = await waitPush(a, b.bare, (i) => i.subscription === 'from', 10_000, 'A: from');
      assert.equal(pa.item.approved, undefined, `the pre-approval is consumed: ${describeItem(pa.item)}`);
      await assertNothing(a, subscriptionFrom(b.bare, 'subscribe'), 'the request that was pre-approved');
      assert.equal(describeItem(await rosterItem(a, b.bare)), `${b.bare} subscription=from`);
      assert.equal(describeItem(await rosterItem(b, a.bare)), `${a.bare} subscription=to`);
    });

    test('cancelling: "unsubscribed" takes both → to, then from → none, with pushes and unavailable presence', 60_000, async () => {
      const a = await online(await account('ua'), { node: nodeA, resource: 'a' });
      const b = await online(await account('ub'), { node: nodeB, resource: 'b' });
      await makeBoth(a, b);
      // A cancels B's subscription to A.
      await sendSubscription(a, 'unsubscribed', b.bare);
      await waitPush(a, b.bare, (i) => i.subscription === 'to', 10_000, 'A: both → to');
      await waitPush(b, a.bare, (i) => i.subscription === 'from', 10_000, 'B: both → from');
      await b.waitFor(subscriptionFrom(a.bare, 'unsubscribed'), 10_000, "'unsubscribed' delivered to B");
      await b.waitFor(presenceFrom(a.jid, 'unavailable'), 10_000, "A's unavailable presence (B no longer sees A)");
      // B cancels A's subscription to B.
      await sendSubscription(b, 'unsubscribed', a.bare);
      await waitPush(b, a.bare, (i) => i.subscription === 'none', 10_000, 'B: from → none');
      await waitPush(a, b.bare, (i) => i.subscription === 'none', 10_000, 'A: to → none');
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), 10_000, "B's unavailable presence");
      assert.equal(describeItem(await rosterItem(a, b.bare)), `${b.bare} subscription=none`);
      assert.equal(describeItem(await rosterItem(b, a.bare)), `${a.bare} subscription=none`);
    });

    test('unsubscribing: "unsubscribe" takes both → from, then to → none, with pushes and unavailable presence', 60_000, async () => {
      const a = await online(await account('va'), { node: nodeA, resource: 'a' });
      const b = await online(await account('vb'), { node: nodeB, resource: 'b' });
      await makeBoth(a, b);
      // A stops seeing B.
      await sendSubscription(a, 'unsubscribe', b.bare);
      await waitPush(a, b.bare, (i) => i.subscription === 'from', 10_000, 'A: both → from');
      await waitPush(b, a.bare, (i) => i.subscription === 'to', 10_000, 'B: both → to');
      await b.waitFor(subscriptionFrom(a.bare, 'unsubscribe'), 10_000, "'unsubscribe' delivered to B");
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), 10_000, "B's unavailable presence (A no longer sees B)");
      // B stops seeing A.
      await sendSubscription(b, 'unsubscribe', a.bare);
      await waitPush(b, a.bare, (i) => i.subscription === 'none', 10_000, 'B: to → none');
      await waitPush(a, b.bare, (i) => i.subscription === 'none', 10_000, 'A: from → none');
      await b.waitFor(presenceFrom(a.jid, 'unavailable'), 10_000, "A's unavailable presence");
      assert.equal(describeItem(await rosterItem(a, b.bare)), `${b.bare} subscription=none`);
      assert.equal(describeItem(await rosterItem(b, a.bare)), `${a.bare} subscription=none`);
    });

    test('removing a roster item cancels the subscriptions both ways (§2.5.2)', 60_000, async () => {
      const a = await online(await account('xa'), { node: nodeA, resource: 'a' });
      const b = await online(await account('xb'), { node: nodeB, resource: 'b' });
      await makeBoth(a, b);
      const res = await rosterSet(a, { jid: b.bare, subscription: 'remove' });
      assert.equal(res.attrs.type, 'result', res.toString());
      await waitPush(a, b.bare, (i) => i.subscription === 'remove');
      await waitPush(b, a.bare, (i) => i.subscription === 'none', 10_000, 'B: both → none');
      await b.waitFor(presenceFrom(a.jid, 'unavailable'), 10_000, "A's unavailable presence");
      assert.equal(await rosterItem(a, b.bare), null);
      assert.equal(describeItem(await rosterItem(b, a.bare)), `${a.bare} subscription=none`);
    });

    // --- presence ---------------------------------------------------------------

    test('presence: a contact logging in later sees the one already online (probe), and is seen', 60_000, async (t) => {
      const aAcc = await account('pra');
      const bAcc = await account('prb');
      const a = await online(aAcc, { node: nodeA, resource: 'a', status: 'A online first' });
      const b0 = await online(bAcc, { node: nodeB, resource: 'b0' });
      await makeBoth(a, b0);
      await b0.stop();
      await a.waitFor(presenceFrom(b0.jid, 'unavailable'), 10_000, "B's unavailable after its logout");

      const at = Date.now();
      const b = await online(bAcc, { node: nodeB, resource: 'b', status: 'B arrives' });
      const seen = await b.waitFor(presenceFrom(a.jid), 10_000, "A's presence in answer to B's probe");
      const seenMs = Date.now() - at;
      assert.equal(seen.getChildText('status'), 'A online first', seen.toString());
      const got = await a.waitFor(presenceFrom(b.jid), 10_000, "B's initial presence");
      assert.equal(got.getChildText('status'), 'B arrives', got.toString());
      t.diagnostic(`login + initial presence → contact's presence after ${seenMs} ms`);
    });

    test("presence: a new resource receives the presence of the user's other available resources (§4.2.2)", 60_000, async () => {
      const acc = await account('own');
      const first = await online(acc, { node: nodeA, resource: 'first', status: 'on the desk' });
      const hidden = await online(acc, { node: nodeB, resource: 'hidden', presence: false });
      const second = await online(acc, { node: nodeB, resource: 'second', status: 'on the phone' });
      const seen = await second.waitFor(presenceFrom(first.jid), 10_000, "the first resource's presence at the new one");
      assert.equal(seen.getChildText('status'), 'on the desk', seen.toString());
      // The first resource sees the new one (it always did), and nobody reports the resource that sent no presence.
      const got = await first.waitFor(presenceFrom(second.jid), 10_000, "the new resource's presence at the first");
      assert.equal(got.getChildText('status'), 'on the phone', got.toString());
      await sleep(300);
      assert.deepEqual(second.buffered(presenceFrom(hidden.jid)).map(String), [], 'a resource that sent no presence is not reported');
      assert.deepEqual(second.buffered(presenceFrom(first.jid)).map(String), [], "the first resource's presence came once");
    });

    test('presence: unavailable on logout reaches the contact', 60_000, async () => {
      const a = await online(await account('lua'), { node: nodeA, resource: 'a' });
      const b = await online(await account('lub'), { node: nodeB, resource: 'b' });
      await makeBoth(a, b);
      await sendPresence(b, { type: 'unavailable' });
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), 10_000, "B's unavailable presence");
      // And available again, then a clean stream close.
      await sendPresence(b, {}, { status: 'back' });
      await a.waitFor(presenceFrom(b.jid), 10_000, "B's presence again");
      await b.stop();
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), 10_000, "B's unavailable presence after closing its stream");
    });

    test('presence: a broken connection (socket destroyed, no stream close) → the contact sees unavailable', 60_000, async (t) => {
      const a = await online(await account('bra'), { node: nodeA, resource: 'a' });
      const b = await online(await account('brb'), { node: nodeB, resource: 'b' });
      await makeBoth(a, b);
      const at = Date.now();
      breakConnection(b);
      await a.waitFor(presenceFrom(b.jid, 'unavailable'), 15_000, "B's unavailable presence after its connection broke");
      t.diagnostic(`broken connection → unavailable at the contact after ${Date.now() - at} ms`);
    });

    test('directed presence: the recipient (no subscription) gets unavailable when the sender goes offline (§4.6.3)', 60_000, async () => {
      const aAcc = await account('da');
      const c = await online(await account('dc'), { node: nodeB, resource: 'c' });
      // Logout with an unavailable broadcast.
      const a1 = await online(aAcc, { node: nodeA, resource: 'a1' });
      await sendPresence(a1, { to: c.jid }, { status: 'directed' });
      const d = await c.waitFor(presenceFrom(a1.jid), 10_000, 'the directed presence');
      assert.equal(d.getChildText('status'), 'directed');
      await sendPresence(a1, { type: 'unavailable' });
      await c.waitFor(presenceFrom(a1.jid, 'unavailable'), 10_000, 'unavailable after the sender broadcast unavailable');
      // Broken connection.
      const a2 = await online(aAcc, { node: nodeA, resource: 'a2' });
      await sendPresence(a2, { to: c.jid });
      await c.waitFor(presenceFrom(a2.jid), 10_000, 'the second directed presence');
      breakConnection(a2);
      await c.waitFor(presenceFrom(a2.jid, 'unavailable'), 15_000, "unavailable after the sender's connection broke");
    });

    // --- messages ----------------------------------------------------------------

    test('message to a bare JID: chat to the highest priority (5 of 5/1/-1); headline to every non-negative one', 60_000, async () => {
      const a = await online(await account('ma'), { node: nodeA, resource: 'a' });
      const bAcc = await account('mb');
      const p5 = await online(bAcc, { node: nodeB, resource: 'p5', priority: 5 });
      const p1 = await online(bAcc, { node: nodeA, resource: 'p1', priority: 1 });
      const pm = await online(bAcc, { node: nodeB, resource: 'pm1', priority: -1 });
      await sleep(300); // presence (priorities) recorded
      const tag = uniqueName('m');
      await a.send(xml('message', { to: bAcc.bare, type: 'chat', id: `${tag}-chat` }, xml('body', {}, 'chat')));
      await a.send(xml('message', { to: bAcc.bare, type: 'headline', id: `${tag}-hl` }, xml('body', {}, 'headline')));
      const isMsg = (id: string) => (el: XmlElement): boolean => el.name === 'message' && el.attrs.id === id;
      const chat = await p5.waitFor(isMsg(`${tag}-chat`), 10_000, 'the chat at priority 5');
      assert.equal(chat.attrs.from, a.jid);
      await p5.waitFor(isMsg(`${tag}-hl`), 10_000, 'the headline at priority 5');
      await p1.waitFor(isMsg(`${tag}-hl`), 10_000, 'the headline at priority 1');
      await Promise.all([
        assertNothing(p1, isMsg(`${tag}-chat`), 'the chat (priority 1 < 5)'),
        assertNothing(pm, isMsg(`${tag}-chat`), 'the chat (negative priority)'),
        assertNothing(pm, isMsg(`${tag}-hl`), 'the headline (negative priority)'),
      ]);
      assert.deepEqual(a.buffered((el) => el.attrs.type === 'error').map((e) => e.toString()), []);
    });

    test('a bare JID whose only available resource has a negative priority: a chat is kept offline, not delivered to it (§8.5.2.1.1)', 60_000, async () => {
      const a = await online(await account('na'), { node: nodeA, resource: 'a' });
      const bAcc = await account('nb');
      const neg = await online(bAcc, { node: nodeB, resource: 'neg', priority: -1 });
      await sleep(300);
      const id = uniqueName('neg');
      await a.send(xml('message', { to: bAcc.bare, type: 'chat', id }, xml('body', {}, 'for later')));
      await assertNothing(neg, (el) => el.name === 'message' && el.attrs.id === id, 'the chat (its only resource has priority -1)');
      const err = a.buffered((el) => el.name === 'message' && el.attrs.id === id);
      if (err.length === 0) {
        // Not bounced, so it must have been stored: a resource with priority ≥ 0 gets it at its initial presence.
        const b = await online(bAcc, { node: nodeA, resource: 'pos', priority: 0 });
        const m = await b.waitFor((el) => el.name === 'message' && el.attrs.id === id, 10_000, 'the stored chat at initial presence');
        assert.ok(m.getChild('delay', IM_NS.delay), `a stored message carries a delay: ${m.toString()}`);
      } else {
        assert.equal(stanzaErrorCondition(err[0] as XmlElement), 'service-unavailable', (err[0] as XmlElement).toString());
      }
    });

    test('offline: 100 messages to an offline user are delivered at its initial presence, in order, each with a delay', 90_000, async (t) => {
      const a = await online(await account('fa'), { node: nodeA, resource: 'a' });
      const bAcc = await account('fb');
      const tag = uniqueName('off');
      const N = 100;
      const sentAt = new Date();
      // A headline is not stored (XEP-0160 §4): it must not show up later.
      await a.send(xml('message', { to: bAcc.bare, type: 'headline', id: `${tag}-hl` }, xml('body', {}, 'headline')));
      for (let i = 0; i < N; i++) {
        await a.send(xml('message', { to: bAcc.bare, type: i % 2 ? 'chat' : 'normal', id: `${tag}-${i}` }, xml('body', {}, `${tag}:${i}`)));
      }
      // No signal tells when the last one is stored (they pass through the user actor): give it time.
      await sleep(2 * quietMs);
      assert.deepEqual(a.buffered((el) => el.name === 'message').map((e) => e.toString()), [], 'no errors for stored messages');

      const b = await online(bAcc, { node: nodeB, resource: 'b', presence: false });
      await assertNothing(b, (el) => el.name === 'message', 'offline messages before initial presence', 500);
      const at = Date.now();
      await sendPresence(b);
      const got = await b.collect(N, (el) => el.name === 'message' && (el.getChildText('body') ?? '').startsWith(`${tag}:`), 30_000, `${N} offline messages`);
      t.diagnostic(`${N} offline messages delivered ${Date.now() - at} ms after initial presence`);
      const bodies = got.map((m) => m.getChildText('body'));
      const firstBad = bodies.findIndex((b2, i) => b2 !== `${tag}:${i}`);
      assert.equal(firstBad, -1, `out of order at ${firstBad}: ${bodies.slice(Math.max(0, firstBad - 2), firstBad + 3).join(' | ')}`);
      let lastStamp = 0;
      for (const m of got) {
        assert.equal(m.attrs.from, a.jid, m.toString());
        const delay = m.getChild('delay', IM_NS.delay);
        assert.ok(delay, `no <delay xmlns='${IM_NS.delay}'/>: ${m.toString()}`);
        const stamp = Date.parse(delay.attrs.stamp ?? '');
        assert.ok(!Number.isNaN(stamp), `bad delay stamp: ${m.toString()}`);
        assert.ok(stamp >= sentAt.getTime() - 2_000 && stamp <= Date.now() + 2_000, `delay stamp ${delay.attrs.stamp} is not when the message was stored`);
        assert.ok(stamp >= lastStamp, `delay stamps go backwards: ${m.toString()}`);
        lastStamp = stamp;
      }
      await assertNothing(b, (el) => el.name === 'message' && (el.attrs.id === `${tag}-hl` || (el.getChildText('body') ?? '').startsWith(`${tag}:`)), 'a stored headline or a duplicate');
      // Delivered once: a second login gets nothing.
      const b2 = await online(bAcc, { node: nodeA, resource: 'again' });
      await assertNothing(b2, (el) => el.name === 'message' && (el.getChildText('body') ?? '').startsWith(`${tag}:`), 'offline messages a second time');
    });

    test('offline cap (roster.offlineCap = 5, YAML or HYPHAE_ROSTER__OFFLINE_CAP): past it the sender gets service-unavailable; the first 5 are kept', 120_000, async (t) => {
      const started = Date.now();
      // Both ways of configuring it: the YAML key (embedded) and the environment override (cluster).
      const small =
        mode === 'embedded'
          ? await startEmbedded({ config: { roster: { offlineCap: 5 } } })
          : await startCluster({ c2sNodes: 2, rosterNodes: 1, env: { HYPHAE_ROSTER__OFFLINE_CAP: '5' }, config: { roster: { leaseTtlMs: LEASE_TTL_MS } } });
      extraServers.push(small);
      t.diagnostic(`server with offlineCap 5 ready in ${Date.now() - started} ms`);
      const a = await online(await account('ca', small), { node: nodeA, on: small });
      const bAcc = await account('cb', small);
      const tag = uniqueName('cap');
      for (let i = 0; i < 8; i++) {
        await a.send(xml('message', { to: bAcc.bare, type: 'chat', id: `${tag}-${i}` }, xml('body', {}, `${tag}:${i}`)));
      }
      const errors = await a.collect(3, (el) => el.name === 'message' && el.attrs.type === 'error', 15_000, 'errors for messages past the cap');
      assert.deepEqual(errors.map((e) => e.attrs.id), [`${tag}-5`, `${tag}-6`, `${tag}-7`]);
      for (const e of errors) {
        assert.equal(stanzaErrorCondition(e), 'service-unavailable', e.toString());
        assert.equal(e.attrs.from, bAcc.bare, `the error comes from the recipient: ${e.toString()}`);
      }
      const b = await online(bAcc, { node: nodeB, on: small });
      const got = await b.collect(5, (el) => el.name === 'message' && (el.getChildText('body') ?? '').startsWith(`${tag}:`), 15_000, 'the 5 stored messages');
      assert.deepEqual(got.map((m) => m.getChildText('body')), [0, 1, 2, 3, 4].map((i) => `${tag}:${i}`));
      await assertNothing(b, (el) => el.name === 'message' && (el.getChildText('body') ?? '').startsWith(`${tag}:`), 'a 6th stored message');
    });

    test('message to a deleted account (XEP-0077 cancel) → service-unavailable; its contacts saw it go unavailable', 60_000, async () => {
      const a = await online(await account('dla'), { node: nodeA });
      const gone = await account('gone');
      const g = await online(gone, { node: nodeB });
      await makeBoth(a, g);
      const res = await g.iq(xml('iq', { type: 'set', to: srv().domain }, xml('query', { xmlns: NS.register }, xml('remove'))));
      assert.equal(res.attrs.type, 'result', res.toString());
      await g.waitOffline(10_000);
      await a.waitFor(presenceFrom(g.jid, 'unavailable'), 10_000, 'unavailable from the deleted account');
      for (const [to, type] of [[gone.bare, 'chat'], [gone.bare, 'normal'], [`${gone.bare}/res`, 'chat']] as const) {
        const id = uniqueName('dl');
        await a.send(xml('message', { to, type, id }, xml('body', {}, 'are you there?')));
        const bounce = await a.waitFor((el) => el.name === 'message' && el.attrs.id === id, 10_000, `the answer to a ${type} to ${to}`);
        assert.equal(bounce.attrs.type, 'error', bounce.toString());
        assert.equal(stanzaErrorCondition(bounce), 'service-unavailable', bounce.toString());
      }
    });

    test('a re-registered username inherits neither the roster nor the offline messages of the deleted account', 60_000, async () => {
      const a = await online(await account('ia'), { node: nodeA });
      const old = await account('reuse');
      const tag = uniqueName('inh');
      await a.send(xml('message', { to: old.bare, type: 'chat', id: `${tag}-0` }, xml('body', {}, `${tag}:0`)));
      await sleep(quietMs);
      const g = await online(old, { node: nodeB, presence: false });
      await rosterSetOk(g, { jid: a.bare, name: 'old friend' });
      await sendSubscription(g, 'subscribe', a.bare);
      await a.waitFor(subscriptionFrom(old.bare, 'subscribe'), 10_000, 'the old account’s request');
      const res = await g.iq(xml('iq', { type: 'set', to: srv().domain }, xml('query', { xmlns: NS.register }, xml('remove'))));
      assert.equal(res.attrs.type, 'result', res.toString());
      await g.waitOffline(10_000);
      await register(srv(), old.username, 'new-password');
      const n = await online({ ...old, password: 'new-password' }, { node: nodeB, presence: false });
      const r = await rosterGet(n);
      assert.deepEqual((r.items ?? []).map(describeItem), [], 'roster of the new account');
      await sendPresence(n);
      await assertNothing(n, (el) => el.name === 'message', 'an offline message stored for the deleted account');
    });

    // --- RFC 6121 Appendix A ----------------------------------------------------

    test('RFC 6121 Appendix A: every state × every subscription stanza, outbound (A.2) and inbound (A.3)', 400_000, async (t) => {
      interface Outcome {
        row: string;
        ok: boolean;
        detail: string;
      }
      const settle = quietMs;
      /** A fresh resource's initial presence is presented the pending request of `from` iff Pending In. */
      const pendingIn = async (acc: Account, from: string, node: number): Promise<boolean> => {
        const s = await login(srv(), { username: acc.username, password: acc.password, resource: `probe-${uniqueName('')}`, node });
        try {
          acceptRosterPushes(s);
          await sendPresence(s);
          try {
            await s.waitFor(subscriptionFrom(from, 'subscribe'), settle, 'a pending request');
            return true;
          } catch (err) {
            if (/timeout/.test((err as Error).message)) return false;
            throw err;
          }
        } finally {
          await s.stop();
        }
      };
      const scenario = async ([st, type]: [St, SubscriptionType]): Promise<Outcome[]> => {
        const [aAcc, bAcc] = await Promise.all([account('ta'), account('tb')]);
        const a = await login(srv(), { ...aAcc, resource: 'a', node: nodeA });
        const b = await login(srv(), { ...bAcc, resource: 'b', node: nodeB });
        const label = `${RFC_NAME[st]} / ${type}`;
        try {
          for (const s of [a, b]) acceptRosterPushes(s);
          await rosterSetOk(a, { jid: b.bare, name: 'B' });
          await rosterSetOk(b, { jid: a.bare, name: 'A' });
          await Promise.all([rosterGet(a), rosterGet(b), sendPresence(a), sendPresence(b)]);
          // Setup: every step is delivered to the other side, which is what we wait for.
          let sa: St = 'none';
          let sb: St = 'none';
          for (const [who, stepType] of SETUP[st]) {
            const [from, to] = who === 'A' ? [a, b] : [b, a];
            await sendSubscription(from, stepType, to.bare);
            await to.waitFor(subscriptionFrom(from.bare, stepType), 10_000, `setup of ${label}: ${who} ${stepType}`).catch((err: Error) => {
              throw new Error(`setup of "${RFC_NAME[st]}" failed at ${who} → ${stepType}: ${err.message}`);
            });
            if (who === 'A') {
              sa = OUTBOUND[stepType][sa];
              sb = INBOUND[stepType][sb][0];
            } else {
              sb = OUTBOUND[stepType][sb];
              sa = INBOUND[stepType][sa][0];
            }
          }
          // Both rosters show the setup states (else the rows below would test something else).
          const setupDeadline = Date.now() + 10_000;
          for (;;) {
            const [ia, ib] = await Promise.all([rosterItem(a, b.bare), rosterItem(b, a.bare)]);
            if (visibleOf(ia) === visible(sa) && visibleOf(ib) === visible(sb)) break;
            if (Date.now() > setupDeadline) {
              throw new Error(`setup of "${RFC_NAME[st]}": rosters show A:${visibleOf(ia)} B:${visibleOf(ib)}, expected A:${visible(sa)} B:${visible(sb)}`);
            }
            await sleep(100);
          }
          await sleep(150);
          a.drain();
          b.drain();

          // Apply: A sends `type` to B.
          await sendSubscription(a, type, b.bare);
          let delivered = false;
          try {
            await b.waitFor(subscriptionFrom(a.bare, type), settle, 'delivery');
            delivered = true;
          } catch (err) {
            if (!/timeout/.test((err as Error).message)) throw err;
          }
          await sleep(delivered ? settle / 2 : 0);
          // The roster gets go through the same user actors: a blocked actor shows here as latency.
          const getAt = Date.now();
          const [ia, ib] = await Promise.all([rosterItem(a, b.bare), rosterItem(b, a.bare)]);
          const getMs = Date.now() - getAt;
          const [inA, inB] = await Promise.all([pendingIn(aAcc, b.bare, nodeA), pendingIn(bAcc, a.bare, nodeB)]);

          const expA = OUTBOUND[type][st];
          const [expB, expDeliver] = INBOUND[type][MIRROR[st]];
          const gotA = `${visibleOf(ia)}${inA ? ' +pendingIn' : ''}`;
          const gotB = `${visibleOf(ib)}${inB ? ' +pendingIn' : ''}`;
          const wantA = `${visible(expA)}${parts(expA).in ? ' +pendingIn' : ''}`;
          const wantB = `${visible(expB)}${parts(expB).in ? ' +pendingIn' : ''}`;
          const out: Outcome[] = [
            {
              row: `A.2 outbound ${type.padEnd(12)} in ${JSON.stringify(RFC_NAME[st]).padEnd(24)} → ${JSON.stringify(RFC_NAME[expA])}`,
              ok: gotA === wantA,
              detail: `roster+probe shows ${gotA}, expected ${wantA}`,
            },
            {
              row: `A.3 inbound  ${type.padEnd(12)} in ${JSON.stringify(RFC_NAME[MIRROR[st]]).padEnd(24)} → ${JSON.stringify(RFC_NAME[expB])}, deliver ${expDeliver ? 'yes' : 'no'}`,
              ok: gotB === wantB && delivered === expDeliver,
              detail: `roster+probe shows ${gotB}, expected ${wantB}; delivered: ${delivered ? 'yes' : 'no'}`,
            },
          ];
          out.push({
            row: `timeliness: roster gets of both users right after outbound ${type} in ${JSON.stringify(RFC_NAME[st])}`,
            ok: getMs < 3_000,
            detail: `answered after ${getMs} ms (a user actor was busy that long)`,
          });
          // §3.4: with pre-approval advertised, an outbound 'subscribed' without a pending request pre-approves.
          const preApproved = type === 'subscribed' && (st === 'none' || st === 'none+out' || st === 'to');
          out.push({
            row: `§3.4 approved flag after outbound ${type} in ${JSON.stringify(RFC_NAME[st])}`,
            ok: (ia?.approved === 'true') === preApproved && ib?.approved === undefined,
            detail: `A's item approved=${ia?.approved ?? '(absent)'}, B's item approved=${ib?.approved ?? '(absent)'}; expected A ${preApproved ? "approved='true'" : 'no approved'}, B no approved`,
          });
          return out;
        } catch (err) {
          return [{ row: `${label}`, ok: false, detail: `scenario error: ${(err as Error).message}` }];
        } finally {
          await Promise.all([a.stop(), b.stop()]);
        }
      };
      const combos: Array<[St, SubscriptionType]> = [];
      for (const st of STATES) for (const type of TYPES) combos.push([st, type]);
      const started = Date.now();
      const outcomes = (await pool(combos, 6, scenario)).flat();
      t.diagnostic(`${combos.length} scenarios, ${outcomes.length} checks in ${Date.now() - started} ms:`);
      for (const o of outcomes) t.diagnostic(`${o.ok ? 'ok  ' : 'FAIL'} ${o.row}${o.ok ? '' : `   — ${o.detail}`}`);
      const failed = outcomes.filter((o) => !o.ok);
      assert.equal(failed.length, 0, `${failed.length} of ${outcomes.length} Appendix A checks failed:\n${failed.map((o) => `${o.row}: ${o.detail}`).join('\n')}`);
    });
  });
}

rosterSuite('embedded');
rosterSuite('cluster');
