import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type Element } from 'ltx';
import { StanzaError, type StanzaErrorCondition } from '@hyphae/stanza';
import type { RosterItem } from '@hyphae/store';
import { itemElement, parseRosterQuery, rosterPush, rosterResult, type RosterQueryLimits } from './roster-iq.js';
import { ROSTER_NS } from './ns.js';

const LIMITS: RosterQueryLimits = { maxNameLength: 10, maxGroups: 3, maxGroupLength: 8 };
const FROM = 'juliet@example.com/balcony';

const iq = (type: string, query: string, attrs = `from='${FROM}'`) =>
  parse(`<iq type='${type}' id='r1' ${attrs}>${query}</iq>`);
const set = (item: string, attrs?: string) => iq('set', `<query xmlns='jabber:iq:roster'>${item}</query>`, attrs);

function throwsCondition(fn: () => unknown, condition: StanzaErrorCondition, type?: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StanzaError, `expected StanzaError, got ${String(e)}`);
    assert.equal(e.condition, condition);
    if (type) assert.equal(e.type, type);
    return true;
  });
}

describe('parseRosterQuery: roster get (§2.1.3)', () => {
  test('plain get', () => {
    assert.deepEqual(parseRosterQuery(iq('get', "<query xmlns='jabber:iq:roster'/>"), LIMITS), { kind: 'get' });
  });
  test("get with ver (§2.6): the value as given, '' included", () => {
    assert.deepEqual(parseRosterQuery(iq('get', "<query xmlns='jabber:iq:roster' ver='ver14'/>"), LIMITS), { kind: 'get', ver: 'ver14' });
    assert.deepEqual(parseRosterQuery(iq('get', "<query xmlns='jabber:iq:roster' ver=''/>"), LIMITS), { kind: 'get', ver: '' });
  });
  test('get with an <item/> → bad-request (§2.1.3: MUST NOT contain any <item/>)', () => {
    throwsCondition(() => parseRosterQuery(iq('get', "<query xmlns='jabber:iq:roster'><item jid='romeo@example.net'/></query>"), LIMITS), 'bad-request', 'modify');
  });
  test('get addressed to the own bare JID is fine; to another account → forbidden', () => {
    assert.equal(parseRosterQuery(iq('get', "<query xmlns='jabber:iq:roster'/>", `from='${FROM}' to='Juliet@Example.com'`), LIMITS).kind, 'get');
    throwsCondition(() => parseRosterQuery(iq('get', "<query xmlns='jabber:iq:roster'/>", `from='${FROM}' to='romeo@example.net'`), LIMITS), 'forbidden', 'auth');
  });
});

describe('parseRosterQuery: shape', () => {
  test('not get/set → bad-request', () => {
    throwsCondition(() => parseRosterQuery(iq('result', "<query xmlns='jabber:iq:roster'/>"), LIMITS), 'bad-request');
  });
  test('no roster <query/> → bad-request', () => {
    throwsCondition(() => parseRosterQuery(iq('get', "<query xmlns='jabber:iq:version'/>"), LIMITS), 'bad-request');
    throwsCondition(() => parseRosterQuery(iq('get', ''), LIMITS), 'bad-request');
  });
  test('not an <iq/> → bad-request', () => {
    throwsCondition(() => parseRosterQuery(parse("<message type='set'><query xmlns='jabber:iq:roster'/></message>"), LIMITS), 'bad-request');
  });
});

describe('parseRosterQuery: roster set (§2.1.5, §2.3.3)', () => {
  test('add with name and groups (order kept)', () => {
    const q = parseRosterQuery(set("<item jid='Romeo@Example.NET' name='Romeo'><group>Friends</group><group>Lovers</group></item>"), LIMITS);
    assert.deepEqual(q, { kind: 'set', item: { jid: 'romeo@example.net', name: 'Romeo', groups: ['Friends', 'Lovers'], remove: false } });
  });
  test("no name, or name='' → no name; no groups → []", () => {
    assert.deepEqual(parseRosterQuery(set("<item jid='romeo@example.net'/>"), LIMITS), { kind: 'set', item: { jid: 'romeo@example.net', groups: [], remove: false } });
    assert.deepEqual(parseRosterQuery(set("<item jid='romeo@example.net' name=''/>"), LIMITS), { kind: 'set', item: { jid: 'romeo@example.net', groups: [], remove: false } });
  });
  test("subscription='remove' (§2.5): name and groups ignored", () => {
    const q = parseRosterQuery(set("<item jid='romeo@example.net' subscription='remove' name='x'><group>G</group><group>G</group></item>"), LIMITS);
    assert.deepEqual(q, { kind: 'set', item: { jid: 'romeo@example.net', groups: [], remove: true } });
  });
  test("other 'subscription' values are ignored (§2.1.5 rule 2, §2.1.2.5)", () => {
    for (const sub of ['both', 'from', 'to', 'none', 'bogus', '']) {
      const q = parseRosterQuery(set(`<item jid='romeo@example.net' subscription='${sub}'/>`), LIMITS);
      assert.deepEqual(q, { kind: 'set', item: { jid: 'romeo@example.net', groups: [], remove: false } });
    }
  });
  test("'ask' and 'approved' are ignored (§2.1.2.2, §2.1.2.1)", () => {
    const q = parseRosterQuery(set("<item jid='romeo@example.net' ask='subscribe' approved='true'/>"), LIMITS);
    assert.deepEqual(q, { kind: 'set', item: { jid: 'romeo@example.net', groups: [], remove: false } });
  });
  test('elements of other namespaces are ignored', () => {
    const q = parseRosterQuery(set("<item jid='romeo@example.net'><group>A</group><x xmlns='urn:example'/><group xmlns='urn:example'>B</group></item><other xmlns='urn:example'/>"), LIMITS);
    assert.deepEqual(q, { kind: 'set', item: { jid: 'romeo@example.net', groups: ['A'], remove: false } });
  });
  test('limits are inclusive and count code points', () => {
    const q = parseRosterQuery(set("<item jid='romeo@example.net' name='😀😀😀😀😀😀😀😀😀😀'><group>😀😀😀😀😀😀😀😀</group><group>b</group><group>c</group></item>"), LIMITS);
    assert.equal(q.kind, 'set');
  });
  test('groups are compared exactly (case and spaces differ → distinct)', () => {
    const q = parseRosterQuery(set("<item jid='romeo@example.net'><group>a</group><group>A</group><group> a</group></item>"), LIMITS);
    assert.deepEqual(q.kind === 'set' && q.item.groups, ['a', 'A', ' a']);
  });
  test('owner given explicitly (no from)', () => {
    throwsCondition(() => parseRosterQuery(set("<item jid='juliet@example.com'/>", ''), { ...LIMITS, owner: 'juliet@example.com' }), 'not-allowed');
    assert.equal(parseRosterQuery(set("<item jid='juliet@example.com'/>", ''), LIMITS).kind, 'set');
  });

  // --- errors, with their exact condition and type
  const cases: Array<[string, Element, StanzaErrorCondition, string]> = [
    ['no <item/> (§2.1.5 rule 1)', set(''), 'bad-request', 'modify'],
    ['two <item/>s (§2.3.3)', set("<item jid='a@example.net'/><item jid='b@example.net'/>"), 'bad-request', 'modify'],
    ["<item/> without 'jid' (§2.1.2.3)", set("<item name='x'/>"), 'bad-request', 'modify'],
    ['duplicate groups (§2.3.3)', set("<item jid='romeo@example.net'><group>Friends</group><group>Friends</group></item>"), 'bad-request', 'modify'],
    ["'jid' empty", set("<item jid=''/>"), 'jid-malformed', 'modify'],
    ["'jid' not a JID", set("<item jid='a@b@c'/>"), 'jid-malformed', 'modify'],
    ["'jid' with an empty localpart", set("<item jid='@example.net'/>"), 'jid-malformed', 'modify'],
    ["'jid' a full JID", set("<item jid='romeo@example.net/orchard'/>"), 'jid-malformed', 'modify'],
    ["'jid' a full JID, even for remove", set("<item jid='romeo@example.net/orchard' subscription='remove'/>"), 'jid-malformed', 'modify'],
    ["'jid' the owner's own bare JID", set("<item jid='JULIET@example.com'/>"), 'not-allowed', 'cancel'],
    ["'jid' the owner's own bare JID, remove", set("<item jid='juliet@example.com' subscription='remove'/>"), 'not-allowed', 'cancel'],
    ['addressed to another account (§2.3.3)', set("<item jid='romeo@example.net'/>", `from='${FROM}' to='nurse@example.com'`), 'forbidden', 'auth'],
    ["'name' too long (§2.3.3)", set("<item jid='romeo@example.net' name='12345678901'/>"), 'not-acceptable', 'modify'],
    ['empty group (§2.3.3)', set("<item jid='romeo@example.net'><group></group></item>"), 'not-acceptable', 'modify'],
    ['self-closed empty group (§2.3.3)', set("<item jid='romeo@example.net'><group/></item>"), 'not-acceptable', 'modify'],
    ['group name too long (§2.3.3)', set("<item jid='romeo@example.net'><group>123456789</group></item>"), 'not-acceptable', 'modify'],
    ['too many groups', set("<item jid='romeo@example.net'><group>a</group><group>b</group><group>c</group><group>d</group></item>"), 'not-acceptable', 'modify'],
  ];
  for (const [name, el, cond, type] of cases) {
    test(`${name} → ${cond}`, () => throwsCondition(() => parseRosterQuery(el, LIMITS), cond, type));
  }
});

const romeo: RosterItem = { jid: 'romeo@example.net', name: 'Romeo', groups: ['Friends', 'Lovers'], subscription: 'both', ask: false, approved: false };
const nurse: RosterItem = { jid: 'nurse@example.com', groups: [], subscription: 'none', ask: true, approved: true };

describe('itemElement (§2.1.2)', () => {
  test('name, subscription, groups in order', () => {
    assert.equal(itemElement(romeo).toString(),
      "<item jid=\"romeo@example.net\" name=\"Romeo\" subscription=\"both\"><group>Friends</group><group>Lovers</group></item>");
  });
  test("Pending Out → ask='subscribe'; pre-approved → approved='true'; no name → no attribute", () => {
    assert.equal(itemElement(nurse).toString(), '<item jid="nurse@example.com" subscription="none" ask="subscribe" approved="true"/>');
  });
  test("every subscription value; no ask/approved when false", () => {
    for (const subscription of ['none', 'to', 'from', 'both'] as const) {
      const el = itemElement({ jid: 'a@b', groups: [], subscription, ask: false, approved: false });
      assert.deepEqual(el.attrs, { jid: 'a@b', subscription });
    }
  });
  test("removal → subscription='remove' (§2.5.2)", () => {
    assert.equal(itemElement({ jid: 'romeo@example.net', remove: true }).toString(), '<item jid="romeo@example.net" subscription="remove"/>');
  });
  test('text is escaped', () => {
    const el = itemElement({ jid: 'a@b', name: `<&'">`, groups: ['x<y&z'], subscription: 'none', ask: false, approved: false });
    const back = parse(el.toString());
    assert.equal(back.attrs.name, `<&'">`);
    assert.equal(back.getChildText('group'), 'x<y&z');
  });
});

describe('rosterResult (§2.1.4)', () => {
  test('with ver: every item, stored order', () => {
    const q = rosterResult({ version: 14, items: [romeo, nurse] }, true);
    assert.equal(q.name, 'query');
    assert.equal(q.attrs.xmlns, ROSTER_NS.roster);
    assert.equal(q.attrs.ver, '14');
    assert.deepEqual(q.getChildren('item').map((i) => i.attrs.jid), ['romeo@example.net', 'nurse@example.com']);
    assert.equal(q.getChildElements()[0]!.toString(), itemElement(romeo).toString());
  });
  test('without ver; empty roster', () => {
    const q = rosterResult({ version: 0, items: [] }, false);
    assert.equal(q.toString(), '<query xmlns="jabber:iq:roster"/>');
    assert.equal(rosterResult({ version: 0, items: [] }, true).toString(), '<query xmlns="jabber:iq:roster" ver="0"/>');
  });
});

describe('rosterPush (§2.1.6)', () => {
  test('iq set, one item, ver, no id/to/from', () => {
    const el = rosterPush(romeo, 15);
    assert.equal(el.toString(),
      '<iq type="set"><query xmlns="jabber:iq:roster" ver="15"><item jid="romeo@example.net" name="Romeo" subscription="both"><group>Friends</group><group>Lovers</group></item></query></iq>');
    assert.deepEqual(Object.keys(el.attrs), ['type']);
  });
  test('without versioning: no ver', () => {
    assert.equal(rosterPush(nurse, null).toString(),
      '<iq type="set"><query xmlns="jabber:iq:roster"><item jid="nurse@example.com" subscription="none" ask="subscribe" approved="true"/></query></iq>');
  });
  test('removal', () => {
    assert.equal(rosterPush({ jid: 'romeo@example.net', remove: true }, 16).toString(),
      '<iq type="set"><query xmlns="jabber:iq:roster" ver="16"><item jid="romeo@example.net" subscription="remove"/></query></iq>');
  });
  test('a push parses back as a roster set the server would accept (round trip)', () => {
    const push = rosterPush(romeo, 1);
    push.attrs.id = 'p';
    const q = parseRosterQuery(parse(push.toString()), { maxNameLength: 100, maxGroups: 10, maxGroupLength: 100 });
    assert.deepEqual(q, { kind: 'set', item: { jid: romeo.jid, name: 'Romeo', groups: romeo.groups, remove: false } });
  });
});
