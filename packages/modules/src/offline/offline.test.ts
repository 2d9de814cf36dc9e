/**
 * XEP-0160 in the user's actor: what is stored (with its XEP-0203 delay),
 * what is answered instead (no account, full queue, storage off, a resource
 * came back), the offline/store hook's veto, delivery oldest first at
 * initial presence, and the queue dropped with the account.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { openEmbeddedStores, type Account, type SessionEntry, type Stores } from '@hyphae/store';
import { ModuleRegistry, type ModuleInstance, type Routing } from '@hyphae/module-api';
import { offlineInstance } from './index.js';

const JULIET = parseJid('juliet@capulet.lit');
const STAMP = new Date(Date.UTC(2024, 0, 1, 12, 0, 0));
let dir: string;
let stores: Stores;
let cap = 3;
let sessions: SessionEntry[] = [];
let hooks: Record<string, ModuleInstance> = {};
let m: ModuleInstance;
const sent: Element[] = [];
const delivered: Array<{ stanza: Element; resource: string }> = [];

const routing = {
  send: async (s: Element) => void sent.push(s),
  deliverToSession: async (stanza: Element, _bare: string, resource: string) => (delivered.push({ stanza, resource }), true),
} as unknown as Routing;

const message = (body: string, from = 'romeo@montague.lit/orchard'): Uint8Array =>
  new TextEncoder().encode(`<message from='${from}' to='juliet@capulet.lit' type='chat'><body>${body}</body></message>`);
const store = (data: Uint8Array, user = JULIET) => m.userOps!.offline!({ user, data, headers: {}, routing });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hyphae-offline-'));
  stores = await openEmbeddedStores({ dir });
  m = offlineInstance({
    offline: stores.offline,
    sessions: { list: async () => sessions },
    accounts: { get: async (_d, u) => (u === 'juliet' ? ({ username: u } as Account) : null) },
    cap: () => cap,
    modules: () => ModuleRegistry.of(hooks),
    warn: () => undefined,
    now: () => STAMP,
  });
});
after(async () => {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  cap = 3;
  sessions = [];
  hooks = {};
  sent.length = 0;
  delivered.length = 0;
  await stores.offline.deleteAll('juliet@capulet.lit');
});

test('a message is stored with a XEP-0203 delay and delivered oldest first at initial presence', async () => {
  assert.equal(await store(message('one')), 'stored');
  assert.equal(await store(message('two')), 'stored');
  await m.hooks!['presence/initial']!({ session: JULIET.withResource('balcony'), routing });
  assert.deepEqual(delivered.map((d) => [d.stanza.getChildText('body'), d.resource]), [['one', 'balcony'], ['two', 'balcony']]);
  const delay = delivered[0]!.stanza.getChild('delay', 'urn:xmpp:delay');
  assert.equal(delay?.attrs.stamp, STAMP.toISOString());
  assert.equal(delay?.attrs.from, 'capulet.lit');
  // Taken, not copied: a second resource gets nothing.
  delivered.length = 0;
  await m.hooks!['presence/initial']!({ session: JULIET.withResource('chamber'), routing });
  assert.equal(delivered.length, 0);
});

test('the queue is bounded: past the cap the router is told "full" (then it answers <service-unavailable/>)', async () => {
  cap = 2;
  assert.equal(await store(message('1')), 'stored');
  assert.equal(await store(message('2')), 'stored');
  assert.equal(await store(message('3')), 'full');
  assert.equal(await stores.offline.count('juliet@capulet.lit'), 2);
});

test('storage turned off (cap 0) answers "full"; an unknown account answers "gone"', async () => {
  cap = 0;
  assert.equal(await store(message('x')), 'full');
  cap = 3;
  assert.equal(await store(message('x'), parseJid('nobody@capulet.lit')), 'gone');
  assert.equal(await stores.offline.count('nobody@capulet.lit'), 0);
});

test('a resource that became available meanwhile: the router is told to route it again (the actor does not route), nothing stored', async () => {
  sessions = [{ resource: 'balcony', available: true, priority: 0 } as SessionEntry];
  assert.equal(await store(message('now')), 'available');
  assert.equal(sent.length, 0);
  assert.equal(await stores.offline.count('juliet@capulet.lit'), 0);
  // A negative priority never receives bare-JID messages (RFC 6121 §8.5.2.1.1): stored instead.
  sessions = [{ resource: 'balcony', available: true, priority: -1 } as SessionEntry];
  assert.equal(await store(message('later')), 'stored');
});

test('an offline/store hook that stops the message keeps it out of storage', async () => {
  const seen: string[] = [];
  hooks = {
    veto: {
      hooks: {
        'offline/store': (e) => {
          seen.push(`${e.user.toString()} ${e.from?.toString() ?? ''}`);
          return e.stanza.getChildText('body') === 'blocked' ? 'stop' : undefined;
        },
      },
    },
  };
  assert.equal(await store(message('blocked')), 'stored');
  assert.equal(await store(message('fine')), 'stored');
  assert.deepEqual(seen, ['juliet@capulet.lit romeo@montague.lit/orchard', 'juliet@capulet.lit romeo@montague.lit/orchard']);
  assert.deepEqual((await stores.offline.take('juliet@capulet.lit')).map((x) => parse(x).getChildText('body')), ['fine']);
});

test('an unreadable stored message is skipped, the others still delivered', async () => {
  await stores.offline.push('juliet@capulet.lit', '<message><body>broken', 5);
  assert.equal(await store(message('ok')), 'stored');
  await m.hooks!['presence/initial']!({ session: JULIET.withResource('balcony'), routing });
  assert.deepEqual(delivered.map((d) => d.stanza.getChildText('body')), ['ok']);
});

test('account/deleted drops the queue; the server advertises msgoffline', async () => {
  assert.equal(await store(message('bye')), 'stored');
  await m.hooks!['account/deleted']!({ user: JULIET });
  assert.equal(await stores.offline.count('juliet@capulet.lit'), 0);
  assert.deepEqual(m.features?.server, ['msgoffline']);
});
