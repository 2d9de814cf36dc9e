/**
 * XEP-0191 §3.1–§3.5 against a real embedded store: the commands, their
 * pushes, every error, and the presence sent when the list changes.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleRegistry } from '@hyphae/module-api';
import { blocking, NS_BLOCKING } from './index.js';
import { JULIET, World } from './test-world.js';

let w: World;
before(async () => {
  w = await World.open(5);
});
after(() => w.close());
beforeEach(async () => {
  w.router.clear();
  await w.stores.storage.map('blocklist').clear(JULIET);
});

const BL = `<blocklist xmlns="${NS_BLOCKING}"`;
const push = (to: string, body: string): RegExp =>
  new RegExp(`^<iq type="set" id="block-push-[0-9a-f]{12}" from="${JULIET}" to="${JULIET}/${to}">${body.replace(/[/]/g, '\\/')}</iq>$`);

test('§3.1: the server feature; the definition declares its spec, store and metric', () => {
  assert.deepEqual(ModuleRegistry.of({ blocking: w.module }).features('server'), [NS_BLOCKING]);
  assert.deepEqual(blocking.specs.map((s) => `${s.spec} ${s.version}`), ['XEP-0191 1.3']);
  assert.deepEqual(blocking.stores, [{ kind: 'map', name: 'blocklist' }]);
  assert.equal(w.registry.findIq('host', 'get', NS_BLOCKING, 'blocklist'), undefined, 'to the server itself: not a blocklist');
});

test('§3.2: an empty list is an empty <blocklist/>; blocked JIDs come back prepared, in order', async () => {
  assert.equal(await w.iq(`${JULIET}/balcony`, 'get', `<blocklist xmlns='${NS_BLOCKING}'/>`), `${BL}/>`);
  assert.equal(await w.iq(`${JULIET}/balcony`, 'set', w.items('Romeo@Montague.LIT', 'iago@shakespeare.lit', 'romeo@montague.lit')), 'null');
  const expected = `${BL}><item jid="iago@shakespeare.lit"/><item jid="romeo@montague.lit"/></blocklist>`;
  assert.equal(await w.iq(`${JULIET}/balcony`, 'get', `<blocklist xmlns='${NS_BLOCKING}'/>`), expected);
  // To the own bare JID, as RFC 6120 §10.3.3 allows, it is the same request.
  assert.equal(await w.iq(`${JULIET}/balcony`, 'get', `<blocklist xmlns='${NS_BLOCKING}'/>`, JULIET), expected);
});

test('§3.3/§3.4/§3.5: every change is pushed to each bound resource, from the bare JID, to the full JID', async () => {
  await w.bindSession(`${JULIET}/balcony`, true);
  await w.bindSession(`${JULIET}/chamber`, false);
  assert.equal(await w.iq(`${JULIET}/balcony`, 'set', w.items('romeo@montague.lit', 'montague.lit/orchard')), 'null');
  const block = `<block xmlns="${NS_BLOCKING}"><item jid="romeo@montague.lit"/><item jid="montague.lit/orchard"/></block>`;
  assert.equal(w.router.delivered.length, 2);
  assert.match(w.router.delivered[0] ?? '', push('balcony', block));
  assert.match(w.router.delivered[1] ?? '', push('chamber', block));
  w.router.clear();
  assert.equal(await w.iq(`${JULIET}/chamber`, 'set', `<unblock xmlns='${NS_BLOCKING}'><item jid='ROMEO@montague.lit'/><item jid='never@blocked.lit'/></unblock>`), 'null');
  assert.deepEqual(await w.list(), ['montague.lit/orchard']);
  const unblock = `<unblock xmlns="${NS_BLOCKING}"><item jid="romeo@montague.lit"/><item jid="never@blocked.lit"/></unblock>`;
  assert.match(w.router.delivered[0] ?? '', push('balcony', unblock));
  w.router.clear();
  assert.equal(await w.iq(`${JULIET}/chamber`, 'set', `<unblock xmlns='${NS_BLOCKING}'/>`), 'null');
  assert.deepEqual(await w.list(), []);
  assert.match(w.router.delivered[1] ?? '', push('chamber', `<unblock xmlns="${NS_BLOCKING}"/>`));
  for (const r of ['balcony', 'chamber']) await w.stores.sessions.unbind(JULIET, r, `s-${r}`);
});

test('errors: <bad-request/> for an empty <block/> (§3.3 MUST) and for items without a jid or not items; <jid-malformed/>; nothing stored', async () => {
  const from = `${JULIET}/balcony`;
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'/>`), '<bad-request/> modify');
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'><item/></block>`), '<bad-request/> modify');
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'><item jid=''/></block>`), '<bad-request/> modify');
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'><item jid='a@b.lit'/><jid>c@d.lit</jid></block>`), '<bad-request/> modify');
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'><item xmlns='urn:other' jid='a@b.lit'/></block>`), '<bad-request/> modify');
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'><item jid='good@b.lit'/><item jid='@bad'/></block>`), '<jid-malformed/> modify');
  assert.equal(await w.iq(from, 'set', `<block xmlns='${NS_BLOCKING}'><item jid='a@b@c'/></block>`), '<jid-malformed/> modify');
  assert.equal(await w.iq(from, 'set', `<unblock xmlns='${NS_BLOCKING}'><item jid='x@y.lit/'/></unblock>`), '<jid-malformed/> modify');
  assert.equal(await w.iq(from, 'set', `<unblock xmlns='${NS_BLOCKING}'><item/></unblock>`), '<bad-request/> modify');
  assert.deepEqual(await w.list(), []);
  assert.deepEqual(w.router.delivered, [], 'no push for a refused command');
});

test("errors: another account's list is <forbidden/>; more than maxItems is <policy-violation/>", async () => {
  for (const [type, xml] of [['get', `<blocklist xmlns='${NS_BLOCKING}'/>`], ['set', w.items('a@b.lit')], ['set', `<unblock xmlns='${NS_BLOCKING}'/>`]] as const) {
    assert.equal(await w.iq('romeo@montague.lit/orchard', type, xml, JULIET), '<forbidden/> auth', xml);
  }
  assert.equal(await w.iq(`${JULIET}/b`, 'set', w.items('1@x.lit', '2@x.lit', '3@x.lit', '4@x.lit')), 'null');
  // Blocking again what is blocked does not count twice.
  assert.equal(await w.iq(`${JULIET}/b`, 'set', w.items('1@x.lit', '5@x.lit')), 'null');
  assert.equal(await w.iq(`${JULIET}/b`, 'set', w.items('6@x.lit')), '<policy-violation/> modify');
  assert.equal((await w.list()).length, 5);
});

test('§3.3: blocking sends unavailable from each available resource to blocked JIDs that see the presence', async () => {
  await w.bindSession(`${JULIET}/balcony`, true, `<presence from="${JULIET}/balcony"><show>away</show></presence>`);
  await w.bindSession(`${JULIET}/chamber`, false);
  await w.rosterItem(JULIET, 'romeo@montague.lit', 'both');
  await w.rosterItem(JULIET, 'benvolio@montague.lit', 'from');
  await w.rosterItem(JULIET, 'mercutio@montague.lit', 'to'); // does not see Juliet's presence
  await w.rosterItem(JULIET, 'nurse@capulet.lit', 'both');
  await w.iq(`${JULIET}/balcony`, 'set', w.items('montague.lit', 'nurse@capulet.lit/kitchen', 'paris@verona.lit'));
  const off = (to: string) => `${JULIET}/balcony <presence type="unavailable" from="${JULIET}/balcony" to="${to}"/>`;
  assert.deepEqual(w.router.routed.sort(), [off('benvolio@montague.lit'), off('nurse@capulet.lit/kitchen'), off('romeo@montague.lit')]);
  w.router.clear();
  // §3.4: the current presence to those unblocked, unless still blocked by another item.
  await w.iq(`${JULIET}/balcony`, 'set', `<unblock xmlns='${NS_BLOCKING}'><item jid='montague.lit'/><item jid='nurse@capulet.lit/kitchen'/></unblock>`);
  const on = (to: string) => `${JULIET}/balcony <presence from="${JULIET}/balcony" to="${to}"><show>away</show></presence>`;
  assert.deepEqual(w.router.routed.sort(), [on('benvolio@montague.lit'), on('nurse@capulet.lit/kitchen'), on('romeo@montague.lit')]);
  w.router.clear();
  await w.iq(`${JULIET}/balcony`, 'set', w.items('romeo@montague.lit', 'montague.lit'));
  w.router.clear();
  await w.iq(`${JULIET}/balcony`, 'set', `<unblock xmlns='${NS_BLOCKING}'><item jid='romeo@montague.lit'/></unblock>`);
  assert.deepEqual(w.router.routed, [], 'romeo is still blocked by montague.lit');
  await w.iq(`${JULIET}/balcony`, 'set', `<unblock xmlns='${NS_BLOCKING}'/>`);
  assert.deepEqual(w.router.routed.sort(), [on('benvolio@montague.lit'), on('romeo@montague.lit')], 'unblock all');
});
