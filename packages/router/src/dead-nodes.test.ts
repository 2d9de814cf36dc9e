/**
 * Dead-node marks (dead-nodes.ts): shared with every process through the
 * bus, and ended by a probe the node answers, by sm's node.down, by a bind
 * on the node, or by time.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBus, type Bus } from '@hyphae/bus';
import { DeadNodes } from './dead-nodes.js';
import { EVENTS, H, c2sSubject, encodeEvent } from './delivery.js';

let bus: Bus;
const marks: DeadNodes[] = [];
const watch = (opts: ConstructorParameters<typeof DeadNodes>[0] = {}): DeadNodes => {
  const d = new DeadNodes(opts).attach(bus);
  marks.push(d);
  return d;
};

beforeEach(() => {
  bus = createMemoryBus();
});
afterEach(async () => {
  for (const d of marks.splice(0)) d.detach();
  await bus.close();
});

const sessions = [{ node: 'n1', resource: 'a' }, { node: 'n2', resource: 'b' }];

test('a mark announced by one process hides the node\'s sessions in every other', async () => {
  const here = watch();
  const there = watch();
  here.announce('n1', 10_000);
  await bus.flush();
  assert.deepEqual(there.filter(sessions).map((s) => s.resource), ['b']);
  assert.equal(there.filter([sessions[1]!])[0], sessions[1], 'nothing to leave out: the same entries');
});

test('sm reporting the node down, or a bind on it, ends the mark', async () => {
  const d = watch({ probeEveryMs: 0 });
  d.mark('n1', 10_000);
  bus.publish(EVENTS.nodeDown, encodeEvent({ node: 'n1', sessions: 1 }));
  await bus.flush();
  assert.equal(d.isGone('n1'), false);
  d.mark('n1', 10_000);
  bus.publish(EVENTS.sessionChanged, encodeEvent({ bare: 'x@example.org' }));
  await bus.flush();
  assert.equal(d.isGone('n1'), true, 'an unbind or an update says nothing about the node');
  bus.publish(EVENTS.sessionChanged, encodeEvent({ bare: 'x@example.org', node: 'n1' }));
  await bus.flush();
  assert.equal(d.isGone('n1'), false);
});

test('the mark expires', () => {
  let clock = 0;
  const d = watch({ now: () => clock, probeEveryMs: 0 });
  d.mark('n1', 1_000);
  clock = 999;
  assert.equal(d.isGone('n1'), true);
  clock = 1_000;
  assert.equal(d.isGone('n1'), false);
});

test('a node whose subject is held again (its bus connection came back) is revived by the next probe', async () => {
  const d = watch({ probeEveryMs: 50 });
  d.mark('n1', 60_000);
  await new Promise((r) => setTimeout(r, 160));
  assert.equal(d.isGone('n1'), true, 'still nobody there');
  bus.subscribe(c2sSubject('n1'), (msg) => void msg.respond(new Uint8Array(0), { [H.ack]: 'gone' }));
  await new Promise((r) => setTimeout(r, 160));
  assert.equal(d.isGone('n1'), false);
});
