/**
 * Per-recipient order and nothing silently lost across a bus outage
 * (RFC 6120 §10.1; DESIGN.md invariants 1 and 2), through the router, on
 * the in-process bus wrapped to behave as the NATS bus does while
 * disconnected: a request waits for the connection (within its timeout),
 * then goes; status listeners hear 'disconnected' and 'connected'. node-b
 * is a subscription acking as a c2s node would; it drops its subscription
 * while "NATS restarts" and takes it again a little after this process.
 */
import { describe, test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import {
  BusTimeoutError,
  NoRespondersError,
  createMemoryBus,
  type Bus,
  type BusHandler,
  type BusMessage,
  type BusStatus,
  type Headers,
  type RequestOptions,
  type SubscribeOptions,
  type Subscription,
} from '@hyphae/bus';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { createLogger, createMetrics, type Metrics } from '@hyphae/observability';
import { ModuleRegistry } from '@hyphae/module-api';
import { Router, type RouterOptions } from './router.js';
import { H, c2sSubject } from './delivery.js';

const dec = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The in-process bus as a NATS connection that can go down and come back. */
class FlakyBus implements Bus {
  readonly kind = 'flaky';
  private up = true;
  private readonly listeners = new Set<(s: BusStatus) => void>();
  private waiters: Array<() => void> = [];
  /** Requests whose payload this returns are refused once with "no responders" (a resubscription race). */
  refuseOnce: ((data: string) => boolean) | null = null;
  /** Requests made so far. */
  requests = 0;

  constructor(readonly inner: Bus) {}

  down(): void {
    this.up = false;
    for (const l of this.listeners) l('disconnected');
  }

  back(): void {
    this.up = true;
    for (const l of this.listeners) l('connected');
    for (const w of this.waiters.splice(0)) w();
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    this.inner.publish(subject, data, headers);
  }

  subscribe(subject: string, handler: BusHandler, opts?: SubscribeOptions): Subscription {
    return this.inner.subscribe(subject, handler, opts);
  }

  async request(subject: string, data: Uint8Array, opts?: RequestOptions): Promise<BusMessage> {
    this.requests++;
    const refuse = this.refuseOnce;
    if (refuse && refuse(dec.decode(data))) {
      this.refuseOnce = null;
      throw new NoRespondersError(subject);
    }
    if (!this.up) {
      // As the NATS bus: wait for the connection within the timeout, then send.
      const timeoutMs = opts?.timeoutMs ?? 5000;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.inner.request(subject, data, opts);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  isConnected(): boolean {
    return this.up;
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

interface World {
  flaky: FlakyBus;
  stores: Stores;
  dir: string;
  metrics: Metrics;
  router(opts?: Partial<RouterOptions>): Router;
  /** What alice's session (on this node) received. */
  alice: string[];
  /** Bodies bob's session on node-b received, in order. */
  bob: string[];
  /** node-b takes its subject (again). */
  nodeBUp(): void;
  /** node-b loses its subject (its NATS connection is down). */
  nodeBDown(): void;
}

let w: World;
let routers: Router[] = [];
const aliceJid = parseJid('alice@example.org/phone');

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-lanes-'));
  const flaky = new FlakyBus(createMemoryBus());
  const stores = await openEmbeddedStores({ dir });
  const metrics = createMetrics({ service: 'test', node: 'node-a', defaultMetrics: false });
  const alice: string[] = [];
  const bob: string[] = [];
  let sub: Subscription | null = null;
  const nodeBUp = (): void => {
    sub = flaky.inner.subscribe(c2sSubject('node-b'), (msg) => {
      const ok = msg.headers[H.sid] === 'b1';
      if (ok) bob.push(parse(dec.decode(msg.data)).getChildText('body') ?? '');
      // A publish is not answered (respond() is then false); a request naming no session is a probe or a fence.
      msg.respond(new Uint8Array(0), { [H.ack]: ok ? 'ok' : 'gone' });
    });
  };
  const nodeBDown = (): void => {
    sub?.unsubscribe();
    sub = null;
  };
  nodeBUp();
  await stores.sessions.bind('alice@example.org', { resource: 'phone', sessionId: 'a1', node: 'node-a', priority: 0, available: true, boundAt: 0 });
  await stores.sessions.bind('bob@example.org', { resource: 'desk', sessionId: 'b1', node: 'node-b', priority: 0, available: true, boundAt: 0 });
  await stores.accounts.create({ username: 'bob', domain: 'example.org', credentials: {}, createdAt: 0 });
  const router = (opts: Partial<RouterOptions> = {}): Router => {
    const r = new Router({
      domains: ['example.org'], nodeId: 'node-a', bus: flaky, stores, metrics, registry: ModuleRegistry.of({}), deliveryTimeoutMs: 2_000,
      logger: createLogger({ service: 'test', level: 'silent' }),
      local: { deliver: (sid, data) => sid === 'a1' && alice.push(dec.decode(data)) > 0 },
      ...opts,
    });
    routers.push(r);
    return r;
  };
  w = { flaky, stores, dir, metrics, router, alice, bob, nodeBUp, nodeBDown };
});

afterEach(async () => {
  for (const r of routers.splice(0)) r.close();
  routers = [];
  await w.flaky.close();
  await w.stores.close();
  await rm(w.dir, { recursive: true, force: true });
});

const chat = (n: number): Element => parse(`<message from='alice@example.org/phone' to='bob@example.org/desk' type='chat' id='m${n}'><body>${n}</body></message>`);

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** The ids of the errors alice got, with their condition and type. */
function errorsAtAlice(): string[] {
  return w.alice.map((x) => parse(x)).filter((e) => e.attrs.type === 'error').map((e) => {
    const err = e.getChild('error');
    const condition = err?.getChildElements().find((c) => c.name !== 'text')?.name;
    return `${String(e.attrs.id)}:${String(condition)}:${String(err?.attrs.type)}`;
  });
}

async function heldGauge(): Promise<number> {
  const m = await w.metrics.queueDepth.get();
  return m.values.find((v) => v.labels.queue === 'node-lanes')?.value ?? 0;
}

const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => String(from + i));

test('a NATS restart: what is sent meanwhile is held and reaches the recipient in order once its node is back; nothing lost, no error', async () => {
  const router = w.router();
  let n = 0;
  const send = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      await router.route(chat(n++), aliceJid, 'a1');
      await sleep(5);
    }
  };
  await send(10);
  w.flaky.down();
  w.nodeBDown();
  await send(20);
  const heldDuringOutage = await heldGauge();
  // This process is back first; node-b resubscribes a little later.
  w.flaky.back();
  await send(10);
  w.nodeBUp();
  await send(10);
  await until(() => w.bob.length >= 50);
  await sleep(100);
  assert.deepEqual(w.bob, range(0, 50), 'every message, once, in the order sent');
  assert.deepEqual(errorsAtAlice(), []);
  assert.equal(heldDuringOutage, 20, 'hyphae_queue_depth{queue="node-lanes"}: held while the bus is down');
  assert.equal(await heldGauge(), 0);
});

test('a node briefly without responders (resubscribing): later deliveries wait behind the first, in order', async () => {
  const router = w.router();
  await router.route(chat(0), aliceJid, 'a1');
  await until(() => w.bob.length === 1);
  w.nodeBDown();
  for (let i = 1; i <= 5; i++) await router.route(chat(i), aliceJid, 'a1');
  await sleep(50);
  w.nodeBUp();
  // Sent once node-b is back, while the first ones are still held: they must not overtake them.
  for (let i = 6; i <= 10; i++) await router.route(chat(i), aliceJid, 'a1');
  await until(() => w.bob.length >= 11);
  await sleep(100);
  assert.deepEqual(w.bob, range(0, 11));
  assert.deepEqual(errorsAtAlice(), []);
});

test('held past the hold time: the oldest get a wait error, the later ones still arrive in order', async () => {
  const router = w.router({ holdMs: 300 });
  w.flaky.down();
  for (let i = 0; i < 5; i++) await router.route(chat(i), aliceJid, 'a1');
  await sleep(400);
  for (let i = 5; i < 10; i++) await router.route(chat(i), aliceJid, 'a1');
  await until(() => errorsAtAlice().length === 5);
  w.flaky.back();
  await until(() => w.bob.length >= 5);
  await sleep(100);
  assert.deepEqual(w.bob, range(5, 10));
  assert.deepEqual(errorsAtAlice(), range(0, 5).map((i) => `m${i}:service-unavailable:wait`));
});

test('too much held for one node: the excess is refused at once with a wait error', async () => {
  const router = w.router({ maxHeldPerNode: 3 });
  w.flaky.down();
  for (let i = 0; i < 5; i++) await router.route(chat(i), aliceJid, 'a1');
  await until(() => errorsAtAlice().length === 2);
  assert.deepEqual(errorsAtAlice(), ['m3:service-unavailable:wait', 'm4:service-unavailable:wait']);
  assert.equal(await heldGauge(), 3);
  w.flaky.back();
  await until(() => w.bob.length >= 3);
  assert.deepEqual(w.bob, range(0, 3));
});

test('a delivery refused ("no responders") after a later one to the same session got through is not resent: its sender gets a wait error', async () => {
  const router = w.router();
  w.flaky.refuseOnce = (xml) => xml.includes("id='m1'") || xml.includes('id="m1"');
  for (let i = 0; i < 5; i++) router.route(chat(i), aliceJid, 'a1').catch(assert.fail);
  await until(() => w.bob.length >= 4 && errorsAtAlice().length === 1);
  await sleep(400);
  assert.deepEqual(w.bob, ['0', '2', '3', '4'], 'never 1 after 2');
  assert.deepEqual(errorsAtAlice(), ['m1:service-unavailable:wait']);
});

test('a node that stays silent once the bus has settled is dead: what was held for it falls back (offline rules), no wait', async () => {
  const router = w.router();
  w.nodeBDown();
  await router.route(chat(0), aliceJid, 'a1');
  // No user actors here: the bare JID rules end in service-unavailable (cancel), not a wait error.
  await until(() => errorsAtAlice().length === 1);
  assert.deepEqual(errorsAtAlice(), ['m0:service-unavailable:cancel']);
  assert.deepEqual(w.bob, []);
});

describe('fenced deliveries (a MUC room\'s fan-out)', () => {
  const enc = new TextEncoder();
  const fenced = (router: Router, n: number, outcomes: string[]): void =>
    router.toNode('node-b', 'b1', enc.encode(`<message type='groupchat' id='g${n}'><body>${n}</body></message>`), 'fenced', (o) => void outcomes.push(`${n}:${o}`));

  test('one tick to one node costs two requests (a fence on either side), whatever the number of stanzas', async () => {
    const router = w.router();
    const outcomes: string[] = [];
    const before = w.flaky.requests;
    for (let i = 0; i < 20; i++) fenced(router, i, outcomes);
    await until(() => outcomes.length === 20);
    assert.equal(w.flaky.requests - before, 2);
    assert.deepEqual(w.bob, range(0, 20));
    assert.deepEqual(outcomes, range(0, 20).map((i) => `${i}:delivered`));
  });

  test('a node without responders (after a NATS restart): held, resent in order once it is back, none missed', async () => {
    const router = w.router();
    w.flaky.down();
    w.flaky.back(); // just reconnected: silence does not prove the node dead
    w.nodeBDown();
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) fenced(router, i, outcomes);
    await sleep(100);
    w.nodeBUp();
    for (let i = 5; i < 10; i++) fenced(router, i, outcomes);
    await until(() => outcomes.length === 10);
    assert.deepEqual(w.bob, range(0, 10));
    assert.deepEqual(outcomes, range(0, 10).map((i) => `${i}:delivered`));
  });

  test('no answer to a fence (the node\'s connection broke with them in flight): unanswered, not resent', async () => {
    const router = w.router({ deliveryTimeoutMs: 200 });
    // node-b holds its subject but never answers.
    w.nodeBDown();
    const seen: string[] = [];
    const mute = w.flaky.inner.subscribe(c2sSubject('node-b'), (msg) => void seen.push(dec.decode(msg.data)));
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) fenced(router, i, outcomes);
    await until(() => outcomes.length === 3);
    mute.unsubscribe();
    assert.deepEqual(outcomes, ['0:unanswered', '1:unanswered', '2:unanswered']);
    assert.equal(seen.filter((x) => x !== '').length, 3, 'each published once');
  });
});
