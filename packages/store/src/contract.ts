/**
 * The contract every Stores implementation must meet (DESIGN: "a contract
 * test suite runs against both"). Internal: embedded.test.ts and
 * redis.test.ts run it; a new backend adds one more such file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { EpochWatch } from './epoch.js';
import type { Account, RoomAffiliation, RoomListing, RoomMeta, RosterItem, SessionEntry, StoredRoom, Stores } from './types.js';

export interface ContractSubject {
  stores: Stores;
  /** Closes `stores` and opens the same data again (restart / reconnect). */
  reopen?: () => Promise<Stores>;
  /**
   * Loses everything under the store while it stays open (Redis restarted
   * empty or flushed); absent where the live state can only die with the
   * process (embedded).
   */
  loseEverything?: () => Promise<void>;
  cleanup(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sid = (): string => randomBytes(16).toString('hex');

function account(domain: string, username: string, createdAt = 1_700_000_000_000): Account {
  return {
    username,
    domain,
    createdAt,
    credentials: {
      'SCRAM-SHA-256': { salt: randomBytes(16).toString('base64'), iterations: 4096, storedKey: 'c3RvcmVk', serverKey: 'c2VydmVy' },
    },
  };
}

function entry(resource: string, node: string, over: Partial<SessionEntry> = {}): SessionEntry {
  return { resource, sessionId: sid(), node, priority: 0, available: false, boundAt: Date.now(), ...over };
}

/** Unicode code point order (= UTF-8 byte order), the order list() promises. */
function byCodePoint(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

const ids = (xs: { sessionId: string }[]): string[] => xs.map((x) => x.sessionId).sort();

function item(jid: string, over: Partial<RosterItem> = {}): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, approved: false, ...over };
}

function meta(over: Partial<RoomMeta> = {}): RoomMeta {
  return { config: '{"membersonly":false}', public: true, name: 'Verona', persistent: true, createdAt: 1_700_000_000_000, ...over };
}

export function storeContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`${name}: store contract`, () => {
    let subject: ContractSubject;
    let s: Stores;
    beforeEach(async () => {
      subject = await make();
      s = subject.stores;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('accounts', () => {
      it('creates and gets an account; a missing one is null', async () => {
        assert.equal(s.isReady(), true);
        const a = account('example.com', 'juliet');
        assert.equal(await s.accounts.create(a), true);
        assert.deepEqual(await s.accounts.get('example.com', 'juliet'), a);
        assert.equal(await s.accounts.get('example.com', 'romeo'), null);
        assert.equal(await s.accounts.get('example.org', 'juliet'), null);
      });

      it('refuses a duplicate create and keeps the first account', async () => {
        const first = account('example.com', 'juliet', 1);
        assert.equal(await s.accounts.create(first), true);
        assert.equal(await s.accounts.create(account('example.com', 'juliet', 2)), false);
        assert.deepEqual(await s.accounts.get('example.com', 'juliet'), first);
      });

      it('concurrent creates of one account: exactly one wins', async () => {
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.accounts.create(account('example.com', 'race', i))));
        assert.equal(results.filter(Boolean).length, 1);
        const winner = results.indexOf(true);
        assert.equal((await s.accounts.get('example.com', 'race'))?.createdAt, winner);
      });

      it('sets credentials of an existing account only', async () => {
        const a = account('example.com', 'juliet');
        await s.accounts.create(a);
        const creds = account('x', 'y').credentials;
        assert.equal(await s.accounts.setCredentials('example.com', 'juliet', creds), true);
        assert.deepEqual(await s.accounts.get('example.com', 'juliet'), { ...a, credentials: creds });
        assert.equal(await s.accounts.setCredentials('example.com', 'nobody', creds), false);
        assert.equal(await s.accounts.get('example.com', 'nobody'), null);
        assert.deepEqual(await s.accounts.list('example.com'), ['juliet']);
      });

      it('deletes an account once', async () => {
        await s.accounts.create(account('example.com', 'juliet'));
        await s.accounts.create(account('example.com', 'romeo'));
        assert.equal(await s.accounts.delete('example.com', 'juliet'), true);
        assert.equal(await s.accounts.delete('example.com', 'juliet'), false);
        assert.equal(await s.accounts.get('example.com', 'juliet'), null);
        assert.deepEqual(await s.accounts.list('example.com'), ['romeo']);
        // The name is free again.
        assert.equal(await s.accounts.create(account('example.com', 'juliet')), true);
      });

      it('lists a domain sorted by code point, without other domains', async () => {
        // 'a.example' is a prefix of 'a.example2': scans must not bleed over.
        const names = ['romeo', 'juliet', 'ünïcode', '日本', '😀smile', 'ｚwide', 'a', 'a-b', 'b{x}%'];
        for (const n of names) assert.equal(await s.accounts.create(account('a.example', n)), true);
        await s.accounts.create(account('a.example2', 'other'));
        await s.accounts.create(account('b.example', 'stranger'));
        assert.deepEqual(await s.accounts.list('a.example'), [...names].sort(byCodePoint));
        assert.deepEqual(await s.accounts.list('a.example2'), ['other']);
        assert.deepEqual(await s.accounts.list('nobody.example'), []);
        for (const n of names) assert.equal((await s.accounts.get('a.example', n))?.username, n);
      });

      it('keeps accounts across a reopen', async (t) => {
        if (!subject.reopen) return t.skip('backend has no reopen');
        const a = account('example.com', 'juliet');
        await s.accounts.create(a);
        s = await subject.reopen();
        assert.deepEqual(await s.accounts.get('example.com', 'juliet'), a);
        assert.deepEqual(await s.accounts.list('example.com'), ['juliet']);
        assert.equal(await s.accounts.create(account('example.com', 'juliet')), false);
      });
    });

    describe('sessions', () => {
      const bare = 'juliet@example.com';

      it('binds, gets, lists; rebinding a resource returns what it replaced', async () => {
        const e1 = entry('balcony', 'n1');
        assert.equal(await s.sessions.bind(bare, e1), null);
        assert.deepEqual(await s.sessions.get(bare, 'balcony'), e1);
        const e2 = entry('balcony', 'n2', { priority: 5 });
        assert.deepEqual(await s.sessions.bind(bare, e2), e1);
        const e3 = entry('garden', 'n1');
        await s.sessions.bind(bare, e3);
        const listed = await s.sessions.list(bare);
        assert.deepEqual(listed.sort((a, b) => a.resource.localeCompare(b.resource)), [e2, e3]);
        assert.equal(await s.sessions.get(bare, 'nowhere'), null);
        assert.deepEqual(await s.sessions.list('nobody@example.com'), []);
      });

      it('a retried bind of the same session replaces nothing', async () => {
        const e = entry('r', 'n1');
        assert.equal(await s.sessions.bind(bare, e), null);
        assert.equal(await s.sessions.bind(bare, { ...e, priority: 1 }), null);
        assert.deepEqual(await s.sessions.get(bare, 'r'), { ...e, priority: 1 });
        assert.deepEqual(await s.sessions.sessionsOf('n1'), [{ bare, ...e, priority: 1 }]);
        assert.equal(await s.sessions.count(), 1);
      });

      it('returns copies: changing a result does not change the registry', async () => {
        const e = entry('r', 'n1');
        await s.sessions.bind(bare, e);
        const got = await s.sessions.get(bare, 'r');
        assert.ok(got);
        got.priority = 99;
        e.priority = 42;
        assert.equal((await s.sessions.get(bare, 'r'))?.priority, 0);
      });

      it('unbinds only the session that still holds the resource', async () => {
        const old = entry('r', 'n1');
        const cur = entry('r', 'n2');
        await s.sessions.bind(bare, old);
        await s.sessions.bind(bare, cur);
        assert.equal(await s.sessions.unbind(bare, 'r', old.sessionId), false);
        assert.deepEqual(await s.sessions.get(bare, 'r'), cur);
        assert.equal(await s.sessions.unbind(bare, 'r', cur.sessionId), true);
        assert.equal(await s.sessions.get(bare, 'r'), null);
        assert.equal(await s.sessions.unbind(bare, 'r', cur.sessionId), false);
        assert.deepEqual(await s.sessions.list(bare), []);
      });

      it('updates priority/availability only for the holding session', async () => {
        const old = entry('r', 'n1');
        await s.sessions.bind(bare, old);
        assert.equal(await s.sessions.update(bare, 'r', old.sessionId, { priority: -3 }), true);
        assert.equal(await s.sessions.update(bare, 'r', old.sessionId, { available: true }), true);
        assert.deepEqual(await s.sessions.get(bare, 'r'), { ...old, priority: -3, available: true });
        const cur = entry('r', 'n1');
        await s.sessions.bind(bare, cur);
        assert.equal(await s.sessions.update(bare, 'r', old.sessionId, { priority: 7 }), false);
        assert.deepEqual(await s.sessions.get(bare, 'r'), cur);
        assert.equal(await s.sessions.update(bare, 'gone', cur.sessionId, { priority: 7 }), false);
        assert.equal(await s.sessions.update(bare, 'r', cur.sessionId, { priority: 127, available: false }), true);
        assert.deepEqual(await s.sessions.get(bare, 'r'), { ...cur, priority: 127, available: false });
      });

      it('rejects an out-of-range priority the same way', async () => {
        const e = entry('r', 'n1');
        await assert.rejects(s.sessions.bind(bare, { ...e, priority: 128 }), { name: 'StoreError' });
        await s.sessions.bind(bare, e);
        await assert.rejects(s.sessions.update(bare, 'r', e.sessionId, { priority: 1.5 }), { name: 'StoreError' });
        assert.deepEqual(await s.sessions.get(bare, 'r'), e);
      });

      it('counts bound sessions', async () => {
        assert.equal(await s.sessions.count(), 0);
        const a = entry('a', 'n1');
        await s.sessions.bind(bare, a);
        await s.sessions.bind(bare, entry('b', 'n2'));
        await s.sessions.bind('romeo@example.com', entry('a', 'n1'));
        assert.equal(await s.sessions.count(), 3);
        await s.sessions.bind(bare, entry('a', 'n2')); // replaces, no new session
        assert.equal(await s.sessions.count(), 3);
        await s.sessions.unbind(bare, 'a', a.sessionId); // stale id: no-op
        assert.equal(await s.sessions.count(), 3);
        await s.sessions.purgeNode('n2');
        assert.equal(await s.sessions.count(), 1);
      });

      it('keeps node heartbeats in the store clock and lists expired nodes too', async () => {
        const before = Date.now();
        await s.sessions.heartbeat('n1', 60_000);
        await s.sessions.heartbeat('n2', 30);
        const n1 = (await s.sessions.nodes()).find((n) => n.node === 'n1');
        assert.ok(n1);
        // Within a second of "now + ttl", whatever the backend's clock source.
        assert.ok(Math.abs(n1.expiresAt - (before + 60_000)) < 1_000, `expiresAt ${n1.expiresAt} vs ${before + 60_000}`);
        await sleep(80);
        const nodes = await s.sessions.nodes();
        const n2 = nodes.find((n) => n.node === 'n2');
        assert.ok(n2 && n2.expiresAt < Date.now(), 'expired node still listed, with its past expiry');
        await s.sessions.heartbeat('n2', 60_000);
        const again = (await s.sessions.nodes()).find((n) => n.node === 'n2');
        assert.ok(again && again.expiresAt > Date.now() + 50_000, 'a heartbeat revives it');
        assert.deepEqual((await s.sessions.nodes()).map((n) => n.node).sort(), ['n1', 'n2']);
      });

      it('lists the sessions of a node', async () => {
        const a = entry('a', 'n1');
        const b = entry('b', 'n2');
        const c = entry('c', 'n1');
        await s.sessions.bind(bare, a);
        await s.sessions.bind(bare, b);
        await s.sessions.bind('romeo@example.com', c);
        const of1 = await s.sessions.sessionsOf('n1');
        assert.deepEqual(
          of1.sort((x, y) => x.bare.localeCompare(y.bare)),
          [{ bare, ...a }, { bare: 'romeo@example.com', ...c }],
        );
        // A resource re-bound on another node leaves n1's list.
        const moved = entry('a', 'n2');
        await s.sessions.bind(bare, moved);
        assert.deepEqual(await s.sessions.sessionsOf('n1'), [{ bare: 'romeo@example.com', ...c }]);
        assert.deepEqual(ids(await s.sessions.sessionsOf('n2')), ids([b, moved]));
        await s.sessions.unbind('romeo@example.com', 'c', c.sessionId);
        assert.deepEqual(await s.sessions.sessionsOf('n1'), []);
        assert.deepEqual(await s.sessions.sessionsOf('never-seen'), []);
      });

      it('purges a node: only its own sessions, returned; idempotent', async () => {
        await s.sessions.heartbeat('n1', 10);
        await s.sessions.heartbeat('n2', 60_000);
        const a = entry('a', 'n1');
        const b = entry('b', 'n2');
        const c = entry('c', 'n1');
        const moving = entry('m', 'n1');
        await s.sessions.bind(bare, a);
        await s.sessions.bind(bare, b);
        await s.sessions.bind('romeo@example.com', c);
        await s.sessions.bind(bare, moving);
        // The client reconnected through n2 before n1 was reaped.
        const moved = entry('m', 'n2');
        await s.sessions.bind(bare, moved);

        const removed = await s.sessions.purgeNode('n1');
        assert.deepEqual(
          removed.sort((x, y) => x.sessionId.localeCompare(y.sessionId)),
          [{ bare, ...a }, { bare: 'romeo@example.com', ...c }].sort((x, y) => x.sessionId.localeCompare(y.sessionId)),
        );
        assert.deepEqual(ids(await s.sessions.list(bare)), ids([b, moved]));
        assert.deepEqual(await s.sessions.list('romeo@example.com'), []);
        assert.deepEqual((await s.sessions.nodes()).map((n) => n.node), ['n2']);
        assert.deepEqual(await s.sessions.sessionsOf('n1'), []);
        assert.deepEqual(await s.sessions.purgeNode('n1'), []);
        assert.deepEqual(ids(await s.sessions.sessionsOf('n2')), ids([b, moved]));
        assert.equal(await s.sessions.count(), 2);
        // A node nobody heard of purges to nothing.
        assert.deepEqual(await s.sessions.purgeNode('ghost'), []);
      });

      it('leases: acquire, renew by the holder, refuse others, hand over after expiry', async () => {
        assert.equal(await s.sessions.lease('reaper', 'a', 100), true);
        assert.equal(await s.sessions.lease('reaper', 'a', 100), true);
        assert.equal(await s.sessions.lease('reaper', 'b', 100), false);
        assert.equal(await s.sessions.lease('other', 'b', 100), true, 'leases are independent');
        await sleep(60);
        assert.equal(await s.sessions.lease('reaper', 'a', 100), true, 'renewal extends');
        await sleep(60);
        assert.equal(await s.sessions.lease('reaper', 'b', 100), false, 'still held after renewal');
        await sleep(150);
        assert.equal(await s.sessions.lease('reaper', 'b', 100), true, 'taken over after expiry');
        assert.equal(await s.sessions.lease('reaper', 'a', 100), false);
      });

      it('concurrent binds of one resource: every bind replaces exactly one other, none lost', async () => {
        for (let round = 0; round < 5; round++) {
          const resource = `race${round}`;
          const entries = Array.from({ length: 25 }, (_, i) => entry(resource, `n${i % 3}`));
          const replaced = await Promise.all(entries.map((e) => s.sessions.bind(bare, e)));
          const final = await s.sessions.get(bare, resource);
          assert.ok(final);
          assert.equal(replaced.filter((r) => r === null).length, 1, 'exactly one bind found the slot empty');
          // The binds form one chain: each entry was replaced exactly once, except the final one.
          const chain = [...replaced.filter((r): r is SessionEntry => r !== null).map((r) => r.sessionId), final.sessionId].sort();
          assert.deepEqual(chain, ids(entries));
          const onNodes = (await Promise.all(['n0', 'n1', 'n2'].map((n) => s.sessions.sessionsOf(n)))).flat();
          assert.deepEqual(onNodes.filter((x) => x.resource === resource).map((x) => x.sessionId), [final.sessionId]);
        }
      });

      it('concurrent purge and re-bind: a session bound during the purge survives', async () => {
        const olds = Array.from({ length: 50 }, (_, i) => entry(`r${i}`, 'dead'));
        for (const e of olds) await s.sessions.bind(bare, e);
        const fresh = olds.map((e) => entry(e.resource, 'alive'));
        const [removed] = await Promise.all([s.sessions.purgeNode('dead'), ...fresh.map((e) => s.sessions.bind(bare, e))]);
        const left = await s.sessions.list(bare);
        assert.deepEqual(ids(left), ids(fresh), 'every fresh bind survived');
        // Whatever the interleaving, each old session is either purged or replaced, never both, never neither.
        assert.equal(new Set(removed.map((r) => r.sessionId)).size, removed.length);
        for (const r of removed) assert.ok(olds.some((o) => o.sessionId === r.sessionId));
        assert.equal(await s.sessions.count(), 50);
      });
    });

    describe('session presence', () => {
      const bare = 'juliet@example.com';
      const pres = '<presence xmlns="jabber:client" from="juliet@example.com/r"><show>away</show><status>ünï / 😀</status></presence>';

      it('bind keeps a given presence; update sets, keeps and clears it', async () => {
        const e = entry('r', 'n1', { presence: pres });
        assert.equal(await s.sessions.bind(bare, e), null);
        assert.deepEqual(await s.sessions.get(bare, 'r'), e);
        const plain = entry('p', 'n1');
        await s.sessions.bind(bare, plain);
        assert.equal('presence' in ((await s.sessions.get(bare, 'p')) ?? {}), false, 'absent when never set');
        assert.equal(await s.sessions.update(bare, 'p', plain.sessionId, { presence: pres, available: true }), true);
        assert.deepEqual(await s.sessions.get(bare, 'p'), { ...plain, available: true, presence: pres });
        assert.equal(await s.sessions.update(bare, 'p', plain.sessionId, { priority: 3 }), true);
        assert.equal((await s.sessions.get(bare, 'p'))?.presence, pres, 'a patch without presence keeps it');
        assert.equal(await s.sessions.update(bare, 'p', plain.sessionId, { presence: '', available: false }), true);
        assert.deepEqual(await s.sessions.get(bare, 'p'), { ...plain, priority: 3 }, "'' clears it (field absent)");
        assert.equal(await s.sessions.update(bare, 'p', 'stale', { presence: pres }), false);
        assert.equal((await s.sessions.get(bare, 'p'))?.presence, undefined);
        const listed = (await s.sessions.list(bare)).find((x) => x.resource === 'r');
        assert.equal(listed?.presence, pres);
        assert.deepEqual((await s.sessions.sessionsOf('n1')).find((x) => x.resource === 'r')?.presence, pres);
      });

      it('module flags: set sorted and deduplicated, kept by other patches, replaced, cleared by []', async () => {
        const fb = 'flags@example.com';
        const e = entry('f', 'n1');
        await s.sessions.bind(fb, e);
        assert.equal('flags' in ((await s.sessions.get(fb, 'f')) ?? {}), false, 'absent when never set');
        assert.equal(await s.sessions.update(fb, 'f', e.sessionId, { flags: ['x', 'carbons', 'x'] }), true);
        assert.deepEqual((await s.sessions.get(fb, 'f'))?.flags, ['carbons', 'x']);
        assert.equal(await s.sessions.update(fb, 'f', e.sessionId, { priority: 5, available: true }), true);
        assert.deepEqual((await s.sessions.list(fb))[0]?.flags, ['carbons', 'x'], 'a patch without flags keeps them');
        assert.equal(await s.sessions.update(fb, 'f', e.sessionId, { flags: ['csi'] }), true);
        assert.deepEqual((await s.sessions.get(fb, 'f'))?.flags, ['csi']);
        assert.equal(await s.sessions.update(fb, 'f', 'stale', { flags: ['other'] }), false);
        assert.equal(await s.sessions.update(fb, 'f', e.sessionId, { flags: [] }), true);
        assert.deepEqual(await s.sessions.get(fb, 'f'), { ...e, priority: 5, available: true }, '[] clears them (field absent)');
        await assert.rejects(s.sessions.update(fb, 'f', e.sessionId, { flags: [''] }), { name: 'StoreError' });
      });
    });

    describe('rosters', () => {
      const bare = 'juliet@example.com';

      it('an unknown roster is version 0, empty', async () => {
        assert.deepEqual(await s.rosters.get(bare), { version: 0, items: [] });
        assert.equal(await s.rosters.getItem(bare, 'romeo@example.net'), null);
        assert.equal(await s.rosters.count(bare), 0);
      });

      it('sets, replaces, gets and removes items; each change bumps the version by one', async () => {
        const romeo = item('romeo@example.net', { name: 'Romeo', groups: ['Friends', 'Verona'], subscription: 'both' });
        assert.equal(await s.rosters.setItem(bare, romeo), 1);
        assert.deepEqual(await s.rosters.getItem(bare, 'romeo@example.net'), romeo);
        const nurse = item('nurse@example.com', { ask: true, approved: true });
        assert.equal(await s.rosters.setItem(bare, nurse), 2);
        const got = await s.rosters.getItem(bare, 'nurse@example.com');
        assert.deepEqual(got, nurse);
        assert.equal(got && 'name' in got, false, 'no name stays absent');
        const renamed = { ...romeo, name: 'R', groups: ['Verona'], subscription: 'to' as const };
        assert.equal(await s.rosters.setItem(bare, renamed), 3, 'a replace bumps too');
        assert.deepEqual(await s.rosters.get(bare), { version: 3, items: [nurse, renamed] });
        assert.equal(await s.rosters.count(bare), 2);
        assert.equal(await s.rosters.removeItem(bare, 'nurse@example.com'), 4);
        assert.equal(await s.rosters.removeItem(bare, 'nurse@example.com'), null, 'a missing item: null');
        assert.equal(await s.rosters.removeItem(bare, 'nobody@example.com'), null);
        assert.deepEqual(await s.rosters.get(bare), { version: 4, items: [renamed] }, 'no bump for a missing item');
        // Other users' rosters (including one whose JID extends this one) are separate.
        assert.deepEqual(await s.rosters.get('juliet@example.co'), { version: 0, items: [] });
        assert.equal(await s.rosters.setItem('juliet@example.com2', item('x@y')), 1);
        assert.equal(await s.rosters.count(bare), 1);
      });

      it('lists items by contact in code point order', async () => {
        const jids = ['romeo@example.net', 'b@x', 'a@x', 'ünï@x', '日本@x', '😀@x', 'ｚ@x', 'a{b}%@x', 'A@x'];
        for (const j of jids) await s.rosters.setItem(bare, item(j));
        const r = await s.rosters.get(bare);
        assert.deepEqual(r.items.map((i) => i.jid), [...jids].sort(byCodePoint));
        assert.equal(r.version, jids.length);
      });

      it('returns copies: changing a result does not change the roster', async () => {
        const i = item('romeo@example.net', { groups: ['A'] });
        await s.rosters.setItem(bare, i);
        i.groups.push('B');
        const got = await s.rosters.getItem(bare, 'romeo@example.net');
        assert.deepEqual(got?.groups, ['A']);
        got?.groups.push('C');
        assert.deepEqual((await s.rosters.get(bare)).items[0]?.groups, ['A']);
      });

      it('concurrent setItem/removeItem: no lost update, versions 1..n each once', async () => {
        const n = 60;
        const versions = await Promise.all(
          Array.from({ length: n }, (_, i) => s.rosters.setItem(bare, item(`c${i % 20}@example.net`, { name: `v${i}` }))),
        );
        assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1));
        const removals = await Promise.all(Array.from({ length: 10 }, (_, i) => s.rosters.removeItem(bare, `c${i}@example.net`)));
        assert.deepEqual([...removals].sort((a, b) => (a ?? 0) - (b ?? 0)), Array.from({ length: 10 }, (_, i) => n + i + 1));
        const r = await s.rosters.get(bare);
        assert.equal(r.version, n + 10);
        assert.equal(r.items.length, 10);
        assert.equal(await s.rosters.count(bare), 10);
        // Each contact holds the write that got the highest version for it.
        for (const it of r.items) {
          const k = Number(it.jid.slice(1, it.jid.indexOf('@')));
          const mine = versions.map((v, i) => ({ v, i })).filter(({ i }) => i % 20 === k);
          const last = mine.reduce((a, b) => (b.v > a.v ? b : a));
          assert.equal(it.name, `v${last.i}`);
        }
      });

      it('deleteAll forgets items and version', async () => {
        await s.rosters.setItem(bare, item('a@x'));
        await s.rosters.setItem(bare, item('b@x'));
        await s.rosters.setItem('romeo@example.net', item('a@x'));
        await s.rosters.deleteAll(bare);
        assert.deepEqual(await s.rosters.get(bare), { version: 0, items: [] });
        assert.equal(await s.rosters.count(bare), 0);
        assert.equal((await s.rosters.get('romeo@example.net')).version, 1);
        await s.rosters.deleteAll('nobody@example.com');
      });

      it('rejects bad items with a StoreError and writes nothing', async () => {
        const bad: unknown[] = [
          item(''),
          { ...item('a@x'), groups: 'Friends' },
          { ...item('a@x'), groups: ['A', 1] },
          { ...item('a@x'), groups: ['A', 'A'] },
          { ...item('a@x'), subscription: 'maybe' },
          { ...item('a@x'), name: 5 },
          { ...item('a@x'), ask: 'yes' },
        ];
        for (const b of bad) await assert.rejects(s.rosters.setItem(bare, b as RosterItem), { name: 'StoreError' }, JSON.stringify(b));
        await assert.rejects(s.rosters.setItem('', item('a@x')), { name: 'StoreError' });
        await assert.rejects(s.rosters.removeItem(bare, ''), { name: 'StoreError' });
        assert.deepEqual(await s.rosters.get(bare), { version: 0, items: [] });
      });

      it('keeps rosters and versions across a reopen', async (t) => {
        if (!subject.reopen) return t.skip('backend has no reopen');
        const a = item('a@x', { name: 'A', groups: ['G'], subscription: 'from', approved: true });
        await s.rosters.setItem(bare, a);
        await s.rosters.setItem(bare, item('b@x'));
        await s.rosters.removeItem(bare, 'b@x');
        s = await subject.reopen();
        assert.deepEqual(await s.rosters.get(bare), { version: 3, items: [a] });
        assert.equal(await s.rosters.setItem(bare, item('c@x')), 4);
      });
    });

    describe('offline', () => {
      const bare = 'juliet@example.com';
      const msg = (i: number): string => `<message xmlns="jabber:client" to="${bare}" id="m${i}"><body>#${i} ü😀</body></message>`;

      it('pushes, counts and takes in order; take empties', async () => {
        assert.deepEqual(await s.offline.take(bare), []);
        assert.equal(await s.offline.count(bare), 0);
        for (let i = 0; i < 100; i++) assert.equal(await s.offline.push(bare, msg(i), 1000), true);
        await s.offline.push('romeo@example.net', msg(-1), 1000);
        await s.offline.push('juliet@example.com2', msg(-2), 1000);
        assert.equal(await s.offline.count(bare), 100);
        assert.deepEqual(await s.offline.take(bare), Array.from({ length: 100 }, (_, i) => msg(i)));
        assert.equal(await s.offline.count(bare), 0);
        assert.deepEqual(await s.offline.take(bare), []);
        assert.deepEqual(await s.offline.take('romeo@example.net'), [msg(-1)]);
        // A queue emptied and filled again keeps order.
        for (let i = 0; i < 3; i++) await s.offline.push(bare, msg(i), 10);
        assert.deepEqual(await s.offline.take(bare), [msg(0), msg(1), msg(2)]);
      });

      it('enforces the cap exactly', async () => {
        for (let i = 0; i < 5; i++) assert.equal(await s.offline.push(bare, msg(i), 5), true);
        assert.equal(await s.offline.push(bare, msg(5), 5), false);
        assert.equal(await s.offline.count(bare), 5);
        assert.equal(await s.offline.push(bare, msg(5), 6), true, 'the cap is per call');
        assert.equal(await s.offline.push('romeo@example.net', msg(0), 0), false, 'cap 0 stores nothing');
        assert.equal(await s.offline.count('romeo@example.net'), 0);
        await assert.rejects(s.offline.push(bare, msg(0), -1), { name: 'StoreError' });
        await assert.rejects(s.offline.push(bare, msg(0), 1.5), { name: 'StoreError' });
        await assert.rejects(s.offline.push('', msg(0), 5), { name: 'StoreError' });
      });

      it('concurrent pushes: the cap holds exactly, no stanza lost or doubled', async () => {
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => s.offline.push(bare, msg(i), 20)));
        assert.equal(results.filter(Boolean).length, 20);
        const taken = await s.offline.take(bare);
        assert.deepEqual([...taken].sort(), results.flatMap((ok, i) => (ok ? [msg(i)] : [])).sort());
      });

      it('concurrent take: every stanza is taken exactly once', async () => {
        for (let i = 0; i < 30; i++) await s.offline.push(bare, msg(i), 100);
        const [a, b, c] = await Promise.all([s.offline.take(bare), s.offline.push(bare, msg(30), 100), s.offline.take(bare)]);
        assert.equal(b, true);
        const all = [...a, ...c];
        assert.deepEqual(all.sort(), Array.from({ length: 31 }, (_, i) => msg(i)).sort());
      });

      it('deleteAll empties one queue', async () => {
        await s.offline.push(bare, msg(0), 10);
        await s.offline.push('romeo@example.net', msg(1), 10);
        await s.offline.deleteAll(bare);
        assert.equal(await s.offline.count(bare), 0);
        assert.deepEqual(await s.offline.take(bare), []);
        assert.equal(await s.offline.count('romeo@example.net'), 1);
      });

      it('keeps offline messages across a reopen, in order', async (t) => {
        if (!subject.reopen) return t.skip('backend has no reopen');
        for (let i = 0; i < 10; i++) await s.offline.push(bare, msg(i), 100);
        s = await subject.reopen();
        assert.equal(await s.offline.count(bare), 10);
        assert.equal(await s.offline.push(bare, msg(10), 11), true);
        assert.equal(await s.offline.push(bare, msg(11), 11), false, 'the cap counts what survived');
        assert.deepEqual(await s.offline.take(bare), Array.from({ length: 11 }, (_, i) => msg(i)));
      });
    });

    describe('presence', () => {
      const bare = 'juliet@example.com';
      const sub = (from: string): string => `<presence xmlns="jabber:client" type="subscribe" from="${from}" to="${bare}"/>`;

      it('pending-in: set, has, list sorted, replace, remove', async () => {
        assert.deepEqual(await s.presence.listPendingIn(bare), []);
        assert.equal(await s.presence.hasPendingIn(bare, 'romeo@example.net'), false);
        for (const c of ['romeo@example.net', 'benvolio@example.net', '😀@x', 'ünï@x']) await s.presence.setPendingIn(bare, c, sub(c));
        await s.presence.setPendingIn('juliet@example.com2', 'x@y', sub('x@y'));
        assert.equal(await s.presence.hasPendingIn(bare, 'romeo@example.net'), true);
        assert.equal(await s.presence.hasPendingIn(bare, 'x@y'), false);
        await s.presence.setPendingIn(bare, 'romeo@example.net', 'again');
        assert.deepEqual(await s.presence.listPendingIn(bare), [
          { contact: 'benvolio@example.net', stanza: sub('benvolio@example.net') },
          { contact: 'romeo@example.net', stanza: 'again' },
          { contact: 'ünï@x', stanza: sub('ünï@x') },
          { contact: '😀@x', stanza: sub('😀@x') },
        ]);
        assert.equal(await s.presence.removePendingIn(bare, 'romeo@example.net'), true);
        assert.equal(await s.presence.removePendingIn(bare, 'romeo@example.net'), false);
        assert.equal(await s.presence.hasPendingIn(bare, 'romeo@example.net'), false);
        assert.equal((await s.presence.listPendingIn(bare)).length, 3);
        await assert.rejects(s.presence.setPendingIn(bare, '', 'x'), { name: 'StoreError' });
      });

      it('directed presence: add (idempotent), remove, take per full JID', async () => {
        const full = `${bare}/balcony`;
        assert.deepEqual(await s.presence.takeDirected(full), []);
        await s.presence.addDirected(full, 'romeo@example.net/orchard');
        await s.presence.addDirected(full, 'room@muc.example/nick');
        await s.presence.addDirected(full, 'romeo@example.net/orchard');
        await s.presence.addDirected(full, 'nurse@example.com');
        await s.presence.addDirected(`${bare}/garden`, 'romeo@example.net/orchard');
        await s.presence.addDirected('juliet@example.com2/balcony', 'x@y');
        await s.presence.removeDirected(full, 'nurse@example.com');
        await s.presence.removeDirected(full, 'never@added');
        assert.deepEqual(await s.presence.takeDirected(full), ['romeo@example.net/orchard', 'room@muc.example/nick']);
        assert.deepEqual(await s.presence.takeDirected(full), [], 'take empties');
        assert.deepEqual(await s.presence.takeDirected(`${bare}/garden`), ['romeo@example.net/orchard']);
        // Removing the last target leaves nothing behind.
        await s.presence.addDirected(full, 'a@x');
        await s.presence.removeDirected(full, 'a@x');
        assert.deepEqual(await s.presence.takeDirected(full), []);
        assert.deepEqual(await s.presence.takeDirected('juliet@example.com2/balcony'), ['x@y']);
        await assert.rejects(s.presence.addDirected(bare, 'a@x'), { name: 'StoreError' }, 'a bare JID is not a full JID');
        await assert.rejects(s.presence.addDirected(`${bare}/r`, ''), { name: 'StoreError' });
      });

      it('a resource may contain slashes and braces', async () => {
        const full = `${bare}/a/b{c}%`;
        await s.presence.addDirected(full, 't@x');
        assert.deepEqual(await s.presence.takeDirected(`${bare}/a`), []);
        assert.deepEqual(await s.presence.takeDirected(full), ['t@x']);
      });

      it('deleteAll forgets pending-in and every resource\u2019s directed presence of one account', async () => {
        await s.presence.setPendingIn(bare, 'romeo@example.net', 'x');
        await s.presence.addDirected(`${bare}/a`, 't1@x');
        await s.presence.addDirected(`${bare}/b`, 't2@x');
        await s.presence.setPendingIn('romeo@example.net', bare, 'y');
        await s.presence.addDirected('romeo@example.net/a', 't3@x');
        await s.presence.deleteAll(bare);
        assert.deepEqual(await s.presence.listPendingIn(bare), []);
        assert.deepEqual(await s.presence.takeDirected(`${bare}/a`), []);
        assert.deepEqual(await s.presence.takeDirected(`${bare}/b`), []);
        assert.deepEqual(await s.presence.listPendingIn('romeo@example.net'), [{ contact: bare, stanza: 'y' }]);
        assert.deepEqual(await s.presence.takeDirected('romeo@example.net/a'), ['t3@x']);
        await s.presence.deleteAll('nobody@example.com');
      });

      it('keeps pending-in across a reopen', async (t) => {
        if (!subject.reopen) return t.skip('backend has no reopen');
        await s.presence.setPendingIn(bare, 'romeo@example.net', sub('romeo@example.net'));
        s = await subject.reopen();
        assert.equal(await s.presence.hasPendingIn(bare, 'romeo@example.net'), true);
        assert.deepEqual(await s.presence.listPendingIn(bare), [{ contact: 'romeo@example.net', stanza: sub('romeo@example.net') }]);
      });
    });

    describe('rooms', () => {
      const room = 'verona@conference.example.com';
      const domain = 'conference.example.com';
      const empty = (m: RoomMeta): StoredRoom => ({ meta: m, affiliations: new Map(), subject: null, occupants: new Map(), history: [] });
      const names = (r: { items: RoomListing[] }): string[] => r.items.map((i) => i.room);

      it('load of a missing room is null; putMeta creates it; a replace changes it', async () => {
        assert.equal(await s.rooms.load(room), null);
        const m = meta({ name: 'Verona', config: '{"x":"ü😀"}' });
        await s.rooms.putMeta(room, m);
        assert.deepEqual(await s.rooms.load(room), empty(m));
        const m2 = meta({ name: 'Mantua', public: false, persistent: false, config: '{}', createdAt: 5 });
        await s.rooms.putMeta(room, m2);
        assert.deepEqual(await s.rooms.load(room), empty(m2));
        // Another room, and one whose JID extends this one, are separate.
        assert.equal(await s.rooms.load('verona@conference.example.co'), null);
        assert.equal(await s.rooms.load('verona@conference.example.com2'), null);
        assert.equal(await s.rooms.load('veron@conference.example.com'), null);
      });

      it('returns copies: changing a result or an argument does not change the room', async () => {
        const m = meta();
        await s.rooms.putMeta(room, m);
        const aff: RoomAffiliation = { affiliation: 'member', nick: 'romeo' };
        await s.rooms.setAffiliation(room, 'romeo@example.net', aff);
        m.name = 'changed';
        aff.nick = 'changed';
        const got = await s.rooms.load(room);
        assert.ok(got);
        assert.equal(got.meta.name, 'Verona');
        assert.deepEqual(got.affiliations.get('romeo@example.net'), { affiliation: 'member', nick: 'romeo' });
        got.meta.name = 'x';
        got.affiliations.clear();
        got.history.push('x');
        got.occupants.set('x', 'y');
        assert.deepEqual(await s.rooms.load(room), {
          ...empty(meta()),
          affiliations: new Map([['romeo@example.net', { affiliation: 'member', nick: 'romeo' }]]),
        });
      });

      it('affiliations: set, replace, remove (XEP-0045 §5.2); nick and reason absent unless given', async () => {
        await s.rooms.putMeta(room, meta());
        await s.rooms.setAffiliation(room, 'juliet@example.com', { affiliation: 'owner' });
        await s.rooms.setAffiliation(room, 'nurse@example.com', { affiliation: 'admin', nick: 'Nurse' });
        await s.rooms.setAffiliation(room, 'romeo@example.net', { affiliation: 'member', nick: 'Romeo' });
        await s.rooms.setAffiliation(room, 'tybalt@example.net', { affiliation: 'outcast', reason: 'Capulet feud' });
        await s.rooms.setAffiliation('other@conference.example.com', 'romeo@example.net', { affiliation: 'admin' });
        let got = await s.rooms.load(room);
        assert.deepEqual(
          got?.affiliations,
          new Map<string, RoomAffiliation>([
            ['juliet@example.com', { affiliation: 'owner' }],
            ['nurse@example.com', { affiliation: 'admin', nick: 'Nurse' }],
            ['romeo@example.net', { affiliation: 'member', nick: 'Romeo' }],
            ['tybalt@example.net', { affiliation: 'outcast', reason: 'Capulet feud' }],
          ]),
        );
        const owner = got?.affiliations.get('juliet@example.com');
        assert.equal(owner && ('nick' in owner || 'reason' in owner), false, 'absent, not undefined');
        // Replace: the whole record, not a merge.
        await s.rooms.setAffiliation(room, 'romeo@example.net', { affiliation: 'admin', reason: 'promoted' });
        await s.rooms.setAffiliation(room, 'tybalt@example.net', null);
        await s.rooms.setAffiliation(room, 'never@example.net', null);
        got = await s.rooms.load(room);
        assert.deepEqual(got?.affiliations.get('romeo@example.net'), { affiliation: 'admin', reason: 'promoted' });
        assert.equal(got?.affiliations.has('tybalt@example.net'), false);
        assert.equal(got?.affiliations.has('never@example.net'), false);
        assert.deepEqual([...(got?.affiliations.keys() ?? [])], ['juliet@example.com', 'nurse@example.com', 'romeo@example.net']);
        assert.deepEqual((await s.rooms.load('other@conference.example.com'))?.affiliations, undefined, 'no meta: no room');
      });

      it('ownedBy follows owner grants, revocations and destroy', async () => {
        const juliet = 'juliet@example.com';
        const rooms = ['b@conference.example.com', 'a@conference.example.com', 'ü@conference.example.com', 'c@muc.example.org'];
        assert.deepEqual(await s.rooms.ownedBy(juliet), []);
        for (const r of rooms) {
          await s.rooms.putMeta(r, meta());
          await s.rooms.setAffiliation(r, juliet, { affiliation: 'owner' });
        }
        await s.rooms.setAffiliation('a@conference.example.com', 'romeo@example.net', { affiliation: 'owner' });
        await s.rooms.setAffiliation('b@conference.example.com', 'romeo@example.net', { affiliation: 'admin' });
        assert.deepEqual(await s.rooms.ownedBy(juliet), [...rooms].sort(byCodePoint));
        assert.deepEqual(await s.rooms.ownedBy('romeo@example.net'), ['a@conference.example.com']);
        // Granted again: still listed once.
        await s.rooms.setAffiliation('a@conference.example.com', juliet, { affiliation: 'owner', nick: 'J' });
        assert.deepEqual(await s.rooms.ownedBy(juliet), [...rooms].sort(byCodePoint));
        // Downgraded, removed, destroyed: gone from the index.
        await s.rooms.setAffiliation('b@conference.example.com', juliet, { affiliation: 'admin' });
        await s.rooms.setAffiliation('ü@conference.example.com', juliet, null);
        await s.rooms.destroy('c@muc.example.org');
        assert.deepEqual(await s.rooms.ownedBy(juliet), ['a@conference.example.com']);
        // Promoted back.
        await s.rooms.setAffiliation('b@conference.example.com', juliet, { affiliation: 'owner' });
        assert.deepEqual(await s.rooms.ownedBy(juliet), ['a@conference.example.com', 'b@conference.example.com']);
        await s.rooms.destroy('a@conference.example.com');
        assert.deepEqual(await s.rooms.ownedBy(juliet), ['b@conference.example.com']);
        assert.deepEqual(await s.rooms.ownedBy('romeo@example.net'), []);
        assert.deepEqual(await s.rooms.ownedBy('juliet@example.co'), []);
        // A re-created room does not bring its old owners back.
        await s.rooms.putMeta('c@muc.example.org', meta());
        assert.deepEqual(await s.rooms.ownedBy(juliet), ['b@conference.example.com']);
        assert.deepEqual((await s.rooms.load('c@muc.example.org'))?.affiliations, new Map());
      });

      it('subject: null until set, set, replace, clear (XEP-0045 §8.1)', async () => {
        await s.rooms.putMeta(room, meta());
        assert.equal((await s.rooms.load(room))?.subject, null);
        await s.rooms.setSubject(room, '{"subject":"Fair Verona ü😀","by":"juliet"}');
        assert.equal((await s.rooms.load(room))?.subject, '{"subject":"Fair Verona ü😀","by":"juliet"}');
        await s.rooms.setSubject(room, '');
        assert.equal((await s.rooms.load(room))?.subject, '', "'' is a subject (an empty one), not none");
        await s.rooms.setSubject(room, 'again');
        await s.rooms.setSubject(room, null);
        assert.equal((await s.rooms.load(room))?.subject, null);
        await s.rooms.setSubject(room, null);
        assert.deepEqual(await s.rooms.load(room), empty(meta()));
      });

      it('occupants: put, replace, remove, by nick', async () => {
        await s.rooms.putMeta(room, meta());
        await s.rooms.putOccupant(room, 'Romeo', '{"jid":"romeo@example.net/a","role":"participant"}');
        await s.rooms.putOccupant(room, 'Juliet', '{"jid":"juliet@example.com/b","role":"moderator"}');
        await s.rooms.putOccupant(room, 'ü 😀 {x}%', '{"jid":"x@y/z"}');
        await s.rooms.putOccupant('other@conference.example.com', 'Romeo', 'elsewhere');
        await s.rooms.putOccupant(room, 'Romeo', '{"jid":"romeo@example.net/a","role":"visitor"}');
        let got = await s.rooms.load(room);
        assert.deepEqual(
          got?.occupants,
          new Map([
            ['Juliet', '{"jid":"juliet@example.com/b","role":"moderator"}'],
            ['Romeo', '{"jid":"romeo@example.net/a","role":"visitor"}'],
            ['ü 😀 {x}%', '{"jid":"x@y/z"}'],
          ]),
        );
        await s.rooms.removeOccupant(room, 'Romeo');
        await s.rooms.removeOccupant(room, 'Nobody');
        got = await s.rooms.load(room);
        assert.deepEqual([...(got?.occupants.keys() ?? [])], ['Juliet', 'ü 😀 {x}%']);
        await s.rooms.removeOccupant(room, 'Juliet');
        await s.rooms.removeOccupant(room, 'ü 😀 {x}%');
        assert.deepEqual((await s.rooms.load(room))?.occupants, new Map());
        await s.rooms.putMeta('other@conference.example.com', meta());
        assert.deepEqual((await s.rooms.load('other@conference.example.com'))?.occupants, new Map([['Romeo', 'elsewhere']]));
      });

      it('history: pushHistory keeps the newest max in order; max 0 empties; trimHistory', async () => {
        const h = (i: number): string => `{"stanza":"<message id='m${i}'><body>#${i} ü😀</body></message>"}`;
        const range = (a: number, b: number): string[] => Array.from({ length: b - a }, (_, i) => h(a + i));
        await s.rooms.putMeta(room, meta());
        for (let i = 0; i < 5; i++) await s.rooms.pushHistory(room, h(i), 20);
        assert.deepEqual((await s.rooms.load(room))?.history, range(0, 5));
        for (let i = 5; i < 30; i++) await s.rooms.pushHistory(room, h(i), 20);
        assert.deepEqual((await s.rooms.load(room))?.history, range(10, 30), 'only the newest 20');
        await s.rooms.pushHistory(room, h(30), 3);
        assert.deepEqual((await s.rooms.load(room))?.history, range(28, 31), 'a lower max trims at once');
        await s.rooms.pushHistory(room, h(31), 1);
        assert.deepEqual((await s.rooms.load(room))?.history, [h(31)]);
        await s.rooms.pushHistory(room, h(32), 0);
        assert.deepEqual((await s.rooms.load(room))?.history, [], 'max 0 empties and keeps nothing');
        for (let i = 33; i < 40; i++) await s.rooms.pushHistory(room, h(i), 10);
        assert.deepEqual((await s.rooms.load(room))?.history, range(33, 40), 'order kept after emptying');
        await s.rooms.trimHistory(room, 10);
        assert.deepEqual((await s.rooms.load(room))?.history, range(33, 40), 'a higher max trims nothing');
        await s.rooms.trimHistory(room, 4);
        assert.deepEqual((await s.rooms.load(room))?.history, range(36, 40));
        await s.rooms.pushHistory(room, h(40), 10);
        assert.deepEqual((await s.rooms.load(room))?.history, range(36, 41));
        await s.rooms.trimHistory(room, 0);
        assert.deepEqual((await s.rooms.load(room))?.history, []);
        await s.rooms.trimHistory(room, 5);
        await s.rooms.trimHistory('none@conference.example.com', 5);
        // Other rooms are separate.
        await s.rooms.putMeta('other@conference.example.com', meta());
        await s.rooms.pushHistory('other@conference.example.com', h(99), 5);
        await s.rooms.pushHistory(room, h(1), 5);
        assert.deepEqual((await s.rooms.load(room))?.history, [h(1)]);
        assert.deepEqual((await s.rooms.load('other@conference.example.com'))?.history, [h(99)]);
      });

      it('concurrent writes: no lost affiliation or occupant, history never above max', async () => {
        await s.rooms.putMeta(room, meta());
        await Promise.all([
          ...Array.from({ length: 20 }, (_, i) => s.rooms.setAffiliation(room, `u${i}@x`, { affiliation: i % 2 ? 'member' : 'owner' })),
          ...Array.from({ length: 20 }, (_, i) => s.rooms.putOccupant(room, `n${i}`, `o${i}`)),
          ...Array.from({ length: 30 }, (_, i) => s.rooms.pushHistory(room, `h${i}`, 10)),
        ]);
        const got = await s.rooms.load(room);
        assert.equal(got?.affiliations.size, 20);
        assert.equal(got?.occupants.size, 20);
        assert.equal(got?.history.length, 10);
        assert.equal(new Set(got?.history).size, 10);
        for (const h of got?.history ?? []) assert.match(h, /^h\d+$/);
        for (let i = 0; i < 20; i += 2) assert.deepEqual(await s.rooms.ownedBy(`u${i}@x`), [room]);
      });

      it('destroy removes everything, index entries included (XEP-0045 §10.9)', async () => {
        await s.rooms.putMeta(room, meta({ public: true, name: 'Verona' }));
        await s.rooms.setAffiliation(room, 'juliet@example.com', { affiliation: 'owner' });
        await s.rooms.setAffiliation(room, 'romeo@example.net', { affiliation: 'member', nick: 'Romeo' });
        await s.rooms.setSubject(room, 'subject');
        await s.rooms.putOccupant(room, 'Juliet', 'occupant');
        await s.rooms.pushHistory(room, 'entry', 10);
        await s.rooms.putMeta('mantua@conference.example.com', meta({ name: 'Mantua', public: false }));
        await s.rooms.setAffiliation('mantua@conference.example.com', 'juliet@example.com', { affiliation: 'owner' });
        await s.rooms.destroy(room);
        assert.equal(await s.rooms.load(room), null);
        assert.deepEqual(await s.rooms.list(domain, { max: 10, publicOnly: false }), {
          items: [{ room: 'mantua@conference.example.com', name: 'Mantua' }],
          count: 1,
        });
        assert.deepEqual(await s.rooms.list(domain, { max: 10, publicOnly: true }), { items: [], count: 0 });
        assert.deepEqual(await s.rooms.ownedBy('juliet@example.com'), ['mantua@conference.example.com']);
        // The other room is untouched.
        assert.equal((await s.rooms.load('mantua@conference.example.com'))?.affiliations.size, 1);
        // Destroying again (or a room that never was) is a no-op.
        await s.rooms.destroy(room);
        await s.rooms.destroy('never@conference.example.com');
        // The JID can be used again: nothing of the old room comes back.
        const m = meta({ public: false, name: 'New' });
        await s.rooms.putMeta(room, m);
        assert.deepEqual(await s.rooms.load(room), empty(m));
        assert.deepEqual(await s.rooms.list(domain, { max: 10, publicOnly: false }), {
          items: [
            { room: 'mantua@conference.example.com', name: 'Mantua' },
            { room, name: 'New' },
          ],
          count: 2,
        });
      });

      it('list: code point order, after exclusive, max, count is the total, publicOnly, per domain', async () => {
        const locals = ['romeo', 'juliet', 'ünïcode', '日本', '😀smile', 'ｚwide', 'a', 'a-b', 'b{x}%', 'A', 'aa'];
        const all = locals.map((l) => `${l}@${domain}`);
        const isPublic = (r: string): boolean => all.indexOf(r) % 2 === 0;
        for (const r of all) await s.rooms.putMeta(r, meta({ public: isPublic(r), name: `Name of ${r}` }));
        // Other domains, one of them extending this one, one a subdomain.
        await s.rooms.putMeta(`other@${domain}2`, meta());
        await s.rooms.putMeta(`other@x.${domain}`, meta());
        await s.rooms.putMeta('other@conference.example.co', meta());
        const sorted = [...all].sort(byCodePoint);
        const pub = sorted.filter(isPublic);

        const everything = await s.rooms.list(domain, { max: 100, publicOnly: false });
        assert.deepEqual(everything.items, sorted.map((r) => ({ room: r, name: `Name of ${r}` })));
        assert.equal(everything.count, all.length);
        assert.deepEqual(await s.rooms.list(domain, { max: 100, publicOnly: true }), {
          items: pub.map((r) => ({ room: r, name: `Name of ${r}` })),
          count: pub.length,
        });
        // max and after (exclusive), XEP-0059 paging: every page counts the total.
        assert.deepEqual(await s.rooms.list(domain, { max: 3, publicOnly: false }), {
          items: sorted.slice(0, 3).map((r) => ({ room: r, name: `Name of ${r}` })),
          count: all.length,
        });
        const page = await s.rooms.list(domain, { after: sorted[2], max: 3, publicOnly: false });
        assert.deepEqual(names(page), sorted.slice(3, 6));
        assert.equal(page.count, all.length);
        for (const publicOnly of [false, true]) {
          const want = publicOnly ? pub : sorted;
          const seen: string[] = [];
          let after: string | undefined;
          for (;;) {
            const p = await s.rooms.list(domain, { ...(after === undefined ? {} : { after }), max: 2, publicOnly });
            assert.equal(p.count, want.length);
            if (p.items.length === 0) break;
            seen.push(...names(p));
            after = p.items.at(-1)?.room;
          }
          assert.deepEqual(seen, want, `paging, publicOnly ${publicOnly}`);
        }
        // A cursor that is not a room: the rooms sorting after it.
        assert.deepEqual(names(await s.rooms.list(domain, { after: `b@${domain}`, max: 100, publicOnly: false })), sorted.filter((r) => byCodePoint(r, `b@${domain}`) > 0));
        assert.deepEqual(names(await s.rooms.list(domain, { after: 'zzz', max: 100, publicOnly: false })), sorted.filter((r) => byCodePoint(r, 'zzz') > 0));
        assert.deepEqual(await s.rooms.list(domain, { after: sorted.at(-1), max: 5, publicOnly: false }), { items: [], count: all.length });
        assert.deepEqual(await s.rooms.list(domain, { max: 0, publicOnly: false }), { items: [], count: all.length }, 'max 0: just the count');
        // Other domains list their own rooms only.
        assert.deepEqual(names(await s.rooms.list(`${domain}2`, { max: 100, publicOnly: false })), [`other@${domain}2`]);
        assert.deepEqual(names(await s.rooms.list(`x.${domain}`, { max: 100, publicOnly: false })), [`other@x.${domain}`]);
        assert.deepEqual(await s.rooms.list('nobody.example', { max: 100, publicOnly: false }), { items: [], count: 0 });
        // Replacing meta moves a room in or out of the public listing and renames it.
        const r0 = sorted[0] as string;
        const wasPublic = isPublic(r0);
        await s.rooms.putMeta(r0, meta({ public: !wasPublic, name: 'Renamed' }));
        const pub2 = await s.rooms.list(domain, { max: 100, publicOnly: true });
        assert.equal(pub2.count, pub.length + (wasPublic ? -1 : 1));
        assert.equal(names(pub2).includes(r0), !wasPublic);
        assert.deepEqual((await s.rooms.list(domain, { max: 1, publicOnly: false })).items, [{ room: r0, name: 'Renamed' }]);
        await s.rooms.putMeta(r0, meta({ public: true, name: '' }));
        assert.deepEqual((await s.rooms.list(domain, { max: 1, publicOnly: true })).items, [{ room: r0, name: '' }]);
      });

      it('room and user JIDs with {, } and % do not collide', async () => {
        const rooms = ['a}b@c.example', 'a%7Db@c.example', 'a{b@c.example', 'a%7Bb@c.example', '%@c.example', '%25@c.example', '{a}@c.example', 'a@c.example'];
        for (const [i, r] of rooms.entries()) {
          await s.rooms.putMeta(r, meta({ name: `n${i}` }));
          await s.rooms.setAffiliation(r, `u${i}@x`, { affiliation: 'member' });
          await s.rooms.setSubject(r, `s${i}`);
          await s.rooms.putOccupant(r, `nick${i}`, `o${i}`);
          await s.rooms.pushHistory(r, `h${i}`, 10);
        }
        for (const [i, r] of rooms.entries()) {
          assert.deepEqual(await s.rooms.load(r), {
            meta: meta({ name: `n${i}` }),
            affiliations: new Map([[`u${i}@x`, { affiliation: 'member' }]]),
            subject: `s${i}`,
            occupants: new Map([[`nick${i}`, `o${i}`]]),
            history: [`h${i}`],
          }, r);
        }
        assert.deepEqual(names(await s.rooms.list('c.example', { max: 100, publicOnly: false })), [...rooms].sort(byCodePoint));
        const owners = ['a}b@x', 'a%7Db@x', '{a}@x', '%@x', '%25@x'];
        for (const [i, o] of owners.entries()) await s.rooms.setAffiliation(rooms[i] as string, o, { affiliation: 'owner' });
        for (const [i, o] of owners.entries()) assert.deepEqual(await s.rooms.ownedBy(o), [rooms[i]], o);
        // Braces in a domain too.
        await s.rooms.putMeta('r@{d}', meta());
        await s.rooms.putMeta('r@%7Bd%7D', meta());
        assert.deepEqual(names(await s.rooms.list('{d}', { max: 10, publicOnly: false })), ['r@{d}']);
        assert.deepEqual(names(await s.rooms.list('%7Bd%7D', { max: 10, publicOnly: false })), ['r@%7Bd%7D']);
        await s.rooms.destroy('a}b@c.example');
        assert.equal(await s.rooms.load('a}b@c.example'), null);
        assert.equal((await s.rooms.load('a%7Db@c.example'))?.subject, 's1');
      });

      it('rejects bad input with a StoreError and writes nothing', async () => {
        for (const bad of ['', 'no-at-sign', '@conference.example.com', 'room@', 'a@b@c', 'room@conference.example.com/nick']) {
          await assert.rejects(s.rooms.putMeta(bad, meta()), { name: 'StoreError' }, bad);
          await assert.rejects(s.rooms.load(bad), { name: 'StoreError' }, bad);
        }
        const badMeta: unknown[] = [null, { ...meta(), public: 'yes' }, { ...meta(), name: 1 }, { ...meta(), config: {} }, { ...meta(), createdAt: NaN }];
        for (const b of badMeta) await assert.rejects(s.rooms.putMeta(room, b as RoomMeta), { name: 'StoreError' }, JSON.stringify(b));
        assert.equal(await s.rooms.load(room), null);
        await s.rooms.putMeta(room, meta());
        const badAff: unknown[] = [{ affiliation: 'none' }, { affiliation: 'king' }, { affiliation: 'member', nick: 5 }, { affiliation: 'owner', reason: false }];
        for (const b of badAff) await assert.rejects(s.rooms.setAffiliation(room, 'x@y', b as RoomAffiliation), { name: 'StoreError' }, JSON.stringify(b));
        await assert.rejects(s.rooms.setAffiliation(room, '', { affiliation: 'member' }), { name: 'StoreError' });
        await assert.rejects(s.rooms.putOccupant(room, '', 'x'), { name: 'StoreError' });
        await assert.rejects(s.rooms.pushHistory(room, 'x', -1), { name: 'StoreError' });
        await assert.rejects(s.rooms.pushHistory(room, 'x', 1.5), { name: 'StoreError' });
        await assert.rejects(s.rooms.trimHistory(room, -1), { name: 'StoreError' });
        await assert.rejects(s.rooms.list(domain, { max: -1, publicOnly: false }), { name: 'StoreError' });
        await assert.rejects(s.rooms.list('', { max: 1, publicOnly: false }), { name: 'StoreError' });
        assert.deepEqual(await s.rooms.load(room), empty(meta()));
        assert.deepEqual(await s.rooms.ownedBy('x@y'), []);
      });

      it('keeps meta, affiliations, subject, history and indexes across a reopen; not occupants', async (t) => {
        if (!subject.reopen) return t.skip('backend has no reopen');
        const m = meta({ public: true, name: 'Verona' });
        await s.rooms.putMeta(room, m);
        await s.rooms.setAffiliation(room, 'juliet@example.com', { affiliation: 'owner', nick: 'Juliet' });
        await s.rooms.setAffiliation(room, 'tybalt@example.net', { affiliation: 'outcast', reason: 'feud' });
        await s.rooms.setSubject(room, 'subject');
        await s.rooms.putOccupant(room, 'Juliet', 'occupant');
        for (let i = 0; i < 5; i++) await s.rooms.pushHistory(room, `h${i}`, 3);
        s = await subject.reopen();
        const got = await s.rooms.load(room);
        assert.ok(got);
        assert.deepEqual(got.meta, m);
        assert.deepEqual(
          got.affiliations,
          new Map<string, RoomAffiliation>([
            ['juliet@example.com', { affiliation: 'owner', nick: 'Juliet' }],
            ['tybalt@example.net', { affiliation: 'outcast', reason: 'feud' }],
          ]),
        );
        assert.equal(got.subject, 'subject');
        assert.deepEqual(got.history, ['h2', 'h3', 'h4']);
        if (s.kind === 'embedded') assert.deepEqual(got.occupants, new Map(), 'live state: gone with the process');
        else assert.deepEqual(got.occupants, new Map([['Juliet', 'occupant']]), 'kept for a takeover by another instance');
        assert.deepEqual(await s.rooms.list(domain, { max: 10, publicOnly: true }), { items: [{ room, name: 'Verona' }], count: 1 });
        assert.deepEqual(await s.rooms.ownedBy('juliet@example.com'), [room]);
        // History numbering continues after the restart.
        await s.rooms.pushHistory(room, 'h5', 3);
        assert.deepEqual((await s.rooms.load(room))?.history, ['h3', 'h4', 'h5']);
      });
    });

    describe('coordination', () => {
      it('join, members sorted, leave; groups are separate', async () => {
        assert.deepEqual(await s.coordination.members('roster'), []);
        await s.coordination.join('roster', 'node-b', 60_000);
        await s.coordination.join('roster', 'node-a', 60_000);
        await s.coordination.join('roster', 'node-b', 60_000);
        await s.coordination.join('muc', 'node-c', 60_000);
        assert.deepEqual(await s.coordination.members('roster'), ['node-a', 'node-b']);
        assert.deepEqual(await s.coordination.members('muc'), ['node-c']);
        await s.coordination.leave('roster', 'node-a');
        await s.coordination.leave('roster', 'never');
        assert.deepEqual(await s.coordination.members('roster'), ['node-b']);
      });

      it('members expire unless they join again', async () => {
        await s.coordination.join('g', 'short', 80);
        await s.coordination.join('g', 'long', 60_000);
        await s.coordination.join('g', 'renewed', 80);
        assert.deepEqual(await s.coordination.members('g'), ['long', 'renewed', 'short']);
        await sleep(50);
        await s.coordination.join('g', 'renewed', 80);
        await sleep(60);
        assert.deepEqual(await s.coordination.members('g'), ['long', 'renewed']);
        await sleep(100);
        assert.deepEqual(await s.coordination.members('g'), ['long']);
        await s.coordination.join('g', 'short', 60_000);
        assert.deepEqual(await s.coordination.members('g'), ['long', 'short'], 'an expired member can come back');
      });

      it('leases: acquire, renew, refuse, release, expiry, holders', async () => {
        assert.deepEqual(await s.coordination.holders(['shard:0', 'shard:1']), [null, null]);
        assert.equal(await s.coordination.acquire('shard:0', 'a', 150), true);
        assert.equal(await s.coordination.acquire('shard:0', 'a', 150), true, 'renew');
        assert.equal(await s.coordination.acquire('shard:0', 'b', 150), false, 'refuse another');
        assert.equal(await s.coordination.acquire('shard:1', 'b', 60_000), true);
        assert.deepEqual(await s.coordination.holders(['shard:0', 'shard:1', 'shard:2', 'shard:0']), ['a', 'b', null, 'a']);
        assert.deepEqual(await s.coordination.holders([]), []);
        assert.equal(await s.coordination.release('shard:1', 'a'), false, 'not the holder');
        assert.equal(await s.coordination.release('shard:1', 'b'), true);
        assert.equal(await s.coordination.release('shard:1', 'b'), false, 'already released');
        assert.equal(await s.coordination.acquire('shard:1', 'a', 60_000), true, 'free after release');
        await sleep(100);
        assert.equal(await s.coordination.acquire('shard:0', 'a', 150), true, 'renewal extends');
        await sleep(100);
        assert.equal(await s.coordination.acquire('shard:0', 'b', 150), false, 'still held after renewal');
        await sleep(120);
        assert.deepEqual(await s.coordination.holders(['shard:0']), [null], 'expired');
        assert.equal(await s.coordination.release('shard:0', 'a'), false, 'an expired lease is not released');
        assert.equal(await s.coordination.acquire('shard:0', 'b', 150), true, 'taken over after expiry');
        assert.deepEqual(await s.coordination.holders(['shard:0', 'shard:1']), ['b', 'a']);
      });

      it('concurrent acquires: exactly one holder', async () => {
        const got = await Promise.all(Array.from({ length: 20 }, (_, i) => s.coordination.acquire('contested', `n${i}`, 60_000)));
        assert.equal(got.filter(Boolean).length, 1);
        assert.deepEqual(await s.coordination.holders(['contested']), [`n${got.indexOf(true)}`]);
      });

      it('epoch: one generation while nothing is lost (writes and leases do not change it)', async () => {
        const watch = new EpochWatch(s.coordination);
        const first = await watch.check();
        assert.equal(first.reset, false, 'the first check only learns the epoch');
        assert.equal(first.epoch.afterLoss, false);
        assert.equal(first.epoch.recovering, false);
        assert.ok(first.epoch.id.length > 0);
        await s.sessions.bind('juliet@example.com', entry('balcony', 'n1'));
        await s.coordination.acquire('shard:0', 'a', 60_000);
        await sleep(20);
        const again = await watch.check();
        assert.equal(again.reset, false);
        assert.equal(again.epoch.id, first.epoch.id);
        assert.ok(again.epoch.ageMs >= first.epoch.ageMs, `age ${again.epoch.ageMs} < ${first.epoch.ageMs}`);
      });

      it('epoch: losing the live state starts a new one, marked afterLoss and recovering; a watch sees the reset once', async (t) => {
        if (!subject.loseEverything) return t.skip('this backend loses its live state only with the process (a new process, a new epoch)');
        const watch = new EpochWatch(s.coordination);
        const before = (await watch.check()).epoch;
        await s.sessions.bind('juliet@example.com', entry('balcony', 'n1'));
        await subject.loseEverything();
        assert.deepEqual(await s.sessions.list('juliet@example.com'), [], 'the registry is gone');
        const after = await watch.check();
        assert.equal(after.reset, true, 'the watch notices');
        assert.notEqual(after.epoch.id, before.id);
        assert.equal(after.epoch.afterLoss, true);
        assert.equal(after.epoch.recovering, true, 'inside the recovery window right after the loss');
        const later = await watch.check();
        assert.equal(later.reset, false, 'once');
        assert.equal(later.epoch.id, after.epoch.id);
        assert.equal(later.epoch.afterLoss, true, 'the mark stays with the generation');
      });

      it('shares the lease namespace with sessions.lease()', async () => {
        assert.equal(await s.sessions.lease('sm-reaper', 'x', 60_000), true);
        assert.deepEqual(await s.coordination.holders(['sm-reaper']), ['x']);
        assert.equal(await s.coordination.acquire('sm-reaper', 'y', 60_000), false);
        assert.equal(await s.coordination.release('sm-reaper', 'x'), true);
        assert.equal(await s.sessions.lease('sm-reaper', 'y', 60_000), true);
      });
    });
  });
}
