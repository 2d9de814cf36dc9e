import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type Element } from 'ltx';
import { NS, StanzaError } from '@hyphae/stanza';
import {
  NS_MUC,
  NS_MUC_ADMIN,
  NS_MUC_OWNER,
  NS_MUC_USER,
  NS_ROOMCONFIG,
  NS_ROOMINFO,
  parseAdminItems,
  userX,
} from './user-x.js';

test('namespaces', () => {
  assert.equal(NS_MUC, 'http://jabber.org/protocol/muc');
  assert.equal(NS_MUC_USER, 'http://jabber.org/protocol/muc#user');
  assert.equal(NS_MUC_ADMIN, 'http://jabber.org/protocol/muc#admin');
  assert.equal(NS_MUC_OWNER, 'http://jabber.org/protocol/muc#owner');
  assert.equal(NS_ROOMCONFIG, 'http://jabber.org/protocol/muc#roomconfig');
  assert.equal(NS_ROOMINFO, 'http://jabber.org/protocol/muc#roominfo');
  // the same strings as the shared table
  assert.equal(NS.muc, NS_MUC);
  assert.equal(NS.mucUser, NS_MUC_USER);
  assert.equal(NS.mucAdmin, NS_MUC_ADMIN);
  assert.equal(NS.mucOwner, NS_MUC_OWNER);
});

test('userX: §8.2 kicked self-presence (actor, reason, 110 then 307)', () => {
  const x = userX({ affiliation: 'none', role: 'none', actor: { nick: 'Fluellen' }, reason: 'Avaunt, you cullion!' }, [307, 110]);
  assert.equal(
    x.toString(),
    `<x xmlns="${NS_MUC_USER}"><item affiliation="none" role="none"><actor nick="Fluellen"/><reason>Avaunt, you cullion!</reason></item><status code="110"/><status code="307"/></x>`,
  );
});

test('userX: §7.2.2-style item with jid and nick, no status', () => {
  const x = userX({ affiliation: 'member', role: 'participant', jid: 'hag66@shakespeare.lit/pda', nick: 'thirdwitch' });
  assert.equal(
    x.toString(),
    `<x xmlns="${NS_MUC_USER}"><item affiliation="member" jid="hag66@shakespeare.lit/pda" nick="thirdwitch" role="participant"/></x>`,
  );
});

test('userX: actor with jid, empty actor and empty reason left out, duplicate codes once', () => {
  assert.equal(
    userX({ affiliation: 'outcast', role: 'none', actor: { jid: 'crone1@shakespeare.lit' } }, [301, 301]).toString(),
    `<x xmlns="${NS_MUC_USER}"><item affiliation="outcast" role="none"><actor jid="crone1@shakespeare.lit"/></item><status code="301"/></x>`,
  );
  assert.equal(
    userX({ affiliation: 'owner', role: 'moderator', actor: {}, reason: '' }, [210, 201, 110, 100]).toString(),
    `<x xmlns="${NS_MUC_USER}"><item affiliation="owner" role="moderator"/><status code="100"/><status code="110"/><status code="201"/><status code="210"/></x>`,
  );
  // escaping
  const x = parse(userX({ affiliation: 'none', role: 'none', reason: '<&>"' }).toString());
  assert.equal(x.getChild('item')?.getChildText('reason'), '<&>"');
  assert.throws(() => userX({ affiliation: 'none', role: 'none' }, [42]), RangeError);
});

const query = (inner: string, type?: string): Element => {
  const iq = parse(
    `<iq ${type ? `type='${type}' ` : ''}id='a1'><query xmlns='${NS_MUC_ADMIN}'>${inner}</query></iq>`,
  );
  return iq.getChild('query', NS_MUC_ADMIN)!;
};

test('parseAdminItems: the XEP request shapes', () => {
  const rows: Array<[string, string, 'get' | 'set', object[]]> = [
    ['§8.2 kick', "<item nick='pistol' role='none'><reason>Avaunt, you cullion!</reason></item>", 'set', [{ nick: 'pistol', role: 'none', reason: 'Avaunt, you cullion!' }]],
    ['§8.3 voice', "<item nick='thirdwitch' role='participant'/>", 'set', [{ nick: 'thirdwitch', role: 'participant' }]],
    ['§8.5 voice list', "<item role='participant'/>", 'get', [{ role: 'participant' }]],
    ['§9.1 ban', "<item affiliation='outcast' jid='earlofcambridge@shakespeare.lit'><reason>Treason</reason></item>", 'set', [{ affiliation: 'outcast', jid: 'earlofcambridge@shakespeare.lit', reason: 'Treason' }]],
    ['§9.2 ban list', "<item affiliation='outcast'/>", 'get', [{ affiliation: 'outcast' }]],
    ['§9.5 member with nick', "<item affiliation='member' jid='hag66@shakespeare.lit' nick='thirdwitch'/>", 'set', [{ affiliation: 'member', jid: 'hag66@shakespeare.lit', nick: 'thirdwitch' }]],
    ['§9.5 unset reserved nick', "<item affiliation='member' jid='hag66@shakespeare.lit' nick=''/>", 'set', [{ affiliation: 'member', jid: 'hag66@shakespeare.lit', nick: '' }]],
    ['affiliation by nick (common client habit)', "<item affiliation='outcast' nick='pistol'/>", 'set', [{ affiliation: 'outcast', nick: 'pistol' }]],
    [
      '§8.5 delta',
      "<item nick='Hecate' role='visitor'/><item nick='rosencrantz' role='participant'><reason>A worthy fellow.</reason></item>",
      'set',
      [{ nick: 'Hecate', role: 'visitor' }, { nick: 'rosencrantz', role: 'participant', reason: 'A worthy fellow.' }],
    ],
    ['actor ignored, empty reason kept', "<item nick='a' role='none'><actor nick='b'/><reason/></item>", 'set', [{ nick: 'a', role: 'none', reason: '' }]],
    ['jid prepared', "<item affiliation='admin' jid='Wiccarocks@Shakespeare.LIT'/>", 'set', [{ affiliation: 'admin', jid: 'wiccarocks@shakespeare.lit' }]],
    ['full jid kept', "<item affiliation='admin' jid='a@b/Res'/>", 'set', [{ affiliation: 'admin', jid: 'a@b/Res' }]],
  ];
  for (const [name, inner, type, expected] of rows) {
    assert.deepEqual(parseAdminItems(query(inner, type)), expected, `${name} (inferred)`);
    assert.deepEqual(parseAdminItems(query(inner), type), expected, `${name} (explicit)`);
  }
});

test('parseAdminItems: malformed items are bad-request; malformed JIDs jid-malformed', () => {
  const bad: Array<[string, string, 'get' | 'set' | undefined, string]> = [
    ['no item', '', 'get', 'bad-request'],
    ['no item (set)', '', 'set', 'bad-request'],
    ['role and affiliation', "<item nick='a' role='none' affiliation='none'/>", 'set', 'bad-request'],
    ['role and affiliation (get)', "<item role='participant' affiliation='member'/>", 'get', 'bad-request'],
    ['neither', "<item nick='a'/>", 'set', 'bad-request'],
    ['unknown role', "<item nick='a' role='king'/>", 'set', 'bad-request'],
    ['unknown affiliation', "<item jid='a@b' affiliation='friend'/>", 'set', 'bad-request'],
    ['role set without a target', "<item role='none'/>", 'set', 'bad-request'],
    ['affiliation set without a target', "<item affiliation='outcast'/>", 'set', 'bad-request'],
    ['empty nick is no target', "<item affiliation='member' nick=''/>", 'set', 'bad-request'],
    ['one bad item spoils the request', "<item nick='a' role='none'/><item nick='b' role='boss'/>", 'set', 'bad-request'],
    ['malformed jid', "<item affiliation='outcast' jid='a@@b'/>", 'set', 'jid-malformed'],
    ['empty jid', "<item affiliation='outcast' jid=''/>", 'set', 'jid-malformed'],
  ];
  for (const [name, inner, type, condition] of bad) {
    assert.throws(
      () => parseAdminItems(query(inner), type),
      (e: unknown) => e instanceof StanzaError && e.condition === condition,
      name,
    );
  }
  // items in another namespace are not ours
  assert.throws(
    () => parseAdminItems(query("<item xmlns='urn:other' nick='a' role='none'/>"), 'set'),
    (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request',
  );
  // the mode is inferred from the iq: a target-less item passes in a get, not in a set
  assert.deepEqual(parseAdminItems(query("<item role='moderator'/>", 'get')), [{ role: 'moderator' }]);
  assert.throws(() => parseAdminItems(query("<item role='moderator'/>", 'set')), StanzaError);
  // a detached query (no parent iq) is read as a get
  const detached = parse(`<query xmlns='${NS_MUC_ADMIN}'><item affiliation='owner'/></query>`);
  assert.deepEqual(parseAdminItems(detached), [{ affiliation: 'owner' }]);
});
