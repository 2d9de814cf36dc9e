/**
 * XEP-0352 through the registry as the c2s node runs it: the feature after
 * authentication, the nonzas, and the queue rules of session/deliver, with
 * a fake session that records what reaches the wire (hook writes and the
 * deliveries the hooks let through, in order).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJid } from '@hyphae/jid';
import {
  ModuleRegistry, parseDelivered, stanzaKind, type ClientSession, type Routing, type SessionKey, type StreamContext, type StreamStage,
} from '@hyphae/module-api';
import { CSI, csiInstance, holdKey, type CsiCounters } from './index.js';

const routing = {} as Routing;
const enc = new TextEncoder();
const dec = new TextDecoder();

interface World {
  registry: ModuleRegistry;
  session: ClientSession;
  wire: string[];
  counted: string[];
  parses: number;
  deliver(xml: string): string | undefined;
  nonza(stage: StreamStage, name: string): Promise<void>;
  unbound(): Promise<void>;
}

function world(queueMax = 100): World {
  const wire: string[] = [];
  const counted: string[] = [];
  const state = new Map<SessionKey<unknown>, unknown>();
  const session: ClientSession = {
    id: 's1', jid: parseJid('juliet@capulet.lit/balcony'), remoteAddress: '127.0.0.1', lastReceivedAt: 0,
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: (data) => { wire.push(typeof data === 'string' ? data : data instanceof Uint8Array ? dec.decode(data) : data.toString()); },
    setFlag: async () => undefined,
    close: () => undefined,
  };
  const count: CsiCounters = {
    queued: (k) => { counted.push(`queued ${k}`); },
    flushed: (r, n) => { counted.push(`flushed ${r} ${n}`); },
    dropped: (r, n) => { counted.push(`dropped ${r} ${n}`); },
  };
  const registry = ModuleRegistry.of({ csi: csiInstance({ queueMax }, count) });
  const w: World = {
    registry, session, wire, counted, parses: 0,
    deliver(xml) {
      const data = enc.encode(xml);
      const result = registry.runSync('session/deliver', {
        session, kind: stanzaKind(data), data, routing, replace: () => undefined,
        stanza: () => ((w.parses += 1), parseDelivered(data)),
      });
      assert.ok(!(result instanceof Promise), 'the csi hook decides synchronously');
      if (result !== 'stop') wire.push(xml);
      return result ?? undefined;
    },
    async nonza(stage, name) {
      const handler = registry.nonza(stage, 'urn:xmpp:csi:0', name);
      assert.ok(handler, `a ${stage} handler for <${name}/>`);
      const stream = { session: stage === 'bound' ? session : null, write: () => assert.fail('CSI nonzas get no reply (§4.2)') } as Partial<StreamContext>;
      await handler.handle(parseDelivered(enc.encode(`<${name} xmlns='urn:xmpp:csi:0'/>`)), stream as StreamContext);
    },
    unbound: () => registry.lifecycle('session/unbound', { session, routing, reason: 'test' }, (err) => assert.fail(String(err))),
  };
  return w;
}

const pres = (from: string, show = '') => `<presence from='${from}' to='juliet@capulet.lit/balcony'>${show ? `<show>${show}</show>` : ''}</presence>`;
const state = (from: string, s = 'composing') => `<message from='${from}' to='juliet@capulet.lit/balcony' type='chat'><${s} xmlns='http://jabber.org/protocol/chatstates'/></message>`;
const chat = (from: string, body: string) => `<message from='${from}' to='juliet@capulet.lit/balcony' type='chat'><body>${body}</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`;
const ROMEO = 'romeo@montague.lit/orchard';
const NURSE = 'nurse@capulet.lit/kitchen';

test('§4.1: <csi/> is offered after authentication only', () => {
  const w = world();
  assert.deepEqual(w.registry.streamFeatures('pre-auth'), []);
  const [f] = w.registry.streamFeatures('post-auth');
  assert.equal(f?.offer({} as StreamContext)?.toString(), '<csi xmlns="urn:xmpp:csi:0"/>');
  assert.deepEqual(w.registry.streamFeatures('bound'), []);
});

test('§5: a stream starts active; active sessions get everything at once without a parse', () => {
  const w = world();
  for (const xml of [pres(ROMEO), state(ROMEO), chat(ROMEO, 'hi')]) assert.equal(w.deliver(xml), undefined);
  assert.equal(w.parses, 0);
  assert.equal(w.wire.length, 3);
});

test('§3.2: inactive holds presence updates and chat states; a body flushes them in order, presence deduplicated, then the message', async () => {
  const w = world();
  await w.nonza('bound', 'inactive');
  const held = [pres(ROMEO, 'away'), state(ROMEO), pres(NURSE), state(ROMEO, 'paused'), pres(ROMEO, 'dnd'), `<presence from='${ROMEO}' type='unavailable'/>`];
  for (const xml of held) assert.equal(w.deliver(xml), 'stop', xml);
  assert.deepEqual(w.wire, [], 'nothing written while inactive');
  assert.equal(w.deliver(chat(ROMEO, 'wake up')), undefined);
  // Romeo's three presences leave only the newest, at the place of the newest.
  assert.deepEqual(w.wire, [state(ROMEO), pres(NURSE), state(ROMEO, 'paused'), held[5], chat(ROMEO, 'wake up')]);
  assert.deepEqual(w.counted, [
    'queued presence', 'queued message', 'queued presence', 'queued message',
    'dropped superseded 1', 'queued presence', 'dropped superseded 1', 'queued presence', 'flushed urgent 4',
  ]);
  assert.equal(w.session.get(CSI)?.inactive, true, 'still inactive after the flush');
  assert.equal(w.deliver(pres(NURSE, 'xa')), 'stop', 'held again');
});

test('§3.2: urgent stanzas flush first — an iq, a subscription request, a subject, a receipt, a presence error', async () => {
  for (const urgent of [
    `<iq from='${ROMEO}' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>`,
    `<presence from='romeo@montague.lit' type='subscribe'/>`,
    `<presence from='romeo@montague.lit' type='unsubscribed'/>`,
    `<presence from='${ROMEO}' type='error'><error type='cancel'/></presence>`,
    `<message from='room@muc.lit' type='groupchat'><subject>Balcony</subject></message>`,
    `<message from='${ROMEO}'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`,
    `<message from='${ROMEO}' type='error'><gone xmlns='http://jabber.org/protocol/chatstates'/><error type='cancel'/></message>`,
    `<message from='${ROMEO}' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`,
  ]) {
    const w = world();
    await w.nonza('bound', 'inactive');
    assert.equal(w.deliver(pres(NURSE)), 'stop');
    assert.equal(w.deliver(urgent), undefined, urgent);
    assert.deepEqual(w.wire, [pres(NURSE), urgent], urgent);
  }
});

test('chat states with a thread, hints or ids, in groupchat, and as carbon copies wait too', () => {
  const carbon = `<message from='juliet@capulet.lit' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>`
    + `<message from='${ROMEO}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></received></message>`;
  const carbonBody = carbon.replace('<composing', '<body>hi</body><composing');
  const parse = (x: string) => () => parseDelivered(enc.encode(x));
  assert.equal(holdKey('message', parse(`<message from='a@b/c'><thread>t1</thread><gone xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/><origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>`)), '');
  assert.equal(holdKey('message', parse(`<message from='room@muc.lit/nurse' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)), '');
  assert.equal(holdKey('message', parse(carbon)), '');
  assert.equal(holdKey('message', parse(carbonBody)), null);
  assert.equal(holdKey('message', parse(`<message from='a@b/c'><thread>t1</thread></message>`)), null, 'no chat state: not ours to judge');
  assert.equal(holdKey('presence', parse(`<presence from='a@b/c' type='unavailable'/>`)), 'a@b/c');
  assert.equal(holdKey('presence', parse(`<presence from='a@b/c' type='probe'/>`)), null);
  assert.equal(holdKey('iq', () => assert.fail('an iq is urgent without a parse')), null);
  assert.equal(holdKey('other', () => assert.fail('not parsed')), null);
});

test('§4.2/§5.1: <active/> flushes the queue in order at once and ends holding', async () => {
  const w = world();
  await w.nonza('bound', 'inactive');
  w.deliver(pres(ROMEO));
  w.deliver(state(NURSE));
  await w.nonza('bound', 'active');
  assert.deepEqual(w.wire, [pres(ROMEO), state(NURSE)]);
  assert.equal(w.deliver(pres(ROMEO, 'away')), undefined);
  assert.deepEqual(w.counted.slice(-1), ['flushed active 2']);
  await w.nonza('bound', 'active'); // already active: nothing to do, no reply
  await w.nonza('bound', 'inactive');
  await w.nonza('bound', 'inactive');
  assert.equal(w.deliver(pres(ROMEO)), 'stop');
});

test('the queue is bounded: one stanza past queueMax flushes everything, itself last; a superseding presence makes room', async () => {
  const w = world(3);
  await w.nonza('bound', 'inactive');
  const a = [pres('a@x/1'), state('b@x/1'), pres('c@x/1')];
  for (const xml of a) assert.equal(w.deliver(xml), 'stop');
  assert.equal(w.deliver(pres('c@x/1', 'away')), 'stop', 'replaces, does not overflow');
  assert.equal(w.deliver(state('b@x/1', 'paused')), undefined, 'the fourth overflows');
  assert.deepEqual(w.wire, [a[0], a[1], pres('c@x/1', 'away'), state('b@x/1', 'paused')]);
  assert.deepEqual(w.counted.slice(-1), ['flushed overflow 3']);
  assert.equal(w.deliver(pres('d@x/1')), 'stop', 'holding again after the flush');
});

test('before bind the nonzas are accepted and ignored; session end drops what is held', async () => {
  const w = world();
  await w.nonza('post-auth', 'inactive');
  await w.nonza('post-auth', 'active');
  assert.equal(w.session.get(CSI), undefined);
  assert.equal(w.deliver(pres(ROMEO)), undefined);
  await w.nonza('bound', 'inactive');
  w.deliver(pres(NURSE));
  w.deliver(state(ROMEO));
  await w.unbound();
  assert.equal(w.session.get(CSI), undefined);
  assert.deepEqual(w.counted.slice(-1), ['dropped session-end 2']);
  assert.deepEqual(w.wire, [pres(ROMEO)]);
});

test('held bytes are a copy: a transport reusing its buffer does not change them', async () => {
  const w = world();
  await w.nonza('bound', 'inactive');
  const data = enc.encode(pres(ROMEO));
  const result = w.registry.runSync('session/deliver', {
    session: w.session, kind: 'presence', data, routing, replace: () => undefined, stanza: () => parseDelivered(data),
  });
  assert.equal(result, 'stop');
  data.fill(0x20);
  await w.nonza('bound', 'active');
  assert.deepEqual(w.wire, [pres(ROMEO)]);
});
