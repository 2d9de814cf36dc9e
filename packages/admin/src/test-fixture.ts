/** Shared set-up of the unit tests: memory bus, embedded store in a temp dir, a fake user actor and c2s node. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type HyphaeConfig, type DeepPartial } from '@hyphae/config';
import { createMemoryBus, type Bus, type Headers } from '@hyphae/bus';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { H, OP_HEADER, RESULT_HEADER } from '@hyphae/router';
import { createAdmin, type Admin } from './ops.js';

export interface Fixture {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  admin: Admin;
  /** What happened, in order: `actor:<op>:<subject>` (with `account-gone` when the account no longer existed) and `close:<node>:<sid>:<cond>`. */
  timeline: string[];
  controls: Array<{ subject: string; headers: Headers }>;
  /** Binds a session (and heartbeats its node). */
  bind(bare: string, resource: string, node: string, sessionId?: string): Promise<void>;
  close(): Promise<void>;
}

export async function fixture(overrides: DeepPartial<HyphaeConfig> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-admin-'));
  const config = loadConfig({
    file: null,
    env: {},
    overrides: { domains: ['localhost', 'example.org'], nodeId: 'test-node', dataDir: dir, roster: { shards: 8 }, muc: { shards: 4 }, ...overrides },
  });
  const bus = createMemoryBus();
  const stores = await openEmbeddedStores({ dir });
  const timeline: string[] = [];
  const controls: Fixture['controls'] = [];
  const EMPTY = new Uint8Array(0);
  bus.subscribe('xmpp.user.>', async (msg) => {
    const [, , , domain, local] = msg.subject.split('.');
    const exists = (await stores.accounts.get(domain ?? '', local ?? '')) !== null;
    timeline.push(`actor:${msg.headers[OP_HEADER] ?? '?'}:${local}@${domain}${exists ? '' : ':account-gone'}`);
    msg.respond(EMPTY, { [RESULT_HEADER]: 'ok' });
  });
  bus.subscribe('xmpp.c2s.>', (msg) => {
    if (msg.headers[H.kind] !== 'control') return;
    controls.push({ subject: msg.subject, headers: msg.headers });
    timeline.push(`close:${msg.subject.slice('xmpp.c2s.'.length)}:${msg.headers[H.sid]}:${msg.headers[H.cond]}`);
  });
  const admin = createAdmin({ config, bus, stores });
  let n = 0;
  return {
    config, bus, stores, admin, timeline, controls,
    async bind(bare, resource, node, sessionId = `s${++n}`) {
      await stores.sessions.heartbeat(node, 60_000);
      await stores.sessions.bind(bare, { resource, sessionId, node, priority: 0, available: true, boundAt: Date.now() });
    },
    async close() {
      await bus.close();
      await stores.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
