/**
 * What the stream-layer tests run against: the real runtime, SASL and
 * embedded store, an in-process bus, a fake router that records what it is
 * given, and a registry built from hand-made modules — no sockets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Element } from 'ltx';
import { defaultConfig, type HyphaeConfig } from '@hyphae/config';
import { createMemoryBus } from '@hyphae/bus';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { createLogger, createMetrics, type Metrics } from '@hyphae/observability';
import { createScramClient, deriveCredentials, plainMessage } from '@hyphae/sasl';
import { UserActors, USER_SUBJECT_PREFIX, OP_HEADER } from '@hyphae/router';
import { ModuleRegistry, type LoadedModule, type ModuleInstance, type Routing } from '@hyphae/module-api';
import type { JID } from '@hyphae/jid';
import { C2sRuntime } from './runtime.js';
import { ClientStream } from './stream.js';
import { MemoryTransport, type MemoryTransportOptions } from './memory-transport.js';

export const DOMAIN = 'example.org';
export const PASSWORD = 'pencil';
const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

/** A router that records what it routes; `fail` makes route() throw. */
export class FakeRouter implements Routing {
  readonly routed: Array<{ stanza: Element; from: string }> = [];
  fail = false;
  async route(stanza: Element, from: JID): Promise<void> {
    if (this.fail) throw new Error('bus down');
    this.routed.push({ stanza, from: from.toString() });
  }
  async send(): Promise<void> {}
  async sessions() { return []; }
  sessionsNow() { return undefined; }
  async deliverToSession(): Promise<boolean> { return false; }
  async deliverToResources(): Promise<number> { return 0; }
  async closeSessions(): Promise<void> {}
  /** What modules sent to user actors through this router (op and payload). */
  readonly actorCalls: Array<{ op: string; data: string }> = [];
  /** How the user actors answer (default 'ok'): a result word, or a rejection. */
  actorAnswer: (op: string) => Promise<string> = async () => 'ok';
  async toUserActor(_user: JID, op: string, data: Uint8Array): Promise<string> {
    this.actorCalls.push({ op, data: new TextDecoder().decode(data) });
    return this.actorAnswer(op);
  }
  async bounce(): Promise<void> {}
}

/** A registry of hand-made modules (no definitions' create: the instances as given). */
export function registryOf(...instances: Array<ModuleInstance & { name?: string }>): ModuleRegistry {
  const loaded: LoadedModule[] = instances.map((instance, i) => ({
    definition: { name: instance.name ?? `test-${i}`, description: 'test module', specs: [], create: () => instance },
    instance,
  }));
  return new ModuleRegistry(loaded);
}

export interface World {
  config: HyphaeConfig;
  stores: Stores;
  metrics: Metrics;
  router: FakeRouter;
  /** Operations the user actors received (presence-out, roster-iq, session-ended…). */
  actorOps: Array<{ op: string; data: string }>;
  rt: C2sRuntime;
  connect(opts?: MemoryTransportOptions): { stream: ClientStream; t: MemoryTransport };
  /** A connection authenticated with PLAIN and bound to `resource`. */
  login(user: string, resource?: string, opts?: MemoryTransportOptions): Promise<{ stream: ClientStream; t: MemoryTransport }>;
  close(): Promise<void>;
}

export async function createWorld(registry: ModuleRegistry = registryOf(), tweak: (c: HyphaeConfig) => void = () => undefined): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'hy-c2s-'));
  const config: HyphaeConfig = { ...defaultConfig(), domains: [DOMAIN], nodeId: 'c2s-test' };
  tweak(config);
  const stores = await openEmbeddedStores({ dir });
  const bus = createMemoryBus();
  /** What the user actors were sent (op and payload), answered 'ok' like the roster service would. */
  const actorOps: Array<{ op: string; data: string }> = [];
  bus.subscribe(`${USER_SUBJECT_PREFIX}.>`, (msg) => {
    actorOps.push({ op: msg.headers[OP_HEADER] ?? '', data: new TextDecoder().decode(msg.data) });
    msg.respond(new Uint8Array(0));
  });
  const logger = createLogger({ service: 'c2s-test', level: 'silent' });
  const metrics = createMetrics({ service: 'c2s-test', node: 'c2s-test', defaultMetrics: false });
  const router = new FakeRouter();
  const rt = new C2sRuntime({
    config, nodeId: config.nodeId, bus, stores, router, registry, logger, metrics,
    secureContext: createSecureContext(), tlsKey: 'test key', actors: new UserActors(bus, 4),
  });
  const streams: ClientStream[] = [];
  const connect = (opts?: MemoryTransportOptions) => {
    const t = new MemoryTransport(opts);
    const stream = new ClientStream(rt, t);
    streams.push(stream);
    return { stream, t };
  };
  return {
    config, stores, metrics, router, actorOps, rt, connect,
    async login(user, resource = 'r', opts) {
      await addAccount(stores, user);
      const c = connect(opts);
      await authenticate(c.t, user, 'PLAIN');
      c.t.open();
      await c.t.next(); // <open/>
      await c.t.next(); // features
      c.t.receive(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
      const res = await c.t.next();
      if (res.attrs.type !== 'result') throw new Error(`bind failed: ${res.toString()}`);
      await settle();
      return c;
    },
    async close() {
      for (const s of streams) s.fail('system-shutdown');
      await settle();
      await stores.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function addAccount(stores: Stores, user: string): Promise<void> {
  const credentials = await deriveCredentials(PASSWORD, { iterations: 4096 });
  await stores.accounts.create({ username: user, domain: DOMAIN, credentials, createdAt: Date.now() });
}

/** Header, features, SASL with `mechanism`; resolves once <success/> arrived. */
export async function authenticate(t: MemoryTransport, user: string, mechanism: 'PLAIN' | 'SCRAM-SHA-1' | 'SCRAM-SHA-256'): Promise<void> {
  t.open();
  await t.next(); // <open/>
  await t.next(); // features
  if (mechanism === 'PLAIN') {
    t.receive(`<auth xmlns='${SASL}' mechanism='PLAIN'>${plainMessage(user, PASSWORD).toString('base64')}</auth>`);
    const success = await t.next();
    if (success.name !== 'success') throw new Error(`expected <success/>: ${success.toString()}`);
    return;
  }
  const client = createScramClient(mechanism, user, PASSWORD);
  t.receive(`<auth xmlns='${SASL}' mechanism='${mechanism}'>${client.first.toString('base64')}</auth>`);
  const challenge = await t.next();
  if (challenge.name !== 'challenge') throw new Error(`expected a challenge: ${challenge.toString()}`);
  const final = await client.final(Buffer.from(challenge.getText(), 'base64'));
  t.receive(`<response xmlns='${SASL}'>${final.toString('base64')}</response>`);
  const success = await t.next();
  if (success.name !== 'success') throw new Error(`expected <success/>: ${success.toString()}`);
  // The server proves it knows the credentials too (RFC 5802 §3).
  if (!client.verifyServerFinal(Buffer.from(success.getText(), 'base64'))) throw new Error('bad server signature');
}

/** Lets queued stream work, store calls and timers of 0 ms run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}
