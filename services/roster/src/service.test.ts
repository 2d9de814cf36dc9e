/**
 * The roster service as a cluster runs it: a real nats-server between it and
 * a c2s node (simulated: a subscriber on `xmpp.c2s.<node>` that acks as c2s
 * does), the embedded store behind the registry wrapper every process uses
 * (announceSessionChanges), the standard modules.
 *
 * Run: npx tsc -b services/roster && node --test services/roster/dist/service.test.js
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { hasBinary, startNats, type ServerProcess } from '@hyphae/testkit';
import { connectNatsBus, type Bus } from '@hyphae/bus';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { defaultConfig, type HyphaeConfig } from '@hyphae/config';
import { createLogger, createMetrics } from '@hyphae/observability';
import { ModuleRegistry } from '@hyphae/module-api';
import { standardModules } from '@hyphae/modules';
import { JID } from '@hyphae/jid';
import { announceSessionChanges, UserActors, RESULT_HEADER } from '@hyphae/router';
import { startRoster, type RosterService } from './index.js';

const skip = hasBinary('nats-server') ? false : 'nats-server is not installed';
const DOMAIN = 'example.org';
const NODE = 'c2s-a';
const enc = new TextEncoder();
const dec = new TextDecoder();

interface World {
  bus: Bus;
  stores: Stores;
  config: HyphaeConfig;
  roster: RosterService;
  actors: UserActors;
  /** What the simulated c2s node was given, by session id. */
  delivered: Map<string, Element[]>;
  dir: string;
}

async function until(what: string, ok: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('roster service over NATS', { skip }, () => {
  let nats: ServerProcess;
  let w: World;
  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    await nats?.stop();
  });

  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hy-roster-'));
    const logger = createLogger({ service: 'roster-test', level: 'silent' });
    const metrics = createMetrics({ service: 'roster-test', node: 'roster-test', defaultMetrics: false });
    const bus = await connectNatsBus({ servers: nats.url, name: 'roster-test', logger });
    const stores = await openEmbeddedStores({ dir });
    stores.sessions = announceSessionChanges(stores.sessions, bus);
    const config: HyphaeConfig = { ...defaultConfig(), domains: [DOMAIN], nodeId: 'roster-test' };
    const registry = ModuleRegistry.create(standardModules, { config, stores, storage: stores.storage, bus, logger, metrics, version: 'test' });
    const delivered = new Map<string, Element[]>();
    bus.subscribe(`xmpp.c2s.${NODE}`, (msg) => {
      const sid = msg.headers['hy-sid'] ?? '';
      const list = delivered.get(sid);
      if (list && msg.data.length > 0) list.push(parse(dec.decode(msg.data)));
      msg.respond(new Uint8Array(0), { 'hy-ack': list ? 'ok' : 'gone' });
    });
    await bus.flush();
    const roster = await startRoster({ config, bus, stores, logger, metrics, registry });
    w = { bus, stores, config, roster, actors: new UserActors(bus, config.roster.shards), delivered, dir };
  });

  afterEach(async () => {
    await w.roster.stop();
    await w.bus.close();
    await w.stores.close();
    await rm(w.dir, { recursive: true, force: true });
  });

  async function bind(user: string, resource: string): Promise<string> {
    const sessionId = `${user}-${resource}`;
    await w.stores.accounts.create({ username: user, domain: DOMAIN, credentials: {}, createdAt: 0 }).catch(() => undefined);
    await w.stores.sessions.bind(`${user}@${DOMAIN}`, { resource, sessionId, node: NODE, priority: 0, available: false, boundAt: Date.now() });
    w.delivered.set(sessionId, []);
    return sessionId;
  }

  const send = async (user: string, op: string, xml: string, headers: Record<string, string> = {}): Promise<string> =>
    (await w.actors.send(new JID(user, DOMAIN), op, enc.encode(xml), headers)).headers[RESULT_HEADER] ?? 'ok';

  it('the initial presence comes back to its sender after a roster get (RFC 6121 §4.2.2), though the roster result cached the session as unavailable', async () => {
    // What every client does at login: roster get, then initial presence. The
    // roster result is routed to the full JID, which caches the user's sessions
    // (unavailable) in this process's router; the presence makes the session
    // available and must reach it, whether or not the change event has come
    // back over NATS yet.
    for (let i = 0; i < 20; i++) {
      const sid = await bind(`u${i}`, 'phone');
      const from = `u${i}@${DOMAIN}/phone`;
      assert.equal(await send(`u${i}`, 'roster-iq', `<iq type='get' id='r${i}' from='${from}'><query xmlns='jabber:iq:roster'/></iq>`), 'ok');
      await until(`the roster result of u${i}`, () => (w.delivered.get(sid) ?? []).some((e) => e.name === 'iq'));
      assert.equal(await send(`u${i}`, 'presence-out', `<presence from='${from}'/>`, { 'hy-sid': sid }), 'ok');
    }
    await new Promise((r) => setTimeout(r, 300));
    const missing = Array.from({ length: 20 }, (_, i) => i).filter((i) => !(w.delivered.get(`u${i}-phone`) ?? []).some((e) => e.name === 'presence' && e.attrs.from === `u${i}@${DOMAIN}/phone` && e.attrs.type === undefined));
    assert.deepEqual(missing, [], 'sessions that never got their own presence back');
  });

  it('an available presence from a session the registry does not hold (reaped while alive, or not re-recorded yet) is answered with an error, not dropped', async () => {
    const sid = await bind('lagging', 'phone');
    // sm reaped the node while the session lived (its heartbeats were late under load).
    await w.stores.sessions.unbind(`lagging@${DOMAIN}`, 'phone', sid);
    const from = `lagging@${DOMAIN}/phone`;
    assert.equal(await send('lagging', 'presence-out', `<presence from='${from}'/>`, { 'hy-sid': sid }), 'error');
    // Unavailable from a session that is not there: it is going away anyway.
    assert.equal(await send('lagging', 'presence-out', `<presence from='${from}' type='unavailable'/>`, { 'hy-sid': sid }), 'ok');
    // Replaced by a newer session of the same resource: nothing to answer (it is being closed with <conflict/>).
    await bind('lagging', 'phone');
    assert.equal(await send('lagging', 'presence-out', `<presence from='${from}'/>`, { 'hy-sid': 'an-older-session' }), 'ok');
  });
});
