/**
 * The service's stanzas (XEP-0065 §4 discovery and streamhost, §6.3.5
 * activation and its errors) through the bus subject the router uses,
 * with replies routed back to a stand-in c2s node; and two instances on
 * one bus, where the activation is handled by the one that does not hold
 * the connections.
 */
import { ModuleRegistry } from '@hyphae/module-api';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import { createMemoryBus, type Bus, type Subscription } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import { PROXY65_SUBJECT } from '@hyphae/router';
import { startProxy65, dstAddr, NS_BYTESTREAMS, type Proxy65Service } from './index.js';
import {
  DOMAIN, FakeC2s, PROXY, errorCondition, errorType, metric, quietLogger, sleep, socksConnect, tempStores, testConfig, testMetrics, waitFor,
} from './test-helpers.js';

type ProxyOverrides = Parameters<typeof testConfig>[1];

const ALICE = `alice@${DOMAIN}/laptop`;
const BOB = `bob@${DOMAIN}/phone`;
const MALLORY = `mallory@${DOMAIN}/x`;

interface World {
  bus: Bus;
  stores: Stores;
  c2s: FakeC2s;
  start(nodeId: string, proxy?: ProxyOverrides, bus?: Bus): Promise<{ svc: Proxy65Service; metrics: ReturnType<typeof testMetrics> }>;
  close(): Promise<void>;
}

async function world(): Promise<World> {
  const bus = createMemoryBus();
  const { stores, dispose } = await tempStores();
  const c2s = new FakeC2s(bus, stores);
  for (const u of [ALICE, BOB, MALLORY, `alice@${DOMAIN}/phone`]) await c2s.login(u);
  const started: Proxy65Service[] = [];
  return {
    bus, stores, c2s,
    async start(nodeId, proxy = {}, svcBus = bus) {
      const metrics = testMetrics(nodeId);
      const svc = await startProxy65({ config: testConfig(nodeId, proxy), bus: svcBus, stores, logger: quietLogger(), metrics, registry: ModuleRegistry.of({}) });
      started.push(svc);
      return { svc, metrics };
    },
    async close() {
      for (const s of started) await s.stop();
      await bus.close();
      await dispose();
    },
  };
}

const activateXml = (sid: string | null, target: string | null): string =>
  `<query xmlns='${NS_BYTESTREAMS}'${sid === null ? '' : ` sid='${sid}'`}>${target === null ? '' : `<activate>${target}</activate>`}</query>`;

function expectError(el: Element, condition: string, type?: string): void {
  assert.equal(errorCondition(el), condition, el.toString());
  if (type) assert.equal(errorType(el), type);
}

test('disco#info, disco#items and the streamhost answer', async () => {
  const w = await world();
  try {
    const { svc } = await w.start('p1', { advertisedHost: 'files.example.org', advertisedPort: 7625 });
    assert.deepEqual(svc.domains, [PROXY]);
    assert.deepEqual(svc.streamhost, { host: 'files.example.org', port: 7625 });

    const info = await w.c2s.iq(ALICE, 'get', `<query xmlns='http://jabber.org/protocol/disco#info'/>`);
    assert.equal(info.attrs.type, 'result');
    assert.equal(info.attrs.from, PROXY);
    assert.equal(info.attrs.to, ALICE);
    const q = info.getChild('query', 'http://jabber.org/protocol/disco#info');
    assert.ok(q);
    assert.deepEqual(q.getChildren('identity').map((i) => [i.attrs.category, i.attrs.type]), [['proxy', 'bytestreams']]);
    assert.ok(q.getChildren('identity')[0]?.attrs.name);
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(NS_BYTESTREAMS));
    assert.ok(features.includes('http://jabber.org/protocol/disco#info'));

    const items = await w.c2s.iq(ALICE, 'get', `<query xmlns='http://jabber.org/protocol/disco#items'/>`);
    assert.equal(items.attrs.type, 'result');
    assert.equal(items.getChild('query')?.getChildElements().length, 0);

    const sh = await w.c2s.iq(ALICE, 'get', `<query xmlns='${NS_BYTESTREAMS}'/>`);
    assert.equal(sh.attrs.type, 'result');
    const hosts = sh.getChild('query', NS_BYTESTREAMS)?.getChildren('streamhost') ?? [];
    assert.deepEqual(hosts.map((h) => h.attrs), [{ jid: PROXY, host: 'files.example.org', port: '7625' }]);

    // Without advertised values: the bound address.
    const { svc: plain } = await w.start('p2');
    assert.deepEqual(plain.streamhost, { host: '127.0.0.1', port: plain.port });
  } finally {
    await w.close();
  }
});

test('what the service does not serve', async () => {
  const w = await world();
  try {
    const { metrics } = await w.start('p1');
    expectError(await w.c2s.iq(ALICE, 'get', `<ping xmlns='urn:xmpp:ping'/>`), 'service-unavailable', 'cancel');
    expectError(await w.c2s.iq(ALICE, 'get', `<query xmlns='jabber:iq:version'/>`), 'service-unavailable');
    expectError(await w.c2s.iq(ALICE, 'set', `<query xmlns='http://jabber.org/protocol/disco#info'/>`), 'service-unavailable');
    expectError(await w.c2s.iq(ALICE, 'get', `<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>`), 'item-not-found');
    expectError(await w.c2s.iq(ALICE, 'get', `<query xmlns='${NS_BYTESTREAMS}'/>`, `someone@${PROXY}`), 'service-unavailable');
    expectError(await w.c2s.iq(ALICE, 'get', `<query xmlns='${NS_BYTESTREAMS}'/><query xmlns='${NS_BYTESTREAMS}'/>`), 'bad-request');
    // §4: the proxy serves the served domains' users (the answer to a remote
    // user cannot be delivered before s2s exists: counted, not collected).
    await w.c2s.send(`<iq type='get' id='remote' from='eve@elsewhere.net/r' to='${PROXY}'><query xmlns='${NS_BYTESTREAMS}'/></iq>`);
    assert.equal(await metric(metrics.stanzaErrors, { condition: 'forbidden' }), 1);
    // A message gets service-unavailable; presence nothing.
    await w.c2s.send(`<message id='m1' from='${ALICE}' to='${PROXY}'><body>hi</body></message>`);
    await w.c2s.send(`<presence id='p1' from='${ALICE}' to='${PROXY}'/>`);
    await waitFor(() => w.c2s.received.some((e) => e.attrs.id === 'm1'), 3000, 'message bounce');
    await sleep(20);
    const m = w.c2s.received.find((e) => e.attrs.id === 'm1');
    assert.ok(m);
    expectError(m, 'service-unavailable');
    assert.equal(w.c2s.received.some((e) => e.attrs.id === 'p1'), false);
  } finally {
    await w.close();
  }
});

test('activation: malformed requests', async () => {
  const w = await world();
  try {
    await w.start('p1');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(null, BOB)), 'bad-request', 'modify');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml('', BOB)), 'bad-request');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml('s1', null)), 'bad-request');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml('s1', '  ')), 'bad-request');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml('s'.repeat(2000), BOB)), 'bad-request');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml('s1', '@bad@'), ), 'jid-malformed');
  } finally {
    await w.close();
  }
});

test('activation: ok and relay; unknown, wrong requester, wrong target, one side, twice, per-user limit', async () => {
  const w = await world();
  try {
    const { svc, metrics } = await w.start('p1', { maxStreamsPerUser: 1 });
    const sid = 'vxf9n471bn46';
    const hash = dstAddr(sid, ALICE, BOB);

    // Nothing connected: item-not-found (§6.3.5).
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, BOB)), 'item-not-found', 'cancel');

    const target = await socksConnect(svc.port, hash);
    // Only the target is connected: not-allowed (§6.3.5).
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, BOB)), 'not-allowed', 'cancel');
    // The sid is known now. Another 'from' than the requester's: item-not-found (§6.3.5).
    expectError(await w.c2s.iq(MALLORY, 'set', activateXml(sid, BOB)), 'item-not-found');
    expectError(await w.c2s.iq(`alice@${DOMAIN}/phone`, 'set', activateXml(sid, BOB)), 'item-not-found');
    // The requester with another target: the hashes do not match, not-authorized (§6.3.5).
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, `bob@${DOMAIN}/laptop`)), 'not-authorized', 'auth');
    // A sid nobody knows.
    expectError(await w.c2s.iq(ALICE, 'set', activateXml('other-sid', BOB)), 'item-not-found');

    const requester = await socksConnect(svc.port, hash);
    // The target JID is prepared before hashing (case-folded local part, lower-case domain).
    const ok = await w.c2s.iq(ALICE, 'set', activateXml(sid, `BOB@Example.ORG/phone`));
    assert.equal(ok.attrs.type, 'result', ok.toString());
    assert.equal(ok.getChildElements().length, 0);
    requester.socket.write('hello target');
    assert.equal((await target.reader.read(12)).toString(), 'hello target');
    target.socket.write('hello requester');
    assert.equal((await requester.reader.read(15)).toString(), 'hello requester');
    // Activating again.
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, BOB)), 'not-allowed');

    // A second stream of alice's (another resource): over maxStreamsPerUser.
    const sid2 = 'second';
    const hash2 = dstAddr(sid2, `alice@${DOMAIN}/phone`, BOB);
    const t2 = await socksConnect(svc.port, hash2);
    const r2 = await socksConnect(svc.port, hash2);
    expectError(await w.c2s.iq(`alice@${DOMAIN}/phone`, 'set', activateXml(sid2, BOB)), 'resource-constraint', 'wait');
    // Bob may (the limit is per requester).
    const hash3 = dstAddr('third', BOB, ALICE);
    const t3 = await socksConnect(svc.port, hash3);
    const r3 = await socksConnect(svc.port, hash3);
    assert.equal((await w.c2s.iq(BOB, 'set', activateXml('third', ALICE))).attrs.type, 'result');

    assert.equal(await metric(metrics.proxyStreams), 3);
    for (const c of [target, requester, t2, r2, t3, r3]) c.socket.destroy();
    await waitFor(() => svc.streams() === 0, 3000, 'streams freed');
    assert.equal(await metric(metrics.proxyStreams), 0);
    assert.ok(await metric(metrics.stanzaErrors, { condition: 'item-not-found' }) >= 4);
  } finally {
    await w.close();
  }
});

test('a requester using its bare JID as target key, and target given as a bare JID', async () => {
  const w = await world();
  try {
    const { svc } = await w.start('p1');
    const hash = dstAddr('bare', ALICE, `bob@${DOMAIN}`);
    const t = await socksConnect(svc.port, hash);
    const r = await socksConnect(svc.port, hash);
    assert.equal((await w.c2s.iq(ALICE, 'set', activateXml('bare', `bob@${DOMAIN}`))).attrs.type, 'result');
    t.socket.destroy();
    r.socket.destroy();
  } finally {
    await w.close();
  }
});

test('two instances on one bus: each announces its own address; an activation handled by another instance reaches the holder; a party on another instance is forwarded', async () => {
  const w = await world();
  try {
    // Instance A holds the connections but never gets the service's stanzas
    // (its bus hides the service subject), so the activation must cross the bus.
    const hidden: Subscription = { subject: PROXY65_SUBJECT, unsubscribe: () => undefined, drain: async () => undefined };
    const busA: Bus = {
      kind: w.bus.kind,
      publish: (subject, data, headers) => w.bus.publish(subject, data, headers),
      subscribe: (subject, handler, opts) => (subject === PROXY65_SUBJECT ? hidden : w.bus.subscribe(subject, handler, opts)),
      request: (subject, data, opts) => w.bus.request(subject, data, opts),
      flush: () => w.bus.flush(),
      isConnected: () => w.bus.isConnected(),
      onStatus: (listener) => w.bus.onStatus(listener),
      close: async () => undefined,
    };
    const a = await w.start('pa', { advertisedPort: 1111 }, busA);
    const b = await w.start('pb', { advertisedPort: 2222 });
    const c = await w.start('pc', { advertisedPort: 3333 });

    // Streamhost queries are spread over B and C (queue group); each names itself.
    const ports = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const sh = await w.c2s.iq(ALICE, 'get', `<query xmlns='${NS_BYTESTREAMS}'/>`);
      ports.add(String(sh.getChild('query')?.getChild('streamhost')?.attrs.port));
    }
    assert.deepEqual([...ports].sort(), ['2222', '3333']);

    const sid = 'cross-instance';
    const hash = dstAddr(sid, ALICE, BOB);
    const target = await socksConnect(a.svc.port, hash);
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, BOB)), 'not-allowed');
    expectError(await w.c2s.iq(MALLORY, 'set', activateXml(sid, BOB)), 'item-not-found');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, MALLORY)), 'not-authorized');
    const requester = await socksConnect(a.svc.port, hash);
    const res = await w.c2s.iq(ALICE, 'set', activateXml(sid, BOB));
    assert.equal(res.attrs.type, 'result', res.toString());
    assert.equal(a.svc.streams(), 1);
    assert.equal(b.svc.streams() + c.svc.streams(), 0);
    const big = Buffer.alloc(1 << 20, 7);
    requester.socket.end(big);
    assert.equal((await target.reader.readToEnd()).length, big.length);
    assert.equal(await metric(a.metrics.proxyBytes, { direction: 'to-target' }), big.length);
    target.socket.end();
    await waitFor(() => a.svc.streams() === 0, 3000, 'stream freed');

    // The holder's subscriptions are gone with the stream.
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, BOB)), 'item-not-found');
    expectError(await w.c2s.iq(ALICE, 'set', activateXml(sid, MALLORY)), 'item-not-found');

    // The target on A's address, the requester on B's (one StreamHost JID): B forwards it to A.
    const split = dstAddr('split', ALICE, BOB);
    const t2 = await socksConnect(a.svc.port, split);
    const r2 = await socksConnect(b.svc.port, split);
    await waitFor(() => a.svc.sockets() === 2, 3000, 'forwarded leg at the holder');
    assert.equal((await w.c2s.iq(ALICE, 'set', activateXml('split', BOB))).attrs.type, 'result');
    assert.equal(a.svc.streams(), 1);
    assert.equal(b.svc.streams(), 0);
    const payload = Buffer.alloc(3 << 20, 9);
    r2.socket.end(payload);
    assert.equal((await t2.reader.readToEnd()).length, payload.length);
    t2.socket.end('done');
    assert.equal((await r2.reader.readToEnd()).toString(), 'done');
    await waitFor(() => a.svc.streams() === 0 && a.svc.sockets() === 0 && b.svc.sockets() === 0, 3000, 'all freed');
  } finally {
    await w.close();
  }
});

test('at capacity, the streamhost query is answered <not-allowed/> (§4)', async () => {
  const w = await world();
  try {
    const { svc } = await w.start('p1', { maxStreams: 1 });
    const t = await socksConnect(svc.port, dstAddr('s', ALICE, BOB));
    expectError(await w.c2s.iq(ALICE, 'get', `<query xmlns='${NS_BYTESTREAMS}'/>`), 'not-allowed', 'cancel');
    t.socket.destroy();
    await waitFor(() => svc.streams() === 0, 3000, 'freed');
    assert.equal((await w.c2s.iq(ALICE, 'get', `<query xmlns='${NS_BYTESTREAMS}'/>`)).attrs.type, 'result');
  } finally {
    await w.close();
  }
});
