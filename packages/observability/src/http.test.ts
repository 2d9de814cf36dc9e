import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { createMetrics, startHttpServer, type HealthCheck, type HttpServerHandle } from './index.js';

async function withServer(
  checks: HealthCheck[],
  fn: (base: string, h: HttpServerHandle) => Promise<void>,
  checkTimeoutMs?: number,
): Promise<void> {
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  metrics.sessions.set(7);
  const h = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: metrics.registry,
    checks,
    ...(checkTimeoutMs === undefined ? {} : { checkTimeoutMs }),
  });
  try {
    assert.ok(h.port > 0);
    await fn(`http://127.0.0.1:${h.port}`, h);
  } finally {
    await h.close();
  }
}

test('GET /metrics serves the registry in Prometheus text format', async () => {
  await withServer([], async (base) => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await res.text(), /^hyphae_sessions\{service="test",node="n1"\} 7$/m);
  });
});

test('GET /healthz: 200 while every live check passes, 503 naming the failing ones', async () => {
  let alive = true;
  const checks: HealthCheck[] = [
    { name: 'loop', live: () => alive, ready: () => true },
    { name: 'bus', ready: () => false }, // no live check: does not affect liveness
  ];
  await withServer(checks, async (base) => {
    let res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    alive = false;
    res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'fail', failing: ['loop'] });
  });
});

test('a live check that throws counts as failing', async () => {
  const checks: HealthCheck[] = [{ name: 'boom', live: () => { throw new Error('x'); }, ready: () => true }];
  await withServer(checks, async (base) => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 503);
  });
});

test('GET /readyz: 200 when all ready, 503 naming failing checks, sync or async', async () => {
  let storeUp = true;
  const checks: HealthCheck[] = [
    { name: 'bus', ready: async () => true },
    { name: 'store', ready: () => storeUp },
  ];
  await withServer(checks, async (base) => {
    let res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    storeUp = false;
    res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'unavailable', draining: false, failing: ['store'] });
  });
});

test('readiness: rejecting and hanging checks fail; checks added later are used', async () => {
  const checks: HealthCheck[] = [
    { name: 'rejects', ready: () => Promise.reject(new Error('down')) },
  ];
  await withServer(
    checks,
    async (base) => {
      checks.push({ name: 'hangs', ready: () => new Promise<boolean>(() => {}) });
      const started = Date.now();
      const res = await fetch(`${base}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: 'unavailable', draining: false, failing: ['rejects', 'hangs'] });
      assert.ok(Date.now() - started < 2000);
    },
    100,
  );
});

test('draining: /readyz 503 while /healthz stays 200', async () => {
  await withServer([{ name: 'bus', live: () => true, ready: () => true }], async (base, h) => {
    h.setDraining(true);
    let res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'unavailable', draining: true, failing: [] });
    res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    h.setDraining(false);
    res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

test('unknown paths are 404, other methods 405, query strings ignored, HEAD works', async () => {
  await withServer([], async (base) => {
    let res = await fetch(`${base}/`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
    res = await fetch(`${base}/metricsx`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
    res = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    await res.body?.cancel();
    res = await fetch(`${base}/healthz?verbose=1`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    res = await fetch(`${base}/healthz`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });
});

test('close() returns even with a keep-alive connection open', async () => {
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  const h = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, checks: [] });
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.port, path: '/healthz', agent: new Agent({ keepAlive: true }) }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  await h.close();
  await h.close(); // idempotent
});

test('listening on a port in use rejects', async () => {
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  const a = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, checks: [] });
  try {
    await assert.rejects(
      startHttpServer({ host: '127.0.0.1', port: a.port, registry: metrics.registry, checks: [] }),
      /EADDRINUSE/,
    );
  } finally {
    await a.close();
  }
});
