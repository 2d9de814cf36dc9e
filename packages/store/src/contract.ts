/**
 * The contract every Stores implementation must meet (DESIGN: "a contract
 * test suite runs against both"). Internal: embedded.test.ts and
 * redis.test.ts run it; a new backend adds one more such file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Account, RosterItem, SessionEntry, Stores } from './types.js';

export interface ContractSubject {
  stores: Stores;
  /** Closes `stores` and opens the same data again (restart / reconnect). */
  reopen?: () => Promise<Stores>;
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
