/**
 * Deliveries to a session: written as they are, synchronously, when no
 * module hooks them; through session/deliver hooks, in order, when one does.
 * And the rest of ClientSession: state, registry flags, lastReceivedAt, close.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Element } from 'ltx';
import { SessionKey, type SessionDeliverEvent } from '@hyphae/module-api';
import { rosterInstance } from '@hyphae/modules';
import { createWorld, registryOf, settle, type World } from './test-world.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

const message = (id: string, body = id) => enc.encode(`<message from='kim@example.org/x' to='max@example.org/m' id='${id}'><body>${body}</body></message>`);

test('with no session/deliver hook, a delivery is written synchronously, byte for byte', async () => {
  w = await createWorld();
  const { t, stream } = await w.login('max', 'm');
  assert.equal(w.rt.deliverHooks, false);
  const data = message('fast');
  const before = t.written.length;
  assert.equal(stream.deliver(data), true);
  assert.equal(t.written.length, before + 1, 'written before deliver() returned');
  assert.equal(t.written[before], data, 'the bytes themselves, not a re-serialization');
  t.drop();
  await settle();
  assert.equal(stream.deliver(message('late')), false, 'gone once the session ended');
});

test('session/deliver hooks drop, replace and delay deliveries; order is kept and every one is acknowledged', async () => {
  const kinds: string[] = [];
  let parsedTwice = true;
  w = await createWorld(registryOf(
    {
      hooks: {
        'session/deliver': async (e: SessionDeliverEvent) => {
          kinds.push(e.kind);
          if (e.kind !== 'message') return undefined; // decided without parsing
          const el = e.stanza();
          parsedTwice &&= e.stanza() === el;
          const body = el.getChildText('body') ?? '';
          // Random delays: a later delivery's hook may finish first.
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)));
          if (body === 'drop') return 'stop';
          if (body === 'replace') e.replace(new Element('message', { id: el.attrs.id, replaced: 'yes' }));
          return undefined;
        },
      },
    },
    { hooks: { 'session/deliver': (e) => (e.kind === 'iq' ? 'stop' : undefined) } },
  ));
  const { t, stream } = await w.login('max', 'm');
  t.drain();
  const before = t.written.length;
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const body = i % 5 === 1 ? 'drop' : i % 5 === 2 ? 'replace' : 'keep';
    const data = i % 10 === 3 ? enc.encode(`<iq type='get' id='q${i}'/>`) : i % 10 === 4 ? enc.encode(`<presence id='p${i}'/>`) : message(`m${i}`, body);
    assert.equal(stream.deliver(data), true, 'acknowledged at once');
    if (i % 10 === 3) continue; // the second module stops iqs
    if (i % 10 === 4) ids.push(`p${i}`);
    else if (body !== 'drop') ids.push(`m${i}`);
  }
  assert.equal(t.written.length, before, 'nothing written synchronously: the hooks run first');
  await stream.session?.settled();
  const out = t.drain();
  assert.deepEqual(out.map((el) => el.attrs.id), ids, 'in the order delivered');
  for (const el of out) {
    const i = Number(String(el.attrs.id).slice(1));
    if (el.name === 'message' && i % 5 === 2) assert.equal(el.attrs.replaced, 'yes');
    else if (el.name === 'message') assert.equal(el.getChildText('body'), 'keep');
  }
  assert.ok(parsedTwice, 'stanza() parses once');
  assert.deepEqual([...new Set(kinds)].sort(), ['iq', 'message', 'presence']);
});

test('hooks that decide at once write synchronously; one that waits holds the later deliveries behind it, in order', async () => {
  w = await createWorld(registryOf({
    hooks: {
      'session/deliver': (e) => {
        if (e.kind !== 'message') return undefined;
        const body = e.stanza().getChildText('body');
        if (body === 'slow') return new Promise((r) => setTimeout(() => r(undefined), 20));
        return body === 'drop' ? 'stop' : undefined;
      },
    },
  }));
  const { t, stream } = await w.login('max', 'm');
  t.drain();
  const before = t.written.length;
  stream.deliver(message('a'));
  stream.deliver(message('b', 'drop'));
  assert.equal(t.written.length, before + 1, 'written (or dropped) before deliver() returned');
  stream.deliver(message('c', 'slow'));
  stream.deliver(message('d'));
  stream.deliver(enc.encode("<presence id='e'/>"));
  assert.equal(t.written.length, before + 1, 'c waits for its hook; d and e wait behind it');
  await stream.session?.settled();
  assert.deepEqual(t.drain().map((el) => el.attrs.id), ['a', 'c', 'd', 'e']);
  stream.deliver(message('f'));
  assert.equal(t.written.length, before + 5, 'synchronous again once nothing waits');
});

test('a failing session/deliver hook is logged and the stanza written as it came', async () => {
  w = await createWorld(registryOf({ hooks: { 'session/deliver': () => { throw new Error('hook bug'); } } }));
  const { t, stream } = await w.login('max', 'm');
  t.drain();
  const data = message('x');
  assert.equal(stream.deliver(data), true);
  await stream.session?.settled();
  assert.deepEqual(t.written.slice(-1).map((d) => dec.decode(d as Uint8Array)), [dec.decode(data)]);
  stream.deliver(message('y'));
  await stream.session?.settled();
  assert.equal(t.drain().length, 2, 'later deliveries still go through');
});

test('ClientSession: state by key, composed registry flags, lastReceivedAt and close', async () => {
  w = await createWorld();
  const { t, stream } = await w.login('nina', 'n');
  const session = stream.session;
  assert.ok(session);
  const key = new SessionKey<{ n: number }>('test');
  const same = new SessionKey<{ n: number }>('test');
  session.set(key, { n: 1 });
  assert.deepEqual(session.get(key), { n: 1 });
  assert.equal(session.get(same), undefined, 'keys are told apart by identity, not by name');
  session.set(key, undefined);
  assert.equal(session.get(key), undefined);

  await Promise.all([session.setFlag('csi', true), session.setFlag('carbons', true), session.setFlag('push', true)]);
  assert.deepEqual((await w.stores.sessions.get('nina@example.org', 'n'))?.flags, ['carbons', 'csi', 'push']);
  await Promise.all([session.setFlag('push', false), session.setFlag('csi', false)]);
  assert.deepEqual((await w.stores.sessions.get('nina@example.org', 'n'))?.flags ?? [], ['carbons']);

  const before = session.lastReceivedAt;
  await new Promise((r) => setTimeout(r, 5));
  t.receive(`<presence type='probe' to='nina@example.org'/>`);
  assert.ok(session.lastReceivedAt > before, 'updated by every chunk');

  t.drain();
  session.close('policy-violation', 'enough');
  const err = t.drain();
  assert.equal(err[0]?.name, 'stream:error');
  assert.equal(err[0]?.getChildElements()[0]?.name, 'policy-violation');
});

test('presence and roster queries go to the user actor (roster module), a bad priority is refused at the edge', async () => {
  w = await createWorld(registryOf(rosterInstance()));
  const { t } = await w.login('olga', 'o');
  t.drain();
  t.receive(`<presence><priority>5</priority></presence>`);
  t.receive(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`);
  t.receive(`<presence><priority>500</priority></presence>`);
  const refused = await t.next();
  assert.ok(refused.getChild('error')?.getChild('bad-request'));
  await settle();
  const ops = w.router.actorCalls;
  assert.deepEqual(ops.map((o) => o.op), ['presence-out', 'roster-iq']);
  assert.match(ops[0]?.data ?? '', /from="olga@example.org\/o"/);
  assert.equal(w.router.routed.length, 0);
  assert.equal((await w.stores.sessions.get('olga@example.org', 'o'))?.priority, 0, 'the actor records it, not the edge');
});

test('a client that does not read: past c2s.maxWriteBufferBytes a delivery is not acknowledged and the stream ends with resource-constraint', async () => {
  w = await createWorld(registryOf(), (c) => {
    c.c2s.maxWriteBufferBytes = 65_536;
  });
  const { t, stream } = await w.login('max', 'm');
  t.drain();
  t.backlog = 65_536;
  assert.equal(stream.deliver(message('fits')), true, 'at the bound: still written');
  t.backlog = 65_537;
  assert.equal(stream.deliver(message('over')), false, 'past it: not acknowledged (the router falls back)');
  const out = t.drain();
  assert.deepEqual(out.filter((el) => el.name === 'message').map((el) => el.attrs.id), ['fits']);
  const err = out.find((el) => el.name === 'stream:error');
  assert.ok(err?.getChild('resource-constraint'), `a stream error: ${out.map((e) => e.toString()).join(' ')}`);
  assert.equal(stream.isBound, false);
  assert.equal(stream.deliver(message('later')), false);
});
