/**
 * Router rules against the real in-process bus and embedded store. A second
 * "node" is simulated by subscribing to its c2s subject and acking as a c2s
 * node would; the local node's sessions are a map.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { createMemoryBus, type Bus, type BusStatus } from '@hyphae/bus';
import { openEmbeddedStores, StoreError, type SessionStore, type Stores } from '@hyphae/store';
import { createLogger, createMetrics } from '@hyphae/observability';
import { Router, type RouterOptions } from './router.js';
import { H, c2sSubject } from './delivery.js';
import { UserActors, RESULT_HEADER, OP_HEADER } from './user-actor.js';
import { announceSessionChanges } from './session-cache.js';
import { discoInstance, pingInstance, versionInstance } from '@hyphae/modules';
import { ModuleRegistry } from '@hyphae/module-api';

const dec = new TextDecoder();

interface World {
  bus: Bus;
  stores: Stores;
  router: Router;
  /** Builds another router of node-a on the same bus (its sessions are `local` too); closed after the test. */
  newRouter(opts?: Partial<RouterOptions>): Router;
  dir: string;
  /** Stanzas delivered to sessions on this node, by session id. */
  local: Map<string, string[]>;
  /** Stanzas delivered to sessions on node-b, by session id. */
  remote: Map<string, string[]>;
  /** node-b answers 'gone' for these session ids. */
  goneOnB: Set<string>;
}

let w: World;

async function bindSession(bare: string, resource: string, node: string, opts: { available?: boolean; priority?: number } = {}): Promise<string> {
  const sessionId = `${node}-${bare}-${resource}`;
  await w.stores.sessions.bind(bare, {
    resource, sessionId, node, priority: opts.priority ?? 0, available: opts.available ?? true, boundAt: Date.now(),
  });
  if (node === 'node-a') w.local.set(sessionId, []);
  else w.remote.set(sessionId, []);
  return sessionId;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await w.bus.flush();
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function got(map: Map<string, string[]>, sid: string): Element[] {
  return (map.get(sid) ?? []).map((s) => parse(s));
}

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-router-'));
  const bus = createMemoryBus();
  const stores = await openEmbeddedStores({ dir });
  let registry: ModuleRegistry | null = null;
  const modules = () => registry ?? assert.fail('registry not built');
  registry = ModuleRegistry.of({
    disco: discoInstance({ modules, items: () => [{ jid: 'conference.example.org', name: 'Rooms' }] }),
    ping: pingInstance(),
    version: versionInstance({ name: 'Hyphae', version: '9.9.9' }),
  });
  const logger = createLogger({ service: 'test', level: 'silent' });
  const local = new Map<string, string[]>();
  const routers: Router[] = [];
  const newRouter = (opts: Partial<RouterOptions> = {}): Router => {
    const r = new Router({
      domains: ['example.org'], nodeId: 'node-a', bus, stores, logger, registry, deliveryTimeoutMs: 500,
      metrics: createMetrics({ service: 'test', node: 'node-a', defaultMetrics: false }),
      local: { deliver: (sid, data) => { const l = local.get(sid); if (!l) return false; l.push(dec.decode(data)); return true; } },
      ...opts,
    });
    routers.push(r);
    return r;
  };
  cleanup = () => { for (const r of routers) r.close(); };
  const router = newRouter();
  const remote = new Map<string, string[]>();
  const goneOnB = new Set<string>();
  bus.subscribe(c2sSubject('node-b'), (msg) => {
    const sid = msg.headers[H.sid] ?? '';
    const l = remote.get(sid);
    const ok = !!l && !goneOnB.has(sid);
    if (ok) l.push(dec.decode(msg.data));
    msg.respond(new Uint8Array(0), { [H.ack]: ok ? 'ok' : 'gone' });
  });
  await stores.accounts.create({ username: 'alice', domain: 'example.org', credentials: {}, createdAt: 0 });
  await stores.accounts.create({ username: 'bob', domain: 'example.org', credentials: {}, createdAt: 0 });
  w = { bus, stores, router, newRouter, dir, local, remote, goneOnB };
});

let cleanup = (): void => undefined;

afterEach(async () => {
  cleanup();
  await w.bus.close();
  await w.stores.close();
  await rm(w.dir, { recursive: true, force: true });
});

const alice = parseJid('alice@example.org/phone');

describe('full JID', () => {
  test('reaches a session on another node, payload unchanged', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    const b = await bindSession('bob@example.org', 'desk', 'node-b');
    const msg = parse("<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat' id='m1'><body>hi &amp; bye</body></message>");
    await w.router.route(msg, alice);
    await settle();
    assert.deepEqual(got(w.remote, b).map((e) => e.getChildText('body')), ['hi & bye']);
    assert.equal(got(w.local, a).length, 0);
  });

  test('keeps the order of 1000 messages', async () => {
    await bindSession('alice@example.org', 'phone', 'node-a');
    const b = await bindSession('bob@example.org', 'desk', 'node-b');
    for (let i = 0; i < 1000; i++) {
      await w.router.route(parse(`<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat'><body>${i}</body></message>`), alice);
    }
    await settle();
    assert.deepEqual(got(w.remote, b).map((e) => Number(e.getChildText('body'))), Array.from({ length: 1000 }, (_, i) => i));
  });

  test('iq to a resource that is not connected gets service-unavailable', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<iq from='alice@example.org/phone' to='bob@example.org/gone' type='get' id='q1'><query xmlns='jabber:iq:version'/></iq>"), alice);
    await settle();
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.type, 'error');
    assert.equal(err?.attrs.id, 'q1');
    assert.equal(err?.attrs.from, 'bob@example.org/gone');
    assert.ok(err?.getChild('error')?.getChild('service-unavailable'));
  });

  test('a node that does not answer (dead) makes the sender get an error, not silence', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'x', node: 'node-dead', priority: 0, available: true, boundAt: 0 });
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat' id='m2'><body>hi</body></message>"), alice);
    await new Promise((r) => setTimeout(r, 100));
    await settle();
    assert.equal(got(w.local, a).length, 0, 'one retry first: the holder may be reconnecting');
    await new Promise((r) => setTimeout(r, 500));
    await settle();
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.type, 'error');
    assert.equal(err?.attrs.id, 'm2');
    assert.ok(err?.getChild('error')?.getChild('service-unavailable'));
  });

  test('a node that holds the session but does not acknowledge in time: the sender gets a wait error, nothing is resent', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    // node-c is subscribed (a bus reconnect ate the request, say) but never answers;
    // bob has sent no presence, so the bare JID rules would store the message offline.
    const seenOnC: string[] = [];
    w.bus.subscribe(c2sSubject('node-c'), (msg) => void seenOnC.push(dec.decode(msg.data)));
    await w.stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'c1', node: 'node-c', priority: 0, available: false, boundAt: 0 });
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat' id='m3'><body>hi</body></message>"), alice);
    await new Promise((r) => setTimeout(r, 700));
    await settle();
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.type, 'error', 'the sender is told');
    assert.equal(err?.attrs.id, 'm3');
    assert.equal(err?.getChild('error')?.attrs.type, 'wait');
    assert.ok(err?.getChild('error')?.getChild('internal-server-error'), err?.toString());
    assert.equal(seenOnC.length, 1, 'sent once: it may have reached the session');
    assert.equal(got(w.local, a).length, 1, 'one answer, not also the bare JID rules\' service-unavailable');
  });

  test('a session gone on its node: chat falls back to the bare JID rules', async () => {
    await bindSession('alice@example.org', 'phone', 'node-a');
    const gone = await bindSession('bob@example.org', 'desk', 'node-b');
    const other = await bindSession('bob@example.org', 'laptop', 'node-b');
    w.goneOnB.add(gone);
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat'><body>hi</body></message>"), alice);
    await new Promise((r) => setTimeout(r, 20));
    await settle();
    // The registry still lists 'desk', so the retry tries both and 'laptop' gets it.
    assert.equal(got(w.remote, other).length, 1);
  });
});

describe('bare JID (RFC 6121 §8.5.2)', () => {
  test('chat goes to the highest non-negative priority only', async () => {
    await bindSession('alice@example.org', 'phone', 'node-a');
    const hi = await bindSession('bob@example.org', 'hi', 'node-b', { priority: 5 });
    const lo = await bindSession('bob@example.org', 'lo', 'node-b', { priority: 1 });
    const neg = await bindSession('bob@example.org', 'neg', 'node-b', { priority: -1 });
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org' type='chat'><body>x</body></message>"), alice);
    await settle();
    assert.equal(got(w.remote, hi).length, 1);
    assert.equal(got(w.remote, lo).length, 0);
    assert.equal(got(w.remote, neg).length, 0);
  });

  test('headline goes to every non-negative resource', async () => {
    await bindSession('alice@example.org', 'phone', 'node-a');
    const hi = await bindSession('bob@example.org', 'hi', 'node-b', { priority: 5 });
    const lo = await bindSession('bob@example.org', 'lo', 'node-b', { priority: 0 });
    const neg = await bindSession('bob@example.org', 'neg', 'node-b', { priority: -5 });
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org' type='headline'><body>x</body></message>"), alice);
    await settle();
    assert.deepEqual([hi, lo, neg].map((s) => got(w.remote, s).length), [1, 1, 0]);
  });

  test('no available resource: the sender is told (service-unavailable)', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await bindSession('bob@example.org', 'idle', 'node-b', { available: false });
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org' type='chat' id='m3'><body>x</body></message>"), alice);
    await settle();
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.id, 'm3');
    assert.ok(err?.getChild('error')?.getChild('service-unavailable'));
  });

  test('groupchat to a bare JID is refused', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await bindSession('bob@example.org', 'desk', 'node-b');
    await w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org' type='groupchat'><body>x</body></message>"), alice);
    await settle();
    assert.ok(got(w.local, a)[0]?.getChild('error')?.getChild('service-unavailable'));
  });

  test('a nonexistent account: iq and message get service-unavailable', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<iq from='alice@example.org/phone' to='nobody@example.org' type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), alice);
    await w.router.route(parse("<message from='alice@example.org/phone' to='nobody@example.org/x' type='chat' id='m'><body>x</body></message>"), alice);
    await settle();
    const errs = got(w.local, a);
    assert.deepEqual(errs.map((e) => [e.attrs.id, !!e.getChild('error')?.getChild('service-unavailable')]), [['i', true], ['m', true]]);
  });

  test('disco#info of an account is answered by the server', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<iq from='alice@example.org/phone' to='bob@example.org' type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), alice);
    await settle();
    const [res] = got(w.local, a);
    assert.equal(res?.attrs.type, 'result');
    assert.equal(res?.getChild('query')?.getChild('identity')?.attrs.category, 'account');
  });
});

describe('server (host) iq', () => {
  test('disco#info lists every module feature; disco#items lists items; node → item-not-found', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='get' id='1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='get' id='2'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='get' id='3'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>"), alice);
    await settle();
    const [info, items, bad] = got(w.local, a);
    const features = info?.getChild('query')?.getChildren('feature').map((f) => f.attrs.var);
    assert.deepEqual(features, ['http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items', 'jabber:iq:version', 'urn:xmpp:ping']);
    assert.equal(info?.getChild('query')?.getChild('identity')?.attrs.type, 'im');
    assert.equal(items?.getChild('query')?.getChild('item')?.attrs.jid, 'conference.example.org');
    assert.ok(bad?.getChild('error')?.getChild('item-not-found'));
  });

  test('ping and version; unknown namespace → service-unavailable; results to the server are dropped', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='get' id='u'><query xmlns='urn:example:unknown'/></iq>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='result' id='r'/>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' type='get' id='self'><ping xmlns='urn:xmpp:ping'/></iq>"), alice);
    await settle();
    const out = got(w.local, a);
    assert.deepEqual(out.map((e) => [e.attrs.id, e.attrs.type]), [['p', 'result'], ['v', 'result'], ['u', 'error'], ['self', 'result']]);
    assert.equal(out[1]?.getChild('query')?.getChildText('version'), '9.9.9');
    assert.ok(out[2]?.getChild('error')?.getChild('service-unavailable'));
  });

  test('remote domains are unreachable until federation: remote-server-not-found', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<message from='alice@example.org/phone' to='x@elsewhere.example' type='chat' id='r'><body>x</body></message>"), alice);
    await w.router.route(parse("<message from='alice@example.org/phone' to='bad@@jid' type='chat' id='j'><body>x</body></message>"), alice);
    await settle();
    const out = got(w.local, a);
    assert.ok(out[0]?.getChild('error')?.getChild('remote-server-not-found'));
    assert.ok(out[1]?.getChild('error')?.getChild('jid-malformed'));
  });

  test('errors are never answered with errors', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.router.route(parse("<message from='alice@example.org/phone' to='nobody@example.org' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"), alice);
    await w.router.route(parse("<iq from='alice@example.org/phone' to='example.org' type='error' id='e'/>"), alice);
    await settle();
    assert.equal(got(w.local, a).length, 0);
  });
});

test('closeSessions sends a control close to every node holding the account', async () => {
  const seen: Array<Record<string, string>> = [];
  w.bus.subscribe(c2sSubject('node-c'), (m) => { seen.push(m.headers); });
  await w.stores.sessions.bind('bob@example.org', { resource: 'r1', sessionId: 's1', node: 'node-c', priority: 0, available: true, boundAt: 0 });
  await w.router.closeSessions('bob@example.org', 'not-authorized', 'Account deleted');
  await settle();
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.[H.ctl], 'close');
  assert.equal(seen[0]?.[H.sid], 's1');
  assert.equal(seen[0]?.[H.cond], 'not-authorized');
});

test('modules that claim the same iq are refused at start', () => {
  const m = { iq: [{ target: 'host' as const, type: 'get' as const, xmlns: 'x', name: 'q', handle: () => null }] };
  assert.throws(() => ModuleRegistry.of({ a: m, b: m }), /two modules handle host get x q \(b\)/);
});


test('broadcast presence reaches the user\'s own available resources (RFC 6121 §4.2.2)', async () => {
  const me = await bindSession('alice@example.org', 'phone', 'node-a');
  const other = await bindSession('alice@example.org', 'desk', 'node-b');
  const idle = await bindSession('alice@example.org', 'idle', 'node-b', { available: false });
  await w.router.route(parse("<presence from='alice@example.org/phone'><show>away</show></presence>"), alice);
  await settle();
  assert.equal(got(w.local, me)[0]?.getChildText('show'), 'away');
  assert.equal(got(w.remote, other).length, 1);
  assert.equal(got(w.remote, idle).length, 0);
  // Unavailable presence does not go back to the resource that sent it.
  await w.stores.sessions.update('alice@example.org', 'phone', me, { available: false });
  await w.router.route(parse("<presence from='alice@example.org/phone' type='unavailable'/>"), alice);
  await settle();
  assert.equal(got(w.local, me).length, 1);
  assert.equal(got(w.remote, other)[1]?.attrs.type, 'unavailable');
});

/** `target` with some members replaced (class instances keep their own methods). */
function overriding<T extends object>(target: T, over: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(over, prop)) return over[prop as keyof T];
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(t) : v;
    },
  });
}

/** The session registry with `list` failing the way Redis does when it is gone (ioredis's commandTimeout). */
function failingList(sessions: SessionStore, failing: { on: boolean }): SessionStore {
  return overriding(sessions, {
    list: (bare: string) => (failing.on ? Promise.reject(new StoreError('list sessions failed: Command timed out')) : sessions.list(bare)),
  });
}

/** Runs `fn` and returns the unhandled rejections seen meanwhile (and shortly after). */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (reason: unknown): void => void seen.push(reason);
  process.on('unhandledRejection', record);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('unhandledRejection', record);
  }
  return seen;
}

async function until(cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const chat = (to: string, id: string, body: string): Element =>
  parse(`<message from='alice@example.org/phone' to='${to}' type='chat' id='${id}'><body>${body}</body></message>`);

describe('a backend failing after a delivery (DESIGN.md invariant 7)', () => {
  test('the registry fails when a "gone" falls back: the sender gets a wait error on its session, nothing is unhandled', async () => {
    const failing = { on: false };
    const router = w.newRouter({ stores: { ...w.stores, sessions: failingList(w.stores.sessions, failing) } });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    const b = await bindSession('bob@example.org', 'desk', 'node-b');
    await router.route(chat('bob@example.org/desk', 'm0', 'first'), alice, a); // bob's entry is cached now
    await settle();
    assert.equal(got(w.remote, b).length, 1);
    // Bob closes his stream (his node answers "gone") while Redis is unreachable.
    w.goneOnB.add(b);
    failing.on = true;
    const unhandled = await unhandledDuring(async () => {
      await router.route(chat('bob@example.org/desk', 'm1', 'second'), alice, a);
      await until(() => got(w.local, a).length > 0);
    });
    assert.deepEqual(unhandled, []);
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.type, 'error');
    assert.equal(err?.attrs.id, 'm1');
    assert.equal(err?.attrs.to, 'alice@example.org/phone');
    assert.equal(err?.getChild('error')?.attrs.type, 'wait');
    assert.ok(err?.getChild('error')?.getChild('internal-server-error'), err?.toString());
  });

  test('the same to a bare JID, the sender reached through the cached registry (no origin given)', async () => {
    const failing = { on: false };
    const router = w.newRouter({ stores: { ...w.stores, sessions: failingList(w.stores.sessions, failing) } });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    const b = await bindSession('bob@example.org', 'desk', 'node-b');
    await router.sessions('alice@example.org');
    await router.route(chat('bob@example.org', 'm0', 'first'), alice);
    await settle();
    assert.equal(got(w.remote, b).length, 1);
    w.goneOnB.add(b);
    failing.on = true;
    const unhandled = await unhandledDuring(async () => {
      await router.route(chat('bob@example.org', 'm1', 'second'), alice);
      await until(() => got(w.local, a).length > 0);
    });
    assert.deepEqual(unhandled, []);
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.id, 'm1');
    assert.equal(err?.getChild('error')?.attrs.type, 'wait');
  });

  test('a failure before the hand-off rejects route() (its caller answers the sender)', async () => {
    const router = w.newRouter({ stores: { ...w.stores, sessions: failingList(w.stores.sessions, { on: true }) } });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await assert.rejects(router.route(chat('bob@example.org/desk', 'm', 'x'), alice, a), { name: 'StoreError' });
  });
});

describe('a dead node: its users count as offline (RFC 6121 §8.5.2.2.1)', () => {
  /** Stands in for the roster service's user actors: stores every 'offline' message, in arrival order. */
  function offlineStorage(): string[] {
    const stored: string[] = [];
    w.bus.subscribe('xmpp.user.>', (msg) => {
      if (msg.headers[OP_HEADER] === 'offline') stored.push(parse(dec.decode(msg.data)).getChildText('body') ?? '');
      msg.respond(new Uint8Array(0), { [RESULT_HEADER]: 'stored' });
    });
    return stored;
  }

  test('nobody holds the node\'s subject, the registry still lists the session: chat goes to offline storage, in order, no error', async () => {
    const stored = offlineStorage();
    const router = w.newRouter({ actors: new UserActors(w.bus, 4) });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'dead-1', node: 'node-dead', priority: 0, available: true, boundAt: 0 });
    await router.sessions('bob@example.org'); // cached, as on a node that talked to bob before
    await router.route(chat('bob@example.org/desk', 'm1', '1'), alice, a);
    await new Promise((r) => setTimeout(r, 50));
    // Meets the same silence while the node is being looked at: waits for that look, in order.
    await router.route(chat('bob@example.org', 'm2', '2'), alice, a);
    await until(() => stored.length === 2);
    // Known dead now: no look, straight to storage.
    const t0 = performance.now();
    await router.route(chat('bob@example.org/desk', 'm3', '3'), alice, a);
    await until(() => stored.length === 3);
    assert.ok(performance.now() - t0 < 200, `stored after ${performance.now() - t0} ms`);
    await settle();
    assert.deepEqual(stored, ['1', '2', '3']);
    assert.deepEqual(got(w.local, a).map((e) => e.toString()), [], 'no error to the sender');
  });

  test('the node comes back (a session binds on it): its sessions count again', async () => {
    const stored = offlineStorage();
    const router = w.newRouter({ actors: new UserActors(w.bus, 4) });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'old', node: 'node-c', priority: 0, available: true, boundAt: 0 });
    await router.route(chat('bob@example.org', 'm1', 'while dead'), alice, a);
    await until(() => stored.length === 1);
    // node-c restarts with the same id and bob binds there again.
    const seenOnC: string[] = [];
    w.bus.subscribe(c2sSubject('node-c'), (msg) => {
      const ok = msg.headers[H.sid] === 'new';
      if (ok) seenOnC.push(parse(dec.decode(msg.data)).getChildText('body') ?? '');
      msg.respond(new Uint8Array(0), { [H.ack]: ok ? 'ok' : 'gone' });
    });
    await w.stores.sessions.unbind('bob@example.org', 'desk', 'old');
    await announceSessionChanges(w.stores.sessions, w.bus).bind('bob@example.org', { resource: 'desk', sessionId: 'new', node: 'node-c', priority: 0, available: true, boundAt: 1 });
    await settle();
    await router.route(chat('bob@example.org', 'm2', 'live again'), alice, a);
    await until(() => seenOnC.length === 1);
    assert.deepEqual(seenOnC, ['live again']);
    assert.deepEqual(stored, ['while dead']);
    assert.equal(got(w.local, a).length, 0);
  });

  test('a live node that no longer holds a session the registry still lists: service-unavailable, not offline storage', async () => {
    // The offline module's own check for an available resource would read the
    // same stale entry and hand the message back to routing.
    const stored = offlineStorage();
    const router = w.newRouter({ actors: new UserActors(w.bus, 4) });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    const b = await bindSession('bob@example.org', 'desk', 'node-b');
    w.goneOnB.add(b); // its stream closed; the unbind has not reached the registry
    await router.route(chat('bob@example.org/desk', 'm1', 'x'), alice, a);
    await until(() => got(w.local, a).length === 1);
    assert.ok(got(w.local, a)[0]?.getChild('error')?.getChild('service-unavailable'));
    assert.deepEqual(stored, []);
  });

  test('right after this process\'s bus reconnected, silence proves nothing: a wait error, nothing stored', async () => {
    const stored = offlineStorage();
    let emit: (s: BusStatus) => void = () => undefined;
    const bus = overriding(w.bus, { onStatus: (l: (s: BusStatus) => void) => ((emit = l), () => undefined) });
    const router = w.newRouter({ bus, actors: new UserActors(w.bus, 4) });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await w.stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'd', node: 'node-slow', priority: 0, available: true, boundAt: 0 });
    emit('connected'); // a NATS restart: node-slow may not have resubscribed yet
    await router.route(chat('bob@example.org/desk', 'm1', 'x'), alice, a);
    await until(() => got(w.local, a).length === 1);
    const [err] = got(w.local, a);
    assert.equal(err?.getChild('error')?.attrs.type, 'wait');
    assert.ok(err?.getChild('error')?.getChild('service-unavailable'), err?.toString());
    assert.deepEqual(stored, []);
  });
});

describe('offline storage finds a resource available after all (the actor answers "available")', () => {
  test('the router routes the message again itself: the new resource gets it, nothing stored, no error', async () => {
    const router = w.newRouter({ actors: new UserActors(w.bus, 4) });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    let b = '';
    let asked = 0;
    w.bus.subscribe('xmpp.user.>', (msg) => {
      asked++;
      // Bob's initial presence lands between the router's lookup and the actor's.
      void bindSession('bob@example.org', 'desk', 'node-b').then((sid) => {
        b = sid;
        msg.respond(new Uint8Array(0), { [RESULT_HEADER]: 'available' });
      });
    });
    await w.stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'x', node: 'node-b', priority: 0, available: false, boundAt: 0 });
    await router.route(chat('bob@example.org', 'm1', 'hello'), alice, a);
    await until(() => b !== '' && got(w.remote, b).length === 1);
    assert.equal(got(w.remote, b)[0]?.getChildText('body'), 'hello');
    assert.equal(asked, 1);
    await settle();
    assert.deepEqual(got(w.local, a), [], 'no error to the sender');
  });

  test('"available" twice in a row (the registry keeps changing): the sender gets a wait error, never silence', async () => {
    const router = w.newRouter({ actors: new UserActors(w.bus, 4) });
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    let asked = 0;
    w.bus.subscribe('xmpp.user.>', (msg) => {
      asked++;
      msg.respond(new Uint8Array(0), { [RESULT_HEADER]: 'available' });
    });
    await router.route(chat('bob@example.org', 'm1', 'hello'), alice, a);
    await until(() => got(w.local, a).length === 1);
    const err = got(w.local, a)[0]?.getChild('error');
    assert.equal(err?.attrs.type, 'wait');
    assert.ok(err?.getChild('resource-constraint'), String(err));
    assert.equal(asked, 2);
  });
});

describe('while the registry is being re-recorded (the store lost it)', () => {
  /** The store reports a loss `ms` long (StoreEpoch.recovering), as after Redis came back empty. */
  function recoveringFor(ms: number): void {
    const until = Date.now() + ms;
    const real = w.stores.coordination.epoch.bind(w.stores.coordination);
    w.stores.coordination.epoch = async () => {
      const e = await real();
      const recovering = Date.now() < until;
      return { ...e, afterLoss: true, recovering };
    };
  }

  test('a message to a session not re-recorded yet waits for it, then is delivered (not stored offline, not bounced)', async () => {
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    recoveringFor(2_000);
    const routed = w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat' id='m1'><body>hi</body></message>"), alice);
    await new Promise((r) => setTimeout(r, 400));
    const b = await bindSession('bob@example.org', 'desk', 'node-b'); // node-b's heartbeat re-records it
    await routed;
    await settle();
    assert.deepEqual(got(w.remote, b).map((e) => e.attrs.id), ['m1']);
    assert.deepEqual(got(w.local, a), [], 'no error to the sender');
  });

  test('a message to a bare JID waits for an available resource too', async () => {
    await bindSession('alice@example.org', 'phone', 'node-a');
    recoveringFor(2_000);
    const routed = w.router.route(parse("<message from='alice@example.org/phone' to='bob@example.org' type='chat' id='m2'><body>hi</body></message>"), alice);
    await new Promise((r) => setTimeout(r, 400));
    const b = await bindSession('bob@example.org', 'desk', 'node-b');
    await routed;
    await settle();
    assert.deepEqual(got(w.remote, b).map((e) => e.attrs.id), ['m2']);
  });

  test('the error for a recipient that never comes back is answered once the window closes, and reaches a sender re-recorded meanwhile', async () => {
    recoveringFor(800);
    const started = Date.now();
    // alice's own session is not back yet either.
    const routed = w.router.route(parse("<iq from='alice@example.org/phone' to='bob@example.org/gone' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>"), alice);
    await new Promise((r) => setTimeout(r, 300));
    const a = await bindSession('alice@example.org', 'phone', 'node-a');
    await routed;
    await settle();
    const [err] = got(w.local, a);
    assert.equal(err?.attrs.type, 'error');
    assert.equal(err?.getChild('error')?.getChild('service-unavailable') !== undefined, true, err?.toString());
    assert.ok(Date.now() - started >= 700, 'answered once the recovery window was over');
  });
});
