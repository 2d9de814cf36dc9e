/**
 * XEP-0012 with a controlled clock: the XEP's examples (903 s, "Heading
 * Home"; 123456 s of uptime), who may ask, what is recorded at logout, and
 * the full-JID guard on delivery.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid, type JID } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import { openEmbeddedStores, type Account, type RosterItem, type SessionEntry, type Stores, type SubscriptionState } from '@hyphae/store';
import { ModuleRegistry, parseDelivered, stanzaKind, type ClientSession, type ModuleInstance, type Routing, type SessionKey } from '@hyphae/module-api';
import { last, lastInstance, NS_LAST } from './index.js';

const T0 = Date.UTC(2024, 0, 1);
let clock = T0;
let dir: string;
let stores: Stores;
const accounts = new Set(['juliet', 'romeo', 'nurse', 'tybalt']);
const roster = new Map<string, SubscriptionState>(); // "user contact" → subscription
let m: ModuleInstance;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hyphae-last-'));
  stores = await openEmbeddedStores({ dir });
  m = lastInstance({
    storage: stores.storage,
    now: () => clock,
    accounts: { get: async (_d, u) => (accounts.has(u) ? ({ username: u } as Account) : null) },
    rosters: {
      getItem: async (user, contact) => {
        const subscription = roster.get(`${user} ${contact}`);
        return subscription ? ({ jid: contact, groups: [], subscription, ask: false, approved: false } satisfies RosterItem) : null;
      },
    },
  });
  roster.set('juliet@capulet.lit romeo@montague.lit', 'both');
  roster.set('juliet@capulet.lit nurse@capulet.lit', 'from');
  roster.set('juliet@capulet.lit tybalt@capulet.lit', 'to');
});
after(async () => {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A router with a session registry and a record of bounces; anything else fails the test. */
const registry = new Map<string, SessionEntry[]>();
const bounces: string[] = [];
const routing = {
  sessions: async (bare: string) => registry.get(bare) ?? [],
  bounce: async (stanza: Element, from: JID, err: StanzaError) => { bounces.push(`${err.condition} to ${from.toString()} for ${String(stanza.attrs.id)}`); },
} as Partial<Routing> as Routing;
const entry = (resource: string, sessionId: string): SessionEntry => ({ resource, sessionId, node: 'n', priority: 0, available: true, boundAt: T0 });

function fakeSession(full: string, id: string): ClientSession {
  const state = new Map<SessionKey<unknown>, unknown>();
  return {
    id, jid: parseJid(full), remoteAddress: '127.0.0.1', lastReceivedAt: 0,
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: () => undefined, setFlag: async () => undefined, close: () => undefined,
  };
}

async function ask(from: string, to: string, type: 'get' | 'set' = 'get'): Promise<string> {
  const target = to.includes('@') ? 'account' : 'host';
  const route = ModuleRegistry.of({ last: m }).findIq(target, type, NS_LAST, 'query');
  assert.ok(route, `no ${target} ${type} route`);
  const iq = parse(`<iq type='${type}' id='last1' to='${to}'><query xmlns='${NS_LAST}'/></iq>`) as Element;
  try {
    const out = await route.handle({ iq, payload: iq.getChildElements()[0] as Element, from: parseJid(from), to: parseJid(to), routing });
    return String(out);
  } catch (err) {
    if (err instanceof StanzaError) return `<${err.condition}/> ${err.type}`;
    throw err;
  }
}

const outHook = (s: ClientSession, xml: string) => m.hooks?.['stanza/out']?.({ stanza: parse(xml) as Element, from: s.jid, session: s, routing });
const unbound = (s: ClientSession) => m.hooks?.['session/unbound']?.({ session: s, routing, reason: 'closed' });

test('§5: the server answers its uptime, without text; sets are <not-allowed/>', async () => {
  clock = T0 + 123_456_789;
  assert.equal(await ask('romeo@montague.lit/orchard', 'capulet.lit'), `<query xmlns="${NS_LAST}" seconds="123456"/>`);
  assert.equal(await ask('romeo@montague.lit/orchard', 'capulet.lit', 'set'), '<not-allowed/> cancel');
  assert.equal(await ask('juliet@capulet.lit/balcony', 'juliet@capulet.lit', 'set'), '<not-allowed/> cancel');
});

test('§3: who may ask — the user and contacts subscribed to the user (from/both); never logged in: item-not-found', async () => {
  assert.equal(await ask('tybalt@capulet.lit/x', 'juliet@capulet.lit'), '<forbidden/> auth', "subscription 'to': Juliet does not share her presence");
  assert.equal(await ask('paris@verona.lit/x', 'juliet@capulet.lit'), '<forbidden/> auth', 'no roster item');
  for (const who of ['juliet@capulet.lit/balcony', 'romeo@montague.lit/orchard', 'nurse@capulet.lit/kitchen']) {
    assert.equal(await ask(who, 'juliet@capulet.lit'), '<item-not-found/> cancel', who);
  }
});

test('§3: the last logout with its status (the XEP example: 903 s, "Heading Home"); 0 while connected', async () => {
  const balcony = fakeSession('juliet@capulet.lit/balcony', 's1');
  registry.set('juliet@capulet.lit', [entry('balcony', 's1')]);
  assert.equal(await ask('romeo@montague.lit/orchard', 'juliet@capulet.lit'), `<query xmlns="${NS_LAST}" seconds="0"/>`);
  await outHook(balcony, "<presence type='unavailable'><status>Heading Home</status></presence>");
  await outHook(balcony, "<presence type='unavailable' to='romeo@montague.lit'><status>directed: not this one</status></presence>");
  clock = T0 + 1_000_000;
  // The router's cache may still list the session that is ending: it does not count.
  await unbound(balcony);
  registry.delete('juliet@capulet.lit');
  clock += 903_400;
  assert.equal(await ask('romeo@montague.lit/orchard', 'juliet@capulet.lit'), `<query xmlns="${NS_LAST}" seconds="903">Heading Home</query>`);
  assert.equal(await ask('nurse@capulet.lit/kitchen', 'juliet@capulet.lit'), `<query xmlns="${NS_LAST}" seconds="903">Heading Home</query>`);
  assert.equal(await ask('juliet@capulet.lit/phone', 'juliet@capulet.lit'), `<query xmlns="${NS_LAST}" seconds="903">Heading Home</query>`);
});

test('only the last session to end is recorded; available again clears the status', async () => {
  const a = fakeSession('romeo@montague.lit/a', 'ra');
  const b = fakeSession('romeo@montague.lit/b', 'rb');
  registry.set('romeo@montague.lit', [entry('a', 'ra'), entry('b', 'rb')]);
  await outHook(a, "<presence type='unavailable'><status>a leaves</status></presence>");
  clock = T0 + 5_000_000;
  await unbound(a);
  registry.set('romeo@montague.lit', [entry('b', 'rb')]);
  assert.equal(await stores.storage.keyval('last').get('romeo@montague.lit'), null, 'b is still connected');
  await outHook(b, "<presence type='unavailable'><status>brb</status></presence>");
  await outHook(b, '<presence><show>away</show></presence>');
  clock = T0 + 6_000_000;
  await unbound(b);
  registry.delete('romeo@montague.lit');
  assert.deepEqual(await stores.storage.keyval('last').get('romeo@montague.lit'), { time: T0 + 6_000_000, status: '' });
});

test('a deleted account records nothing at logout, and account/deleted forgets the record', async () => {
  const s = fakeSession('ghost@capulet.lit/r', 'g1');
  await unbound(s);
  assert.equal(await stores.storage.keyval('last').get('ghost@capulet.lit'), null);
  const n = fakeSession('nurse@capulet.lit/r', 'n1');
  await unbound(n);
  assert.ok(await stores.storage.keyval('last').get('nurse@capulet.lit'));
  await m.hooks?.['account/deleted']?.({ user: parseJid('nurse@capulet.lit') });
  assert.equal(await stores.storage.keyval('last').get('nurse@capulet.lit'), null);
});

/** Runs the delivery hook as the c2s node does; `parsed` tells whether the stanza was parsed. */
async function deliver(to: ClientSession, xml: string): Promise<{ result: unknown; parsed: boolean }> {
  const data = new TextEncoder().encode(xml);
  let parsed = false;
  const result = await m.hooks?.['session/deliver']?.({
    session: to, kind: stanzaKind(data), data, routing,
    stanza: () => ((parsed = true), parseDelivered(data)),
    replace: () => assert.fail('replaced'),
  });
  return { result, parsed };
}

test('§4: a query to a full JID is delivered only from someone who may see the presence, else <forbidden/>', async () => {
  const juliet = fakeSession('juliet@capulet.lit/balcony', 's9');
  const q = (from: string, id: string, type = 'get') => `<iq type='${type}' id='${id}' from='${from}' to='juliet@capulet.lit/balcony'><query xmlns='${NS_LAST}'/></iq>`;
  bounces.length = 0;
  assert.deepEqual(await deliver(juliet, q('paris@verona.lit/x', 'p1')), { result: 'stop', parsed: true });
  assert.deepEqual(await deliver(juliet, q('tybalt@capulet.lit/x', 't1')), { result: 'stop', parsed: true });
  assert.deepEqual(bounces, ['forbidden to paris@verona.lit/x for p1', 'forbidden to tybalt@capulet.lit/x for t1']);
  for (const from of ['romeo@montague.lit/orchard', 'nurse@capulet.lit/k', 'juliet@capulet.lit/phone']) {
    assert.equal((await deliver(juliet, q(from, 'ok'))).result, undefined, from);
  }
  // Answers, and stanzas that merely mention the namespace, pass; other stanzas are not even parsed.
  assert.equal((await deliver(juliet, q('paris@verona.lit/x', 'r1', 'result'))).result, undefined);
  assert.equal((await deliver(juliet, `<iq type='get' id='v' from='paris@verona.lit/x'><query xmlns='jabber:iq:version'>${NS_LAST}</query></iq>`)).result, undefined);
  assert.deepEqual(await deliver(juliet, `<message from='paris@verona.lit/x'><body>${NS_LAST}</body></message>`), { result: undefined, parsed: false });
  assert.deepEqual(await deliver(juliet, `<iq type='get' id='v' from='paris@verona.lit/x'><ping xmlns='urn:xmpp:ping'/></iq>`), { result: undefined, parsed: false });
  assert.equal(bounces.length, 2);
});

test('definition: features on the server and accounts', () => {
  assert.deepEqual(last.specs, [{ spec: 'XEP-0012', version: '2.0' }]);
  const reg = ModuleRegistry.of({ last: m });
  assert.deepEqual([reg.features('server'), reg.features('account')], [[NS_LAST], [NS_LAST]]);
});
