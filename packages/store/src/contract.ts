/**
 * The contract every Stores implementation must meet (DESIGN: "a contract
 * test suite runs against both"). Internal: embedded.test.ts and
 * redis.test.ts run it; a new backend adds one more such file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Account, SessionEntry, Stores } from './types.js';

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
  });
}
