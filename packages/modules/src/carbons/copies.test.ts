/** XEP-0280 §6–§9: which messages are copied, <received/> and <sent/> copies as the examples show them, their order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import { notCopied, NS_CARBONS, type Direction } from './index.js';
import { World, ROMEO, JULIET, el, entry, session } from './test-world.js';

test('§6 eligibility', () => {
  const cases: Array<[string, Direction, boolean, string | null]> = [
    ["<message type='chat'><body>hi</body></message>", 'received', true, null],
    ["<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>", 'received', true, null],
    ['<message><body>hi</body></message>', 'received', true, null],
    ["<message type='normal'><body>hi</body></message>", 'sent', true, null],
    ["<message><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", 'received', true, null],
    ["<message><received xmlns='urn:xmpp:receipts' id='m1'/></message>", 'received', true, null],
    ["<message><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>", 'sent', true, null],
    ["<message><x xmlns='jabber:x:conference' jid='room@muc.example'/></message>", 'received', true, null],
    ["<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b.c'/></x></message>", 'received', false, null],
    ["<message><x xmlns='urn:xmpp:other'/></message>", 'received', true, 'not-im'],
    ["<message type='groupchat'><body>hi</body></message>", 'received', true, 'type'],
    ["<message type='headline'><body>hi</body></message>", 'received', true, 'type'],
    ["<message type='error'><body>hi</body></message>", 'received', false, 'type'],
    [`<message type='chat'><body>hi</body><private xmlns='${NS_CARBONS}'/></message>`, 'sent', true, 'private'],
    ["<message type='chat'><body>hi</body><no-copy xmlns='urn:xmpp:hints'/></message>", 'received', true, 'no-copy'],
    [`<message type='chat'><sent xmlns='${NS_CARBONS}'/></message>`, 'received', false, 'carbon'],
    [`<message><received xmlns='${NS_CARBONS}'/></message>`, 'received', false, 'carbon'],
    // A private message from an occupant is not copied as it comes in; the user's own to an occupant is (§6).
    ["<message type='chat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", 'received', true, 'muc-pm'],
    ["<message type='chat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", 'sent', true, null],
    ["<message type='chat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", 'received', false, null],
  ];
  for (const [xml, direction, full, why] of cases) assert.equal(notCopied(el(xml), direction, full), why, `${direction} ${xml}`);
});

test('§7: a recipient with one session costs the hook a length check; so does one whose every session gets the message', () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true })]);
  const untouchable = new Proxy({}, { get: () => assert.fail('the hook looked at the stanza') }) as Element;
  assert.equal(w.deliver(untouchable, `${JULIET}/balcony`, ROMEO, ['garden']), undefined);
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]);
  assert.equal(w.deliver(untouchable, `${JULIET}/balcony`, ROMEO, ['garden', 'home']), undefined);
});

test('§7: flagged resources that did not get the message get a <received/> copy — once, whatever the priorities', async () => {
  const w = new World();
  w.registry.set(ROMEO, [
    entry('garden', { priority: 5, carbons: true }), entry('home', { priority: 5 }),
    entry('phone', { priority: 1, carbons: true }), entry('tablet', { available: false, carbons: true }), entry('old', { priority: 1 }),
  ]);
  const m = el(`<message from='${JULIET}/balcony' to='${ROMEO}' type='chat'><body>What man art thou</body><thread>0e31</thread></message>`);
  assert.equal(w.deliver(m, `${JULIET}/balcony`, ROMEO, ['garden', 'home']), undefined);
  m.getChild('body')?.children.splice(0, 1, 'changed later'); // the copy was taken when the hook ran
  await w.module.settled();
  const inner = `<forwarded xmlns="urn:xmpp:forward:0"><message from="${JULIET}/balcony" to="${ROMEO}" type="chat" xmlns="jabber:client"><body>What man art thou</body><thread>0e31</thread></message></forwarded>`;
  assert.deepEqual(w.delivered, ['phone', 'tablet'].map((r) =>
    `<message from="${ROMEO}" to="${ROMEO}/${r}" type="chat"><received xmlns="${NS_CARBONS}">${inner}</received></message>`));
  assert.deepEqual(w.copied, ['received', 'received']);
});

test('§7 to a full JID: the other flagged resources get the copy, the addressed one the message only', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]);
  w.deliver(el(`<message from='${JULIET}/balcony' to='${ROMEO}/garden'><body>hi</body></message>`), `${JULIET}/balcony`, ROMEO, ['garden']);
  await w.module.settled();
  assert.equal(w.delivered.length, 1);
  assert.match(w.delivered[0] ?? '', new RegExp(`^<message from="${ROMEO}" to="${ROMEO}/home"><received `));
});

test('§9: a <private/> message is not copied and loses its <private/>; groupchat and MUC private messages are not copied', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]);
  const m = el(`<message to='${ROMEO}/garden' type='chat'><body>psst</body><private xmlns='${NS_CARBONS}'/></message>`);
  w.deliver(m, `${JULIET}/balcony`, ROMEO, ['garden']);
  assert.equal(m.toString(), `<message to="${ROMEO}/garden" type="chat"><body>psst</body></message>`);
  w.deliver(el(`<message type='groupchat'><body>all</body></message>`), 'room@muc.example/nick', ROMEO, ['garden']);
  w.deliver(el(`<message type='chat'><body>pm</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`), 'room@muc.example/nick', ROMEO, ['garden']);
  await w.module.settled();
  assert.deepEqual(w.delivered, []);
});

test('§8: the sender\'s other flagged resources get a <sent/> copy, whether or not the sender has carbons on', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('home'), entry('garden', { carbons: true }), entry('phone', { carbons: true })]);
  const home = session(`${ROMEO}/home`);
  // Synchronous: the copies leave off the message's path.
  assert.equal(w.out(home, `<message to='${JULIET}/balcony' type='chat'><body>Neither, fair saint</body></message>`), undefined);
  await w.module.settled();
  const inner = `<forwarded xmlns="urn:xmpp:forward:0"><message to="${JULIET}/balcony" type="chat" from="${ROMEO}/home" xmlns="jabber:client"><body>Neither, fair saint</body></message></forwarded>`;
  assert.deepEqual(w.delivered, ['garden', 'phone'].map((r) =>
    `<message from="${ROMEO}" to="${ROMEO}/${r}" type="chat"><sent xmlns="${NS_CARBONS}">${inner}</sent></message>`));
  // The sending resource itself never gets its own copy (§8), even with carbons on.
  w.delivered.length = 0;
  w.out(session(`${ROMEO}/garden`), `<message to='${JULIET}'><body>x</body></message>`);
  await w.module.settled();
  assert.deepEqual(w.delivered.map((x) => el(x).attrs.to), [`${ROMEO}/phone`]);
  assert.deepEqual(w.copied, ['sent', 'sent', 'sent']);
  // Without a cached answer the sessions are looked up (and copied the same way).
  w.cached = false;
  w.delivered.length = 0;
  w.lookups = 0;
  w.out(home, `<message to='${JULIET}'><body>y</body></message>`);
  await w.module.settled();
  assert.deepEqual(w.delivered.map((x) => el(x).attrs.to), [`${ROMEO}/garden`, `${ROMEO}/phone`]);
  assert.equal(w.lookups, 1);
});

test('§8: a sender whose cached sessions hold no other flagged resource costs no lookup and no copy', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('home', { carbons: true }), entry('garden')]);
  assert.equal(w.out(session(`${ROMEO}/home`), `<message to='${JULIET}' type='chat'><body>hi</body></message>`), undefined);
  await w.module.settled();
  assert.deepEqual(w.delivered, []);
  assert.equal(w.lookups, 0, 'decided from the cached answer');
});

test('§8: no <sent/> copy at the edge for ineligible messages or messages to the own JID; message/deliver copies those once', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('home', { carbons: true }), entry('garden', { carbons: true }), entry('phone', { carbons: true })]);
  const home = session(`${ROMEO}/home`);
  for (const xml of [
    `<message to='${JULIET}' type='groupchat'><body>x</body></message>`,
    `<message to='${JULIET}'><body>x</body><private xmlns='${NS_CARBONS}'/></message>`,
    `<message to='${ROMEO}/garden' type='chat'><body>note to self</body></message>`,
    `<message type='chat'><body>no to</body></message>`,
    `<message to='not a jid@@' type='chat'><body>x</body></message>`,
  ]) w.out(home, xml);
  await w.module.settled();
  assert.deepEqual(w.delivered, []);
  // The router delivers the note to self to garden: phone gets one <sent/> copy, home (the sender) none.
  w.deliver(el(`<message from='${ROMEO}/home' to='${ROMEO}/garden' type='chat'><body>note to self</body></message>`), `${ROMEO}/home`, ROMEO, ['garden']);
  await w.module.settled();
  assert.equal(w.delivered.length, 1);
  assert.match(w.delivered[0] ?? '', new RegExp(`^<message from="${ROMEO}" to="${ROMEO}/phone" type="chat"><sent `));
});

test('copies to one user leave in the order made, even when a lookup is slow; a resource gone meanwhile is not counted', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true }), entry('phone', { carbons: true })]);
  w.slow.set('home', 30);
  for (let i = 1; i <= 3; i++) w.deliver(el(`<message type='chat'><body>${i}</body></message>`), `${JULIET}/b`, ROMEO, ['garden']);
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]); // phone went away
  await w.module.settled();
  const order = w.delivered.map((x) => `${el(x).attrs.to?.toString().split('/')[1]}:${el(x).getChild('received')?.getChild('forwarded')?.getChild('message')?.getChildText('body')}`);
  assert.deepEqual(order, ['home:1', 'home:2', 'home:3']);
  assert.equal(w.copied.length, 3);
});
