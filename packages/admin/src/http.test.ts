import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, startHttpServer, type HttpServerHandle } from '@hyphae/observability';
import { StoreError } from '@hyphae/store';
import { adminHttpHandler, authorize, isLoopback, MAX_BODY_BYTES, ADMIN_PREFIX } from './http.js';
import type { Admin } from './ops.js';
import { fixture, type Fixture } from './test-fixture.js';

const TOKEN = 'an-admin-token-of-some-length';

async function withApi(token: string | null, fn: (base: string, f: Fixture, h: HttpServerHandle) => Promise<void>, admin?: Admin): Promise<void> {
  const f = await fixture();
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  const h = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, checks: [] });
  h.mount(ADMIN_PREFIX, adminHttpHandler(admin ?? f.admin, { token }));
  try {
    await fn(`http://127.0.0.1:${h.port}`, f, h);
  } finally {
    await h.close();
    await f.close();
  }
}

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

test('isLoopback / authorize: loopback only without a token; the bearer token from anyone with one', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of [undefined, '', '10.0.0.1', '::ffff:10.0.0.1', '::2', '128.0.0.1', 'fe80::1']) assert.equal(isLoopback(a), false, String(a));
  assert.deepEqual(authorize('127.0.0.1', undefined, null), { ok: true });
  const far = authorize('192.0.2.7', `Bearer ${TOKEN}`, null);
  assert.equal(far.ok, false);
  assert.equal(!far.ok && far.code, 'forbidden');
  assert.deepEqual(authorize('192.0.2.7', `Bearer ${TOKEN}`, TOKEN), { ok: true });
  assert.deepEqual(authorize('127.0.0.1', `bearer   ${TOKEN}`, TOKEN), { ok: true });
  for (const h of [undefined, '', 'Bearer', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, `Bearer ${TOKEN.slice(1)}`]) {
    const r = authorize('127.0.0.1', h, TOKEN);
    assert.equal(!r.ok && r.code, 'unauthorized', String(h));
  }
});

test('HTTP API: users added, listed, password changed, deleted (sessions closed); JSON errors with HTTP codes', async () => {
  await withApi(null, async (base, f) => {
    let r = await call(base, 'POST', '/admin/users', { jid: 'Alice@localhost', password: 'pw' });
    assert.equal(r.status, 201);
    assert.deepEqual(r.body, { jid: 'alice@localhost' });
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    r = await call(base, 'POST', '/admin/users', { jid: 'alice@localhost', password: 'pw' });
    assert.equal(r.status, 409);
    assert.equal(r.body.error, 'conflict');
    assert.equal(typeof r.body.message, 'string');
    assert.equal((await call(base, 'POST', '/admin/users', { jid: 'x@@y', password: 'pw' })).body.error, 'invalid-jid');
    r = await call(base, 'POST', '/admin/users', { jid: 'x@nowhere.example', password: 'pw' });
    assert.deepEqual([r.status, r.body.error], [400, 'unknown-domain']);
    r = await call(base, 'POST', '/admin/users', { jid: 'x@localhost' });
    assert.deepEqual([r.status, r.body.error], [400, 'bad-request']);
    r = await call(base, 'POST', '/admin/users', '{not json');
    assert.deepEqual([r.status, r.body.error], [400, 'bad-request']);
    r = await call(base, 'POST', '/admin/users', '[1]');
    assert.deepEqual([r.status, r.body.error], [400, 'bad-request']);
    r = await call(base, 'POST', '/admin/users', JSON.stringify({ jid: 'big@localhost', password: 'x'.repeat(MAX_BODY_BYTES) }));
    assert.deepEqual([r.status, r.body.error], [413, 'payload-too-large']);

    await call(base, 'POST', '/admin/users', { jid: 'bob@localhost', password: 'pw' });
    await call(base, 'POST', '/admin/users', { jid: 'eve@example.org', password: 'pw' });
    r = await call(base, 'GET', '/admin/users?domain=localhost');
    assert.deepEqual(r.body, { domain: 'localhost', online: false, count: 2, users: ['alice@localhost', 'bob@localhost'] });
    r = await call(base, 'GET', '/admin/users');
    assert.deepEqual(r.body.users, ['alice@localhost', 'bob@localhost', 'eve@example.org']);
    r = await call(base, 'GET', '/admin/users?domain=nowhere.example');
    assert.deepEqual([r.status, r.body.error], [400, 'unknown-domain']);

    await f.bind('bob@localhost', 'r1', 'node-a', 'sid-b');
    r = await call(base, 'GET', '/admin/users?domain=localhost&online=1');
    assert.deepEqual(r.body, { domain: 'localhost', online: true, count: 1, users: ['bob@localhost'] });

    r = await call(base, 'PUT', '/admin/users/alice%40localhost', { password: 'new' });
    assert.deepEqual([r.status, r.body], [200, { jid: 'alice@localhost' }]);
    r = await call(base, 'PUT', '/admin/users/nobody@localhost', { password: 'new' });
    assert.deepEqual([r.status, r.body.error], [404, 'not-found']);
    r = await call(base, 'PUT', '/admin/users/alice@localhost', { password: '' });
    assert.deepEqual([r.status, r.body.error], [400, 'bad-request']);

    r = await call(base, 'DELETE', '/admin/users/bob@localhost');
    assert.deepEqual([r.status, r.body], [200, { jid: 'bob@localhost', sessionsClosed: 1 }]);
    await f.bus.flush();
    assert.ok(f.timeline.includes('close:node-a:sid-b:not-authorized'));
    r = await call(base, 'DELETE', '/admin/users/bob@localhost');
    assert.deepEqual([r.status, r.body.error], [404, 'not-found']);
    r = await call(base, 'DELETE', '/admin/users/%E0%A4%A');
    assert.deepEqual([r.status, r.body.error], [400, 'bad-request']);

    r = await call(base, 'GET', '/admin/status');
    assert.equal(r.status, 200);
    assert.equal(r.body.answeredBy, 'test-node');
    assert.deepEqual(r.body.users, [{ domain: 'localhost', registered: 1 }, { domain: 'example.org', registered: 1 }]);

    r = await call(base, 'GET', '/admin/nope');
    assert.deepEqual([r.status, r.body.error], [404, 'no-such-endpoint']);
    r = await call(base, 'GET', '/admin');
    assert.deepEqual([r.status, r.body.error], [404, 'no-such-endpoint']);
    r = await call(base, 'PATCH', '/admin/users/alice@localhost');
    assert.deepEqual([r.status, r.body.error, r.headers.get('allow')], [405, 'method-not-allowed', 'PUT, DELETE']);
    r = await call(base, 'DELETE', '/admin/status');
    assert.deepEqual([r.status, r.headers.get('allow')], [405, 'GET']);
  });
});

test('HTTP API with http.adminToken: 401 without the bearer token (even from loopback), served with it', async () => {
  await withApi(TOKEN, async (base) => {
    let r = await call(base, 'GET', '/admin/status');
    assert.deepEqual([r.status, r.body.error], [401, 'unauthorized']);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    r = await call(base, 'GET', '/admin/nope', undefined, { authorization: 'Bearer wrong' });
    assert.deepEqual([r.status, r.body.error], [401, 'unauthorized'], 'auth before routing');
    r = await call(base, 'POST', '/admin/users', { jid: 'a@localhost', password: 'pw' }, { authorization: 'Bearer nope' });
    assert.equal(r.status, 401);
    r = await call(base, 'POST', '/admin/users', { jid: 'a@localhost', password: 'pw' }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 201);
    r = await call(base, 'GET', '/admin/status', undefined, { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200);
  });
});

test('mounting leaves the built-in endpoints alone; store outages are 503, other failures 500', async () => {
  const broken = { status: async () => { throw new StoreError('down'); }, listUsers: async () => { throw new Error('boom'); }, domains: ['localhost'] } as unknown as Admin;
  await withApi(null, async (base, _f, h) => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/metrics`)).status, 200);
    assert.equal((await fetch(`${base}/administrator`)).status, 404, 'a prefix matches whole path segments only');
    assert.throws(() => h.mount('/metrics', () => undefined));
    assert.throws(() => h.mount('/admin', () => undefined), /mounted already/);
    let r = await call(base, 'GET', '/admin/status');
    assert.deepEqual([r.status, r.body.error], [503, 'unavailable']);
    r = await call(base, 'GET', '/admin/users?domain=localhost');
    assert.deepEqual([r.status, r.body.error], [500, 'internal']);
  }, broken);
});

test('an unmounted prefix is gone again', async () => {
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  const h = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, checks: [] });
  try {
    const off = h.mount('/x/', (_req, res) => { res.end('hi'); });
    assert.equal(await (await fetch(`http://127.0.0.1:${h.port}/x/y`)).text(), 'hi');
    off();
    assert.equal((await fetch(`http://127.0.0.1:${h.port}/x/y`)).status, 404);
  } finally {
    await h.close();
  }
});
