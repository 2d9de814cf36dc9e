/** XEP-0049 (and XEP-0048 bookmarks in it) against the embedded store, with the XEP's own examples. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { ModuleRegistry, type IqReply, type ModuleInstance, type Routing } from '@hyphae/module-api';
import { privateInstance, privateStorage, isReserved, keyOf, NS_PRIVATE, NS_BOOKMARKS } from './index.js';

const noRouting = new Proxy({}, { get: () => assert.fail('the module used routing') }) as Routing;

let dir: string;
let stores: Stores;
let m: ModuleInstance;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hyphae-private-'));
  stores = await openEmbeddedStores({ dir });
  m = privateInstance({ storage: stores.storage, options: { maxBytes: 1024 } });
});
after(async () => {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
});

type Answer = { result: Element | null } | { error: StanzaError };
async function iq(xml: string, from = 'hamlet@shakespeare.lit/denmark', to = 'hamlet@shakespeare.lit'): Promise<Answer> {
  const stanza = parse(xml) as Element;
  const payload = stanza.getChildElements()[0] as Element;
  const route = ModuleRegistry.of({ private: m }).findIq('account', String(stanza.attrs.type), payload.attrs.xmlns as string, payload.name);
  assert.ok(route, `no route for ${xml}`);
  try {
    const out = await route.handle({ iq: stanza, payload, from: parseJid(from), to: parseJid(to), routing: noRouting });
    return { result: out !== null && 'after' in out ? (out as IqReply).payload : out };
  } catch (err) {
    if (err instanceof StanzaError) return { error: err };
    throw err;
  }
}
const condition = (a: Answer): string => ('error' in a ? `${a.error.condition}/${a.error.type}` : `result ${String(a.result)}`);
const result = (a: Answer): string => {
  assert.ok('result' in a && a.result, condition(a));
  return a.result.toString();
};
const q = (type: 'get' | 'set', inner: string, to = ''): string =>
  `<iq type='${type}' id='p'${to ? ` to='${to}'` : ''}><query xmlns='${NS_PRIVATE}'>${inner}</query></iq>`;

const EXODUS = "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>";

test('§2.3 examples 1 and 2: store, then retrieve what was stored; an element never stored comes back as asked', async () => {
  assert.deepEqual(await iq(q('get', "<exodus xmlns='exodus:prefs'/>")), { result: parse(`<query xmlns='${NS_PRIVATE}'><exodus xmlns='exodus:prefs'/></query>`) });
  assert.deepEqual(await iq(q('set', EXODUS)), { result: null });
  assert.equal(result(await iq(q('get', "<exodus xmlns='exodus:prefs'/>"))), `<query xmlns="${NS_PRIVATE}"><exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus></query>`);
  // To the own bare JID: the same storage.
  assert.match(result(await iq(q('get', "<exodus xmlns='exodus:prefs'/>", 'hamlet@shakespeare.lit'))), /Hamlet/);
  // Same namespace, another element name: another item; another namespace, same name: another item too.
  assert.equal(result(await iq(q('get', "<other xmlns='exodus:prefs'/>"))), `<query xmlns="${NS_PRIVATE}"><other xmlns="exodus:prefs"/></query>`);
  assert.equal(result(await iq(q('get', "<exodus xmlns='exodus:other'/>"))), `<query xmlns="${NS_PRIVATE}"><exodus xmlns="exodus:other"/></query>`);
  // Another user has storage of their own.
  assert.doesNotMatch(result(await iq(q('get', "<exodus xmlns='exodus:prefs'/>"), 'ophelia@shakespeare.lit/r', 'ophelia@shakespeare.lit')), /Hamlet/);
});

test('a set may carry several elements of one namespace (§2.3), stored under their own keys, replacing older ones', async () => {
  assert.deepEqual(await iq(q('set', "<a xmlns='urn:x:multi'>1</a><b xmlns='urn:x:multi'>2</b>")), { result: null });
  assert.deepEqual(await iq(q('set', "<a xmlns='urn:x:multi'>3</a>")), { result: null });
  assert.deepEqual((await stores.storage.map<string>('private').all('hamlet@shakespeare.lit')).filter(([k]) => k.includes('multi')), [
    [keyOf('urn:x:multi', 'a'), '<a xmlns="urn:x:multi">3</a>'],
    [keyOf('urn:x:multi', 'b'), '<b xmlns="urn:x:multi">2</b>'],
  ]);
  // A prefixed element keeps its namespace declaration.
  assert.deepEqual(await iq(q('set', "<p:prefs xmlns:p='urn:x:prefixed'><p:a/></p:prefs>")), { result: null });
  assert.equal(result(await iq(q('get', "<prefs xmlns='urn:x:prefixed'/>"))), `<query xmlns="${NS_PRIVATE}"><p:prefs xmlns:p="urn:x:prefixed"><p:a/></p:prefs></query>`);
});

test('XEP-0048 1.0: bookmarks stored and retrieved through private storage', async () => {
  const bookmarks = `<storage xmlns='${NS_BOOKMARKS}'><conference name='Council' autojoin='true' jid='council@conference.shakespeare.lit'><nick>Hamlet</nick></conference><url name='Globe' url='https://globe.example/'/></storage>`;
  assert.deepEqual(await iq(q('set', bookmarks)), { result: null });
  const got = (await iq(q('get', `<storage xmlns='${NS_BOOKMARKS}'/>`)) as { result: Element }).result;
  const storage = got.getChild('storage', NS_BOOKMARKS);
  assert.equal(storage?.getChild('conference')?.attrs.jid, 'council@conference.shakespeare.lit');
  assert.equal(storage?.getChild('conference')?.getChildText('nick'), 'Hamlet');
  assert.equal(storage?.getChild('url')?.attrs.url, 'https://globe.example/');
});

test('errors: another user (forbidden), no child (bad-request), several in a get or mixed namespaces (bad-request), reserved (not-acceptable), too big', async () => {
  // Example 3: Macbeth writes Hamlet's storage; reading it is refused the same way.
  assert.equal(condition(await iq(q('set', EXODUS, 'hamlet@shakespeare.lit'), 'macbeth@shakespeare.lit/x')), 'forbidden/auth');
  assert.equal(condition(await iq(q('get', "<exodus xmlns='exodus:prefs'/>", 'hamlet@shakespeare.lit'), 'macbeth@shakespeare.lit/x')), 'forbidden/auth');
  // Example 4 and the table: no child element.
  assert.equal(condition(await iq(q('set', ''))), 'bad-request/modify');
  assert.equal(condition(await iq(q('get', ''))), 'bad-request/modify');
  assert.equal(condition(await iq(q('get', "<a xmlns='urn:x:multi'/><b xmlns='urn:x:multi'/>"))), 'bad-request/modify');
  assert.equal(condition(await iq(q('set', "<a xmlns='urn:x:one'/><a xmlns='urn:x:two'/>"))), 'bad-request/modify');
  // Example 5 and reserved namespaces; a child without a namespace of its own is in jabber:iq:private.
  for (const inner of ["<vCard xmlns='vcard-temp'><FN>Hamlet</FN></vCard>", "<query xmlns='jabber:iq:roster'/>", "<x xmlns='http://jabber.org/protocol/muc'/>", '<prefs/>']) {
    assert.equal(condition(await iq(q('set', inner))), 'not-acceptable/modify', inner);
    assert.equal(condition(await iq(q('get', inner))), 'not-acceptable/modify', inner);
  }
  const big = await iq(q('set', `<big xmlns='urn:x:big'>${'x'.repeat(1100)}</big>`));
  assert.equal(condition(big), 'not-acceptable/modify');
  // Nothing of those was stored.
  assert.equal(result(await iq(q('get', "<big xmlns='urn:x:big'/>"))), `<query xmlns="${NS_PRIVATE}"><big xmlns="urn:x:big"/></query>`);
  assert.ok(isReserved('jabber:x:data') && isReserved('http://jabber.org/protocol/disco#info') && !isReserved('storage:bookmarks'));
});

test('account/deleted forgets everything the account stored', async () => {
  await iq(q('set', EXODUS), 'yorick@shakespeare.lit/skull', 'yorick@shakespeare.lit');
  await m.hooks?.['account/deleted']?.({ user: parseJid('yorick@shakespeare.lit') });
  assert.deepEqual(await stores.storage.map('private').all('yorick@shakespeare.lit'), []);
});

test('definition: config defaults, XEP-0048 noted as partial, features on the server and accounts', () => {
  assert.deepEqual(privateStorage.config?.schema.parse({}), { maxBytes: 65536 });
  assert.deepEqual(privateStorage.specs.map((s) => `${s.spec} ${s.status ?? 'complete'}`), ['XEP-0049 complete', 'XEP-0048 partial']);
  const reg = ModuleRegistry.of({ private: m });
  assert.deepEqual([reg.features('server'), reg.features('account')], [[NS_PRIVATE], [NS_PRIVATE]]);
});
