/**
 * XEP-0199: the answers to pings, and server-to-client pings of idle
 * sessions run through the registry's hooks with a fake clock and a fake
 * session (what it was written, whether and how it was closed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { ModuleRegistry, type ClientSession, type HookResult, type Routing, type SessionKey } from '@hyphae/module-api';
import { PINGER, pingInstance, type PingClock, type PingOutcome } from './index.js';

const routing = {} as Routing;

class FakeClock implements PingClock {
  t = 1_000_000;
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now = (): number => this.t;
  schedule = (fn: () => void, ms: number): (() => void) => {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return () => void (timer.live = false);
  };
  get pending(): number {
    return this.timers.filter((x) => x.live).length;
  }
  /** Moves time on, running what falls due in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

interface Fake extends ClientSession {
  written: string[];
  closed: string[];
  lastReceivedAt: number;
}

function setup(idleSeconds = 30, timeoutSeconds = 10) {
  const clock = new FakeClock();
  const outcomes: PingOutcome[] = [];
  const registry = ModuleRegistry.of({ ping: pingInstance({ idle: { idleSeconds, timeoutSeconds }, clock, count: (o) => { outcomes.push(o); } }) });
  const state = new Map<SessionKey<unknown>, unknown>();
  const session: Fake = {
    id: 's1', jid: parseJid('juliet@capulet.lit/balcony'), remoteAddress: '127.0.0.1', lastReceivedAt: clock.t, written: [], closed: [],
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: (data) => { session.written.push(String(data)); },
    setFlag: async () => undefined,
    close: (condition, text) => { session.closed.push(`${condition}: ${text ?? ''}`); },
  };
  const fail = (err: unknown) => assert.fail(String(err));
  const bound = () => registry.lifecycle('session/bound', { session, routing }, fail);
  const unbound = () => registry.lifecycle('session/unbound', { session, routing, reason: 'test' }, fail);
  const out = (xml: string): HookResult | Promise<HookResult> => {
    const stanza = parse(xml) as Element;
    stanza.attrs.from = session.jid.toString();
    return registry.runSync('stanza/out', { stanza, from: session.jid, session, routing });
  };
  /** The client sends something now. */
  const hear = () => void (session.lastReceivedAt = clock.t);
  const pingId = (): string => String((parse(session.written.at(-1) ?? '<x/>') as Element).attrs.id);
  return { clock, outcomes, registry, session, bound, unbound, out, hear, pingId };
}

test('the server and accounts answer pings with an empty result; idleSeconds 0 hooks nothing', () => {
  const registry = ModuleRegistry.of({ ping: pingInstance({ idle: { idleSeconds: 0, timeoutSeconds: 60 } }) });
  assert.ok(registry.findIq('host', 'get', 'urn:xmpp:ping', 'ping'));
  assert.ok(registry.findIq('account', 'get', 'urn:xmpp:ping', 'ping'));
  assert.deepEqual(registry.features('server'), ['urn:xmpp:ping']);
  for (const hook of ['session/bound', 'session/unbound', 'stanza/out'] as const) assert.equal(registry.has(hook), false, hook);
});

test('§4.1: a session idle for idleSeconds gets a ping from the domain to its full JID', async () => {
  const w = setup();
  await w.bound();
  w.clock.advance(29_999);
  assert.deepEqual(w.session.written, []);
  w.clock.advance(1);
  assert.equal(w.session.written.length, 1);
  const iq = parse(w.session.written[0] ?? '') as Element;
  assert.equal(iq.toString(), `<iq type="get" id="${w.pingId()}" from="capulet.lit" to="juliet@capulet.lit/balcony"><ping xmlns="urn:xmpp:ping"/></iq>`);
  assert.match(w.pingId(), /^ping-[0-9a-f]{12}$/);
  assert.deepEqual(w.outcomes, ['sent']);
});

test('traffic re-arms the timer for the rest of the idle period: a busy client is never pinged', async () => {
  const w = setup();
  await w.bound();
  for (let i = 0; i < 10; i++) {
    w.clock.advance(20_000);
    w.hear();
  }
  assert.deepEqual(w.session.written, []);
  w.clock.advance(29_000);
  assert.deepEqual(w.session.written, []);
  w.clock.advance(1_000);
  assert.equal(w.session.written.length, 1, 'pinged 30 s after the last traffic');
});

test('§4.1: the answer (result or error) is swallowed at the edge; the next ping comes after another idle period', async () => {
  for (const type of ['result', 'error']) {
    const w = setup();
    await w.bound();
    w.clock.advance(30_000);
    const id = w.pingId();
    w.clock.advance(2_000);
    w.hear();
    const answer = type === 'result'
      ? `<iq type='result' id='${id}' to='capulet.lit'/>`
      : `<iq type='error' id='${id}'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`;
    assert.equal(w.out(answer), 'stop', type);
    assert.equal(w.out(answer), undefined, 'a second answer with that id is not ours any more');
    w.clock.advance(10_000);
    assert.deepEqual(w.session.closed, [], 'answered: not closed');
    assert.equal(w.session.written.length, 1);
    w.clock.advance(20_000);
    assert.equal(w.session.written.length, 2, 'idle again 30 s after the answer');
    assert.notEqual(w.pingId(), id, 'a fresh id');
    assert.deepEqual(w.outcomes, ['sent', 'answered', 'sent']);
  }
});

test('other stanzas pass: another id, a get, to someone else, and everything while no ping is out', async () => {
  const w = setup();
  await w.bound();
  assert.equal(w.out("<iq type='result' id='x'/>"), undefined);
  w.clock.advance(30_000);
  const id = w.pingId();
  assert.equal(w.out(`<iq type='result' id='other'/>`), undefined);
  assert.equal(w.out(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`), undefined);
  assert.equal(w.out(`<iq type='result' id='${id}' to='romeo@montague.lit/orchard'/>`), undefined);
  assert.equal(w.out(`<message type='chat' id='${id}'><body>hi</body></message>`), undefined);
  assert.equal(w.out(`<iq type='result' id='${id}' to='capulet.lit'/>`), 'stop');
});

test('§4.1: nothing at all within timeoutSeconds of the ping ends the stream with <connection-timeout/>', async () => {
  const w = setup();
  await w.bound();
  w.clock.advance(30_000);
  w.clock.advance(9_999);
  assert.deepEqual(w.session.closed, []);
  w.clock.advance(1);
  assert.deepEqual(w.session.closed, ['connection-timeout: No answer to a ping for 10 s']);
  assert.deepEqual(w.outcomes, ['sent', 'timeout']);
  assert.equal(w.clock.pending, 0, 'no timer left');
  w.clock.advance(300_000);
  assert.equal(w.session.written.length, 1, 'never pinged again');
});

test('any traffic after the ping counts as alive, even without the answer', async () => {
  const w = setup();
  await w.bound();
  w.clock.advance(30_000);
  w.clock.advance(5_000);
  w.hear();
  w.clock.advance(5_000);
  assert.deepEqual(w.session.closed, []);
  assert.equal(w.session.written.length, 1);
  w.clock.advance(25_000);
  assert.equal(w.session.written.length, 2, 'pinged again 30 s after that traffic');
});

test('session/unbound cancels the timer and forgets the state', async () => {
  const w = setup();
  await w.bound();
  assert.equal(w.clock.pending, 1);
  await w.unbound();
  assert.equal(w.clock.pending, 0);
  assert.equal(w.session.get(PINGER), undefined);
  w.clock.advance(120_000);
  assert.deepEqual(w.session.written, []);
  // Unbound while a ping is out: no close afterwards either.
  const v = setup();
  await v.bound();
  v.clock.advance(30_000);
  await v.unbound();
  v.clock.advance(60_000);
  assert.deepEqual(v.session.closed, []);
});
