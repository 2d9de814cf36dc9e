/**
 * The room service runs module code where rooms need it: `room/groupchat`
 * hooks before reflection and iq handlers with target 'room' in the room's
 * actor. A real muc service on the in-process bus and the embedded store;
 * occupants are registry entries on a fake c2s node whose subject we read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Element, parse } from 'ltx';
import { createMemoryBus } from '@hyphae/bus';
import { defaultConfig, type HyphaeConfig } from '@hyphae/config';
import { openEmbeddedStores } from '@hyphae/store';
import { createLogger, createMetrics } from '@hyphae/observability';
import { H, MucRooms, c2sSubject } from '@hyphae/router';
import { parseJid } from '@hyphae/jid';
import { ModuleRegistry } from '@hyphae/module-api';
import { startMuc } from './index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));

test('room/groupchat hooks rewrite or stop reflected messages; room iqs reach module handlers in the room', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-muc-mod-'));
  const stores = await openEmbeddedStores({ dir });
  const bus = createMemoryBus();
  const base = defaultConfig();
  const config: HyphaeConfig = { ...base, domains: ['example.org'], nodeId: 'muc-1', log: { level: 'silent' } };
  let sequence = 0;
  const registry = ModuleRegistry.of({
    tagger: {
      hooks: {
        'room/groupchat': (e) => {
          if (e.reflected.getChildText('body') === 'drop me') return 'stop';
          e.reflected.c('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: e.room.toString(), id: `s${++sequence}` });
          return undefined;
        },
      },
      iq: [{ target: 'room', type: 'get', xmlns: 'urn:example:room', name: 'query', handle: (req) => new Element('query', { xmlns: 'urn:example:room', room: req.to.toString(), asker: req.from.toString() }) }],
    },
  });
  const muc = await startMuc({ config, bus, stores, registry, logger: createLogger({ service: 't', level: 'silent' }), metrics: createMetrics({ service: 't', node: 'muc-1', defaultMetrics: false }) });
  const delivered: Element[] = [];
  bus.subscribe(c2sSubject('c2s-1'), (msg) => {
    delivered.push(parse(dec.decode(msg.data)));
    if (msg.headers[H.kind] !== 'control') msg.respond(new Uint8Array(0), { [H.ack]: 'ok' });
  });
  await stores.sessions.bind('alice@example.org', { resource: 'r', sessionId: 'sa', node: 'c2s-1', priority: 0, available: true, boundAt: 0 });
  const rooms = new MucRooms(bus, config.muc.shards, ['conference.example.org']);
  const room = parseJid('den@conference.example.org');
  const send = (xml: string) => rooms.send(parseJid(String(parse(xml).attrs.to)), enc.encode(xml));
  try {
    await send("<presence from='alice@example.org/r' to='den@conference.example.org/al'/>");
    await settle();
    await send("<message from='alice@example.org/r' to='den@conference.example.org' type='groupchat' id='m1'><body>hello</body></message>");
    await send("<message from='alice@example.org/r' to='den@conference.example.org' type='groupchat' id='m2'><body>drop me</body></message>");
    await send("<iq from='alice@example.org/r' to='den@conference.example.org' type='get' id='q1'><query xmlns='urn:example:room'/></iq>");
    await send("<iq from='alice@example.org/r' to='den@conference.example.org' type='get' id='q2'><query xmlns='urn:example:other'/></iq>");
    await settle(400);
    const groupchat = delivered.filter((d) => d.name === 'message' && d.attrs.type === 'groupchat' && d.getChild('body'));
    assert.deepEqual(groupchat.map((m) => [m.attrs.id, m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id]), [['m1', 's1']], 'tagged once, the stopped one never reflected');
    const answer = delivered.find((d) => d.name === 'iq' && d.attrs.id === 'q1');
    assert.equal(answer?.attrs.type, 'result', String(answer));
    assert.deepEqual(answer?.getChild('query')?.attrs, { xmlns: 'urn:example:room', room: room.toString(), asker: 'alice@example.org/r' });
    const unknown = delivered.find((d) => d.name === 'iq' && d.attrs.id === 'q2');
    assert.equal(unknown?.attrs.type, 'error');
    assert.ok(unknown?.getChild('error')?.getChild('service-unavailable'), String(unknown));
  } finally {
    await muc.stop();
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  }
});
