/**
 * XEP-0191 §3.3 enforcement through the hooks, as the c2s node, the router
 * and the user actor run them: the session's copy of the list and its
 * pushes, inbound and outbound stanzas, message/deliver with the registry
 * flag, presence broadcasts, offline storage, account deletion.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import type { MapStore, ModuleStorage, SessionEntry, StoredValue } from '@hyphae/store';
import { parseDelivered } from '@hyphae/module-api';
import { BLOCKING_FLAG, NS_BLOCKING, blockingInstance } from './index.js';
import { JULIET, World, fakeSession, type FakeSession } from './test-world.js';

let w: World;
let balcony: FakeSession;
before(async () => {
  w = await World.open(100);
});
after(() => w.close());
beforeEach(async () => {
  w.router.clear();
  w.counts.length = 0;
  await w.stores.storage.map('blocklist').clear(JULIET);
  await w.stores.storage.map('blocklist').setMany(JULIET, [['romeo@montague.lit', true], ['rooms.lit/x', true], ['balcony@muc.lit/tybalt', true]]);
  balcony = fakeSession(`${JULIET}/balcony`);
  await w.bound(balcony);
});

const pushXml = (body: string, from = JULIET) => `<iq type='set' id='p1' from='${from}' to='${JULIET}/balcony'>${body}</iq>`;

test('session/bound loads the list and sets the registry flag; an empty list sets none and costs no parse', async () => {
  assert.deepEqual([...balcony.flags], [BLOCKING_FLAG]);
  const other = fakeSession('nurse@capulet.lit/kitchen');
  await w.bound(other);
  assert.deepEqual([...other.flags], []);
  const d = await w.deliver(other, "<message from='romeo@montague.lit/orchard' type='chat'><body>hi</body></message>");
  assert.deepEqual(d, { result: undefined, parsed: false });
});

test('§3.3 inbound: presence dropped silently, chat answered <service-unavailable/>, iq get/set answered, others dropped', async () => {
  const cases: Array<[xml: string, bounce: string | null]> = [
    ["<presence from='romeo@montague.lit/orchard'/>", null],
    ["<presence from='romeo@montague.lit' type='subscribe'/>", null],
    ["<presence from='romeo@montague.lit' type='probe'/>", null],
    ["<message from='romeo@montague.lit/orchard' type='chat' id='m1'><body>hi</body></message>", 'service-unavailable to romeo@montague.lit/orchard for message m1'],
    ["<message from='romeo@montague.lit/orchard' id='m2'><body>hi</body></message>", 'service-unavailable to romeo@montague.lit/orchard for message m2'],
    ["<message from='romeo@montague.lit/orchard' type='headline' id='m3'><body>hi</body></message>", null],
    ["<message from='romeo@montague.lit/orchard' type='error' id='m4'><error type='cancel'/></message>", null],
    ["<iq from='romeo@montague.lit/orchard' type='get' id='i1'><query xmlns='jabber:iq:version'/></iq>", 'service-unavailable to romeo@montague.lit/orchard for iq i1'],
    ["<iq from='romeo@montague.lit/orchard' type='set' id='i2'><query xmlns='x'/></iq>", 'service-unavailable to romeo@montague.lit/orchard for iq i2'],
    ["<iq from='romeo@montague.lit/orchard' type='result' id='i3'/>", null],
    // XEP-0045 private message from a blocked occupant; a groupchat from it is dropped without an error.
    ["<message from='balcony@muc.lit/tybalt' type='chat' id='pm1'><body>boo</body></message>", 'service-unavailable to balcony@muc.lit/tybalt for message pm1'],
    ["<message from='balcony@muc.lit/tybalt' type='groupchat' id='g1'><body>boo</body></message>", null],
    ["<presence from='rooms.lit/x'/>", null],
  ];
  for (const [xml, bounce] of cases) {
    w.router.clear();
    assert.equal((await w.deliver(balcony, xml)).result, 'stop', xml);
    assert.deepEqual(w.router.bounces, bounce ? [bounce] : [], xml);
  }
  assert.equal(w.counts.length, cases.length);
});

test('§3.3 inbound: others, another occupant, the own resources and the server pass', async () => {
  for (const xml of [
    "<message from='benvolio@montague.lit/x' type='chat'><body>hi</body></message>",
    "<message from='balcony@muc.lit/nurse' type='groupchat'><body>hi</body></message>",
    `<message from='${JULIET}/chamber' type='chat'><body>note to self</body></message>`,
    "<iq type='result' id='r1'/>",
    "<iq from='capulet.lit' type='result' id='r2'/>",
  ]) {
    assert.equal((await w.deliver(balcony, xml)).result, undefined, xml);
  }
  assert.deepEqual(w.router.bounces, []);
});

test('§3.3 pushes keep the copy current; a session that has not retrieved the list does not see them', async () => {
  const block = pushXml(`<block xmlns='${NS_BLOCKING}'><item jid='iago@shakespeare.lit'/></block>`);
  assert.equal((await w.deliver(balcony, block)).result, 'stop', 'not interested');
  assert.equal((await w.deliver(balcony, "<message from='iago@shakespeare.lit/x'><body>x</body></message>")).result, 'stop');
  // Asking another account does not make the session interested.
  assert.equal(await w.out(balcony, `<iq type='get' id='bl0' to='nurse@capulet.lit'><blocklist xmlns='${NS_BLOCKING}'/></iq>`), undefined);
  assert.equal((await w.deliver(balcony, pushXml(`<block xmlns='${NS_BLOCKING}'><item jid='iago@shakespeare.lit'/></block>`))).result, 'stop');
  // §3.3: a resource that requested the blocklist gets the pushes.
  assert.equal(await w.out(balcony, `<iq type='get' id='bl' to='${JULIET}'><blocklist xmlns='${NS_BLOCKING}'/></iq>`), undefined);
  const unblock = pushXml(`<unblock xmlns='${NS_BLOCKING}'><item jid='iago@shakespeare.lit'/></unblock>`);
  assert.equal((await w.deliver(balcony, unblock)).result, undefined, 'interested');
  assert.equal((await w.deliver(balcony, "<message from='iago@shakespeare.lit/x'><body>x</body></message>")).result, undefined);
  assert.equal((await w.deliver(balcony, "<message from='romeo@montague.lit/x'><body>x</body></message>")).result, 'stop');
  await w.deliver(balcony, pushXml(`<unblock xmlns='${NS_BLOCKING}'/>`));
  assert.equal((await w.deliver(balcony, "<message from='romeo@montague.lit/x'><body>x</body></message>")).result, undefined, 'unblock all');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([...balcony.flags], [], 'the flag follows the list');
});

test('a "push" from anyone else is an ordinary stanza: the copy is unchanged', async () => {
  const forged = pushXml(`<unblock xmlns='${NS_BLOCKING}'/>`, 'benvolio@montague.lit/x');
  assert.equal((await w.deliver(balcony, forged)).result, undefined);
  const forged2 = pushXml(`<unblock xmlns='${NS_BLOCKING}'/>`, `${JULIET}/chamber`);
  assert.equal((await w.deliver(balcony, forged2)).result, undefined);
  assert.equal((await w.deliver(balcony, "<message from='romeo@montague.lit/x'><body>x</body></message>")).result, 'stop');
});

test('§3.3 outbound: <not-acceptable/> with <blocked/> written back to the sender; errors and iq results dropped', async () => {
  assert.equal(await w.out(balcony, "<message to='romeo@montague.lit' id='o1'><body>Can you hear me now?</body></message>"), 'stop');
  assert.deepEqual(balcony.written, [
    `<message to="${JULIET}/balcony" from="romeo@montague.lit" id="o1" type="error"><body>Can you hear me now?</body>` +
      '<error type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><blocked xmlns="urn:xmpp:blocking:errors"/></error></message>',
  ]);
  balcony.written.length = 0;
  assert.equal(await w.out(balcony, "<presence to='romeo@montague.lit/orchard'/>"), 'stop');
  assert.equal(await w.out(balcony, "<iq to='balcony@muc.lit/tybalt' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>"), 'stop');
  assert.equal(balcony.written.length, 2);
  assert.equal(await w.out(balcony, "<iq to='romeo@montague.lit/orchard' type='result' id='r'/>"), 'stop');
  assert.equal(await w.out(balcony, "<message to='romeo@montague.lit' type='error'><error type='cancel'/></message>"), 'stop');
  assert.equal(balcony.written.length, 2, 'no error to an error or a result');
  for (const xml of ["<message to='benvolio@montague.lit'><body>x</body></message>", '<presence/>', `<iq type='get' id='b'><blocklist xmlns='${NS_BLOCKING}'/></iq>`]) {
    assert.equal(await w.out(balcony, xml), undefined, xml);
  }
  assert.deepEqual(w.counts, ['out', 'out', 'out', 'out', 'out']);
});

const entry = (flags?: string[]): SessionEntry => ({ resource: 'balcony', sessionId: 's', node: 'n', priority: 0, available: true, boundAt: 0, ...(flags ? { flags } : {}) });
async function routed(xml: string, flags?: string[]): Promise<unknown> {
  const stanza = parse(xml) as Element;
  const sessions = [entry(flags)];
  return w.registry.runSync('message/deliver', {
    stanza, from: parseJid(String(stanza.attrs.from)), to: parseJid(JULIET), targets: sessions, sessions, routing: w.routing,
  });
}

test('message/deliver: only recipients with the flag cost a lookup; blocked → one <service-unavailable/>, stopped before delivery', async () => {
  const chat = "<message from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='chat' id='c1'><body>hi</body></message>";
  assert.equal(await routed(chat), undefined, 'no flag: not checked here (session/deliver still guards)');
  assert.equal(await routed(chat, [BLOCKING_FLAG]), 'stop');
  assert.deepEqual(w.router.bounces, ['service-unavailable to romeo@montague.lit/orchard for message c1']);
  assert.equal(await routed("<message from='balcony@muc.lit/tybalt' type='groupchat'><body>x</body></message>", [BLOCKING_FLAG]), 'stop');
  assert.equal(w.router.bounces.length, 1, 'no error for groupchat');
  assert.equal(await routed("<message from='benvolio@montague.lit/x' type='chat'><body>x</body></message>", [BLOCKING_FLAG]), undefined);
  assert.equal(await routed(`<message from='${JULIET}/chamber' type='chat'><body>x</body></message>`, [BLOCKING_FLAG]), undefined);
});

test('user actor: broadcasts and probe answers withhold presence; offline messages refused; account deletion forgets', async () => {
  const event = { presence: parse('<presence/>') as Element, user: parseJid(JULIET), recipients: ['benvolio@montague.lit', 'romeo@montague.lit', 'romeo@montague.lit/orchard', 'nurse@capulet.lit'] };
  await w.registry.run('presence/broadcast', event);
  assert.deepEqual(event.recipients, ['benvolio@montague.lit', 'nurse@capulet.lit']);
  const offline = (from: string) => ({ stanza: parse(`<message from='${from}' id='off' type='chat'><body>later</body></message>`) as Element, user: parseJid(JULIET), from: parseJid(from), routing: w.routing });
  assert.equal(await w.registry.run('offline/store', offline('romeo@montague.lit/orchard')), 'stop');
  assert.deepEqual(w.router.bounces, ['service-unavailable to romeo@montague.lit/orchard for message off']);
  assert.equal(await w.registry.run('offline/store', offline('benvolio@montague.lit/x')), undefined);
  await w.registry.lifecycle('account/deleted', { user: parseJid(JULIET) }, (err) => assert.fail(String(err)));
  assert.deepEqual(await w.list(), []);
});

test('a list that could not be loaded at bind time is loaded on the next stanza; still failing, the hook fails (not a silent pass)', async () => {
  const real = w.stores.storage.map<true>('blocklist');
  let failures = 2;
  const flaky = { ...real, all: async (owner: string) => (failures-- > 0 ? Promise.reject(new Error('store down')) : real.all(owner)) };
  const m = blockingInstance({
    storage: { ...w.stores.storage, map: <T,>() => flaky as unknown as MapStore<T & StoredValue> } as ModuleStorage,
    rosters: w.stores.rosters, sessions: w.stores.sessions, options: { maxItems: 10 },
  });
  const s = fakeSession(`${JULIET}/flaky`);
  await assert.rejects(async () => m.hooks?.['session/bound']?.({ session: s, routing: w.routing }), /store down/);
  const msg = "<message from='romeo@montague.lit/x' type='chat'><body>x</body></message>";
  const data = new TextEncoder().encode(msg);
  const event = { session: s, kind: 'message' as const, data, routing: w.routing, stanza: () => parseDelivered(data), replace: () => undefined };
  await assert.rejects(async () => m.hooks?.['session/deliver']?.(event), /store down/);
  assert.equal(await m.hooks?.['session/deliver']?.(event), 'stop', 'loaded on the next try');
});
