/**
 * XEP-0045 §7.4: the room reflects a groupchat message to every occupant.
 * When an occupant's c2s node does not acknowledge its copy (its
 * connection to the bus broke with the copy in flight), the sender is told
 * with a wait error — never a silent partial broadcast (DESIGN.md
 * invariant 2). A real muc service on the in-process bus, wrapped so that
 * requests to one node fail as a lost NATS request does (a timeout);
 * occupants are registry entries on two fake c2s nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { BusTimeoutError, createMemoryBus, type Bus } from '@hyphae/bus';
import { defaultConfig, type HyphaeConfig } from '@hyphae/config';
import { openEmbeddedStores } from '@hyphae/store';
import { createLogger, createMetrics } from '@hyphae/observability';
import { H, MucRooms, c2sSubject } from '@hyphae/router';
import { parseJid } from '@hyphae/jid';
import { ModuleRegistry } from '@hyphae/module-api';
import { startMuc } from './index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `inner`, except that while `lost.on` a request to `subject` times out at once (sent, never acknowledged). */
function losing(inner: Bus, subject: string, lost: { on: boolean }): Bus {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'request') {
        return (s: string, data: Uint8Array, opts?: { timeoutMs?: number }) =>
          lost.on && s === subject ? Promise.reject(new BusTimeoutError(s, opts?.timeoutMs ?? 0)) : target.request(s, data, opts);
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('a groupchat copy an occupant\'s node did not acknowledge: its sender gets <recipient-unavailable/> (wait); all acknowledged: no error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-muc-fan-'));
  const stores = await openEmbeddedStores({ dir });
  const inner = createMemoryBus();
  const lost = { on: false };
  const bus = losing(inner, c2sSubject('c2s-2'), lost);
  const config: HyphaeConfig = { ...defaultConfig(), domains: ['example.org'], nodeId: 'muc-1', log: { level: 'silent' } };
  const muc = await startMuc({
    config, bus, stores, registry: ModuleRegistry.of({}),
    logger: createLogger({ service: 't', level: 'silent' }), metrics: createMetrics({ service: 't', node: 'muc-1', defaultMetrics: false }),
  });
  const at: Record<string, Element[]> = { 'c2s-1': [], 'c2s-2': [] };
  for (const node of ['c2s-1', 'c2s-2'] as const) {
    // As a c2s node: a stanza for a session is written and acknowledged; a request naming none (a fence) is answered 'gone'.
    inner.subscribe(c2sSubject(node), (msg) => {
      const sid = msg.headers[H.sid];
      if (sid) at[node]?.push(parse(dec.decode(msg.data)));
      msg.respond(new Uint8Array(0), { [H.ack]: sid ? 'ok' : 'gone' });
    });
  }
  await stores.sessions.bind('alice@example.org', { resource: 'r', sessionId: 'sa', node: 'c2s-1', priority: 0, available: true, boundAt: 0 });
  await stores.sessions.bind('bob@example.org', { resource: 'r', sessionId: 'sb', node: 'c2s-2', priority: 0, available: true, boundAt: 0 });
  const rooms = new MucRooms(inner, config.muc.shards, ['conference.example.org']);
  const send = (xml: string) => rooms.send(parseJid(String(parse(xml).attrs.to)), enc.encode(xml));
  const groupchat = (id: string) => send(`<message from='alice@example.org/r' to='den@conference.example.org' type='groupchat' id='${id}'><body>${id}</body></message>`);
  const errorsAtAlice = () => (at['c2s-1'] ?? []).filter((e) => e.name === 'message' && e.attrs.type === 'error');
  try {
    await send("<presence from='alice@example.org/r' to='den@conference.example.org/al'/>");
    await sleep(100);
    await send("<presence from='bob@example.org/r' to='den@conference.example.org/bo'/>");
    await sleep(100);
    await groupchat('m1');
    await sleep(200);
    assert.deepEqual(errorsAtAlice().map(String), [], 'everyone acknowledged m1');
    lost.on = true;
    await groupchat('m2');
    await sleep(200);
    const [err] = errorsAtAlice();
    assert.equal(err?.attrs.id, 'm2', String(err));
    assert.equal(err?.attrs.from, 'den@conference.example.org');
    assert.equal(err?.getChild('error')?.attrs.type, 'wait');
    assert.ok(err?.getChild('error')?.getChild('recipient-unavailable'), String(err));
    assert.equal(errorsAtAlice().length, 1, 'one error for the message, not one per missed session');
    const reflected = (at['c2s-1'] ?? []).filter((e) => e.attrs.type === 'groupchat' && e.getChild('body')).map((e) => e.attrs.id);
    assert.deepEqual(reflected, ['m1', 'm2'], 'the sender\'s own copy arrived');
  } finally {
    await muc.stop();
    await inner.close();
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  }
});
