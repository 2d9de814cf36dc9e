import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register as globalRegistry } from 'prom-client';
import { createMetrics, timed } from './index.js';

const NAMES = [
  'hyphae_c2s_connections',
  'hyphae_logins_total',
  'hyphae_stanzas_total',
  'hyphae_routing_latency_seconds',
  'hyphae_bus_latency_seconds',
  'hyphae_store_latency_seconds',
  'hyphae_sessions',
  'hyphae_queue_depth',
  'hyphae_stream_errors_total',
  'hyphae_stanza_errors_total',
  'hyphae_registrations_total',
  'hyphae_nodes_alive',
  'hyphae_reaped_sessions_total',
  'hyphae_bus_connected',
  'hyphae_store_connected',
];

test('every stable metric is registered in a fresh registry with default labels', async () => {
  const m = createMetrics({ service: 'c2s', node: 'n1' });
  m.connections.inc({ transport: 'tcp' });
  m.logins.inc({ result: 'ok', mechanism: 'SCRAM-SHA-256' });
  m.stanzas.inc({ direction: 'in', kind: 'message' });
  m.routingLatency.observe({ path: 'local' }, 0.0003);
  m.sessions.set(2);
  m.queueDepth.set({ queue: 'mailbox' }, 4);
  m.streamErrors.inc({ condition: 'not-well-formed' });
  m.stanzaErrors.inc({ condition: 'service-unavailable' });
  m.registrations.inc({ result: 'ok' });
  m.nodesAlive.set(3);
  m.reapedSessions.inc();
  m.busConnected.set(1);
  m.storeConnected.set(1);
  const text = await m.registry.metrics();
  for (const name of NAMES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  assert.match(text, /^hyphae_c2s_connections\{transport="tcp",service="c2s",node="n1"\} 1$/m);
  assert.match(text, /^hyphae_logins_total\{result="ok",mechanism="SCRAM-SHA-256",service="c2s",node="n1"\} 1$/m);
  assert.match(text, /^hyphae_sessions\{service="c2s",node="n1"\} 2$/m);
  // latency buckets from 100 µs to 1 s
  const buckets = [...text.matchAll(/^hyphae_routing_latency_seconds_bucket\{le="([^"]+)",.*path="local"\} (\d+)$/gm)];
  assert.deepEqual(
    buckets.map((b) => b[1]),
    ['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '+Inf'],
  );
  assert.deepEqual(buckets.slice(0, 3).map((b) => b[2]), ['0', '0', '1']);
  // Node.js default metrics are collected into the same registry
  assert.match(text, /^process_cpu_user_seconds_total\{service="c2s",node="n1"\}/m);
  // and nothing lands in the global registry
  assert.equal(globalRegistry.getSingleMetric('hyphae_sessions'), undefined);
});

test('several instances coexist in one process', async () => {
  const a = createMetrics({ service: 'c2s', node: 'n1', defaultMetrics: false });
  const b = createMetrics({ service: 'sm', node: 'n1', defaultMetrics: false });
  a.sessions.set(1);
  b.sessions.set(5);
  assert.match(await a.registry.metrics(), /^hyphae_sessions\{service="c2s",node="n1"\} 1$/m);
  assert.match(await b.registry.metrics(), /^hyphae_sessions\{service="sm",node="n1"\} 5$/m);
  assert.doesNotMatch(await a.registry.metrics(), /process_cpu/);
});

test('timed records the duration on success and on failure', async () => {
  const m = createMetrics({ service: 'sm', node: 'n1', defaultMetrics: false });
  const v = await timed(m.storeLatency, { op: 'get' }, async () => {
    await new Promise((r) => setTimeout(r, 5));
    return 42;
  });
  assert.equal(v, 42);
  await assert.rejects(
    timed(m.busLatency, { op: 'request' }, async () => {
      throw new Error('no responders');
    }),
    /no responders/,
  );
  const store = (await m.storeLatency.get()).values.find((x) => x.metricName === 'hyphae_store_latency_seconds_count');
  assert.equal(store?.value, 1);
  assert.equal(store?.labels.op, 'get');
  const sum = (await m.storeLatency.get()).values.find((x) => x.metricName === 'hyphae_store_latency_seconds_sum');
  assert.ok(sum && sum.value >= 0.004, `duration recorded: ${sum?.value}`);
  const bus = (await m.busLatency.get()).values.find((x) => x.metricName === 'hyphae_bus_latency_seconds_count');
  assert.equal(bus?.value, 1);
});
