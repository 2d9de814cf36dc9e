import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBus } from '@hyphae/bus';
import { RemoteDomains, S2S_HEADERS, s2sSubject } from './remote.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('requests to a remote domain whose shard has no owner are held and sent again in their order', async () => {
  const bus = createMemoryBus();
  const remote = new RemoteDomains(bus, 8, 2_000, 5_000);
  const outcomes: Promise<string>[] = [];
  for (let i = 0; i < 20; i++) outcomes.push(remote.send('a.example', 'b.example', enc.encode(`m${i}`)));
  // Nobody serves the shard yet ("no responders"); an owner appears a little later.
  await sleep(120);
  const seen: string[] = [];
  bus.subscribe(s2sSubject(8, 'b.example'), (msg) => {
    assert.equal(msg.headers[S2S_HEADERS.local], 'a.example');
    seen.push(dec.decode(msg.data));
    msg.respond(new Uint8Array(0), { [S2S_HEADERS.result]: 'sent' });
  });
  for (let i = 20; i < 30; i++) outcomes.push(remote.send('a.example', 'b.example', enc.encode(`m${i}`)));
  assert.deepEqual(await Promise.all(outcomes), Array(30).fill('sent'));
  assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => `m${i}`));
  await bus.close();
});

test('a domain nobody serves for retryFor is unreachable; a reply that never comes is a timeout', async () => {
  const bus = createMemoryBus();
  const remote = new RemoteDomains(bus, 8, 200, 300);
  assert.equal(await remote.send('a.example', 'nobody.example', enc.encode('x')), 'unreachable');
  bus.subscribe(s2sSubject(8, 'silent.example'), () => undefined);
  assert.equal(await remote.send('a.example', 'silent.example', enc.encode('y')), 'timeout');
  await bus.close();
});

test('the s2s service answering "bounced" is passed on', async () => {
  const bus = createMemoryBus();
  const remote = new RemoteDomains(bus, 8, 1_000);
  bus.subscribe(s2sSubject(8, 'c.example'), (msg) => {
    msg.respond(new Uint8Array(0), { [S2S_HEADERS.result]: 'bounced' });
  });
  assert.equal(await remote.send('a.example', 'c.example', enc.encode('z')), 'bounced');
  await bus.close();
});
