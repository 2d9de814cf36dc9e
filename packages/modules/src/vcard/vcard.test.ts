/**
 * XEP-0054 get/set rules and the XEP-0153 presence rewrite, against the
 * embedded store (LMDB in a temp dir), with fake sessions and a fake bus
 * shared by two instances (two c2s nodes).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { ModuleRegistry, type ClientSession, type IqReply, type ModuleDeps, type ModuleInstance, type Routing, type SessionKey } from '@hyphae/module-api';
import { vcard, vcardInstance, photoHash, NS_VCARD, NS_VCARD_UPDATE, VCARD_CHANGED, type VcardOptions } from './index.js';

const noRouting = new Proxy({}, { get: () => assert.fail('the module used routing') }) as Routing;
type Bus = ModuleDeps<unknown>['bus'];
type Handler = Parameters<Bus['subscribe']>[1];
type Message = Parameters<Handler>[0];

/** An in-process bus with just publish/subscribe: every instance given it is a "node". */
class FakeBus {
  readonly published: string[] = [];
  private readonly subs: Array<{ subject: string; handler: Handler }> = [];
  publish(subject: string, data: Uint8Array): void {
    this.published.push(subject);
    const msg = { subject, data, headers: {} as Message['headers'], respond: () => false };
    for (const s of this.subs) if (s.subject === subject) void s.handler(msg);
  }
  subscribe(subject: string, handler: Handler): ReturnType<Bus['subscribe']> {
    const sub = { subject, handler };
    this.subs.push(sub);
    return { subject, unsubscribe: () => this.subs.splice(this.subs.indexOf(sub), 1), drain: async () => undefined };
  }
}

function fakeSession(full: string): ClientSession {
  const state = new Map<SessionKey<unknown>, unknown>();
  return {
    id: full, jid: parseJid(full), remoteAddress: '127.0.0.1', lastReceivedAt: 0,
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: () => undefined, setFlag: async () => undefined, close: () => undefined,
  };
}

let dir: string;
let stores: Stores;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hyphae-vcard-'));
  stores = await openEmbeddedStores({ dir });
});
after(async () => {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
});

const OPTIONS: VcardOptions = { maxBytes: 2048, avatarHash: true };
const make = (bus = new FakeBus(), options = OPTIONS): ModuleInstance => vcardInstance({ storage: stores.storage, bus, options });

type Answer = { result: Element | null } | { error: StanzaError };
/** Runs an iq as the router would: `to` resolved to a bare JID ('account') or the domain ('host'). */
async function iq(m: ModuleInstance, xml: string, from: string, to: string): Promise<Answer> {
  const stanza = parse(xml) as Element;
  const payload = stanza.getChildElements()[0] as Element;
  const target = to.includes('@') ? 'account' : 'host';
  const route = ModuleRegistry.of({ vcard: m }).findIq(target, String(stanza.attrs.type), payload.attrs.xmlns as string, payload.name);
  assert.ok(route, `no ${target} route for ${xml}`);
  try {
    const out = await route.handle({ iq: stanza, payload, from: parseJid(from), to: parseJid(to), routing: noRouting });
    return { result: out !== null && 'after' in out ? (out as IqReply).payload : out };
  } catch (err) {
    if (err instanceof StanzaError) return { error: err };
    throw err;
  }
}
const condition = (a: Answer): string => ('error' in a ? a.error.condition : `result ${String(a.result)}`);

const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const card = (fn: string, binval?: string): string =>
  `<vCard xmlns='${NS_VCARD}'><FN>${fn}</FN>${binval === undefined ? '' : `<PHOTO><TYPE>image/png</TYPE><BINVAL>${binval}</BINVAL></PHOTO>`}</vCard>`;
const setIq = (body: string, to = ''): string => `<iq type='set' id='s1'${to ? ` to='${to}'` : ''}>${body}</iq>`;
const GET = `<iq type='get' id='g1'><vCard xmlns='${NS_VCARD}'/></iq>`;

test('photoHash: SHA-1 of the decoded bytes, whitespace ignored; empty without a photo; not base64 → bad-request', () => {
  // SHA-1("abc") (FIPS 180-2 appendix A.1).
  assert.equal(photoHash(parse(card('A', 'YW\n Jj')) as Element), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(photoHash(parse(card('A')) as Element), '');
  assert.equal(photoHash(parse(card('A', '  ')) as Element), '');
  assert.throws(() => photoHash(parse(card('A', 'not*base64')) as Element), { condition: 'bad-request' });
});

test('XEP-0054: set one\'s own vCard, get it back, and others read it; an absent one per §3.1/§3.3', async () => {
  const m = make();
  const own = await iq(m, GET, 'none@example.org/r', 'none@example.org');
  assert.ok('result' in own && own.result);
  assert.equal(own.result.toString(), `<vCard xmlns="${NS_VCARD}"/>`, 'one\'s own absent vCard: an empty one');
  assert.equal(condition(await iq(m, GET, 'juliet@example.org/r', 'none@example.org')), 'service-unavailable');

  assert.deepEqual(await iq(m, setIq(card('Romeo', PIXEL)), 'romeo@example.org/orchard', 'romeo@example.org'), { result: null });
  for (const from of ['romeo@example.org/orchard', 'juliet@example.org/balcony', 'nurse@elsewhere.example/x']) {
    const got = await iq(m, GET, from, 'romeo@example.org');
    assert.ok('result' in got && got.result, `${from}: ${condition(got)}`);
    assert.equal(got.result.attrs.xmlns, NS_VCARD);
    assert.equal(got.result.getChildText('FN'), 'Romeo');
    assert.equal(photoHash(got.result), photoHash(parse(card('x', PIXEL)) as Element));
  }
  // With 'to' = one's own bare JID, the same as none (§3.2).
  assert.deepEqual(await iq(m, setIq(card('Romeo M.'), 'romeo@example.org'), 'romeo@example.org/orchard', 'romeo@example.org'), { result: null });
  const got = await iq(m, GET, 'juliet@example.org/b', 'romeo@example.org');
  assert.ok('result' in got && got.result?.getChildText('FN') === 'Romeo M.' && !got.result.getChild('PHOTO'));
});

test('XEP-0054 errors: another user\'s vCard (forbidden), the server\'s (item-not-found / not-allowed), too big, bad photo', async () => {
  const m = make();
  const mallory = 'mallory@example.org/x';
  const forbidden = await iq(m, setIq(card('Hacked'), 'romeo@example.org'), mallory, 'romeo@example.org');
  assert.equal(condition(forbidden), 'forbidden');
  assert.equal('error' in forbidden && forbidden.error.type, 'auth');
  assert.equal(condition(await iq(m, `<iq type='get' id='h' to='example.org'><vCard xmlns='${NS_VCARD}'/></iq>`, mallory, 'example.org')), 'item-not-found');
  assert.equal(condition(await iq(m, `<iq type='set' id='h' to='example.org'>${card('Server')}</iq>`, mallory, 'example.org')), 'not-allowed');
  const big = await iq(m, setIq(card('x'.repeat(3000))), mallory, 'mallory@example.org');
  assert.equal(condition(big), 'not-acceptable');
  assert.match('error' in big ? big.error.text ?? '' : '', /2048 bytes/);
  assert.equal(condition(await iq(m, setIq(card('M', '%%%')), mallory, 'mallory@example.org')), 'bad-request');
  // None of them stored anything.
  assert.equal(condition(await iq(m, GET, 'juliet@example.org/b', 'mallory@example.org')), 'service-unavailable');
});

function presence(m: ModuleInstance, session: ClientSession, xml: string): Promise<Element> {
  const stanza = parse(xml) as Element;
  const hook = m.hooks?.['stanza/out'];
  assert.ok(hook);
  return Promise.resolve(hook({ stanza, from: session.jid, session, routing: noRouting })).then((r) => {
    assert.equal(r, undefined, 'the presence goes on');
    return stanza;
  });
}
const photoOf = (p: Element): string | null | undefined => {
  const x = p.getChild('x', NS_VCARD_UPDATE);
  return x === undefined ? undefined : (x.getChild('photo')?.text() ?? null);
};

test('XEP-0153: the hash goes into available broadcasts without one; nothing else is touched', async () => {
  const m = make();
  const sha = photoHash(parse(card('x', PIXEL)) as Element);
  await iq(m, setIq(card('Juliet', PIXEL)), 'juliet@example.org/a', 'juliet@example.org');
  const s = fakeSession('juliet@example.org/balcony');
  await m.hooks?.['session/bound']?.({ session: s, routing: noRouting });
  assert.equal(photoOf(await presence(m, s, '<presence><show>away</show></presence>')), sha);
  // The client's own element is left as sent (§4.1: also the empty "not ready" one).
  assert.equal(photoOf(await presence(m, s, `<presence><x xmlns='${NS_VCARD_UPDATE}'><photo>abcd</photo></x></presence>`)), 'abcd');
  assert.equal(photoOf(await presence(m, s, `<presence><x xmlns='${NS_VCARD_UPDATE}'/></presence>`)), null);
  for (const other of ["<presence type='unavailable'/>", "<presence to='room@muc.example.org/j'/>", "<presence type='subscribe' to='romeo@example.org'/>"]) {
    assert.equal(photoOf(await presence(m, s, other)), undefined, other);
  }
  // A vCard without a photo: an empty <photo/> (§4.1 rule 3); no vCard at all: nothing (unknown).
  await iq(m, setIq(card('Nurse')), 'nurse@example.org/a', 'nurse@example.org');
  const n = fakeSession('nurse@example.org/a');
  await m.hooks?.['session/bound']?.({ session: n, routing: noRouting });
  const p = await presence(m, n, '<presence/>');
  assert.equal(p.getChild('x', NS_VCARD_UPDATE)?.toString(), `<x xmlns="${NS_VCARD_UPDATE}"><photo/></x>`);
  const nobody = fakeSession('nobody@example.org/a');
  await m.hooks?.['session/bound']?.({ session: nobody, routing: noRouting });
  assert.equal(photoOf(await presence(m, nobody, '<presence/>')), undefined);
  // A session the module never saw bound loads the hash lazily.
  assert.equal(photoOf(await presence(m, fakeSession('juliet@example.org/late'), '<presence/>')), sha);
});

test('XEP-0153: once the hash is known, and for other stanzas, the hook decides without waiting', async () => {
  const m = make();
  await iq(m, setIq(card('Mercutio', 'YWJj')), 'mercutio@example.org/a', 'mercutio@example.org');
  const s = fakeSession('mercutio@example.org/a');
  await m.hooks?.['session/bound']?.({ session: s, routing: noRouting });
  await presence(m, s, '<presence/>'); // the read at bind has completed by now
  const hook = m.hooks?.['stanza/out'];
  assert.ok(hook);
  for (const xml of ['<presence/>', "<presence type='unavailable'/>", "<message to='x@example.org'><body>hi</body></message>"]) {
    const stanza = parse(xml) as Element;
    assert.equal(hook({ stanza, from: s.jid, session: s, routing: noRouting }), undefined, xml);
    if (xml === '<presence/>') assert.equal(photoOf(stanza), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  }
});

test('XEP-0153: a new photo reaches the sessions of this node at once and those of other nodes over the bus', async () => {
  const bus = new FakeBus();
  const nodeA = make(bus);
  const nodeB = make(bus);
  const a = fakeSession('tybalt@example.org/a');
  const b = fakeSession('tybalt@example.org/b');
  await nodeA.hooks?.['session/bound']?.({ session: a, routing: noRouting });
  await nodeB.hooks?.['session/bound']?.({ session: b, routing: noRouting });
  assert.equal(photoOf(await presence(nodeB, b, '<presence/>')), undefined, 'no vCard yet');
  await iq(nodeA, setIq(card('Tybalt', 'YWJj')), 'tybalt@example.org/a', 'tybalt@example.org');
  assert.deepEqual(bus.published, [VCARD_CHANGED]);
  assert.equal(photoOf(await presence(nodeA, a, '<presence/>')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(photoOf(await presence(nodeB, b, '<presence/>')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  // After unbind, a change no longer touches the old session.
  await nodeB.hooks?.['session/unbound']?.({ session: b, routing: noRouting });
  await iq(nodeA, setIq(card('Tybalt')), 'tybalt@example.org/a', 'tybalt@example.org');
  assert.equal(photoOf(await presence(nodeA, a, '<presence/>')), '', 'the photo was removed: an empty <photo/>');
  assert.equal(photoOf(await presence(nodeB, b, '<presence/>')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  nodeA.stop?.();
  nodeB.stop?.();
});

test('account/deleted forgets the vCard; avatarHash off leaves presence alone', async () => {
  const m = make();
  await iq(m, setIq(card('Paris')), 'paris@example.org/a', 'paris@example.org');
  await m.hooks?.['account/deleted']?.({ user: parseJid('paris@example.org') });
  assert.equal(condition(await iq(m, GET, 'juliet@example.org/b', 'paris@example.org')), 'service-unavailable');
  const off = make(new FakeBus(), { ...OPTIONS, avatarHash: false });
  assert.equal(off.hooks?.['stanza/out'], undefined);
  assert.equal(off.hooks?.['session/bound'], undefined);
  assert.ok(off.hooks?.['account/deleted']);
});

test('definition: the config section defaults to 64 KiB with avatar hashes on, and disco lists vcard-temp', () => {
  assert.deepEqual(vcard.config?.schema.parse({}), { maxBytes: 65536, avatarHash: true });
  assert.throws(() => vcard.config?.schema.parse({ maxBytes: 10 }));
  assert.throws(() => vcard.config?.schema.parse({ other: 1 }));
  const reg = ModuleRegistry.of({ vcard: make() });
  assert.deepEqual(reg.features('server'), [NS_VCARD]);
  assert.deepEqual(reg.features('account'), [NS_VCARD]);
});
