import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createMetrics, startHttpServer, type HttpServerHandle } from '@hyphae/observability';
import { StoreError } from '@hyphae/store';
import { adminHttpHandler, authorize, isLoopback, hostAllowed, originAllowed, AdminConfigError, MAX_BODY_BYTES, ADMIN_PREFIX } from './http.js';
import { startAdminServer } from './server.js';
import type { Admin } from './ops.js';
import { fixture, type Fixture } from './test-fixture.js';

const TOKEN = 'an-admin-token-of-some-length';

async function withApi(token: string | null, fn: (base: string, f: Fixture, h: HttpServerHandle) => Promise<void>, admin?: Admin): Promise<void> {
  const f = await fixture();
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  const h = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, checks: [] });
  h.mount(ADMIN_PREFIX, adminHttpHandler(admin ?? f.admin, { token, listenHost: '127.0.0.1' }));
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

/** A raw HTTP/1.1 request with exactly these headers (Host included, unlike fetch). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string, setHost = true): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const framed = body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers };
    const req = request({ host: '127.0.0.1', port, method, path, headers: framed, setHost }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text.startsWith('{') ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const USER = JSON.stringify({ jid: 'mallory@localhost', password: 'pw' });

test('hostAllowed / originAllowed: loopback names, IP addresses and configured names; only our own origin', () => {
  const names = new Set(['admin.example.internal']);
  for (const h of ['localhost', 'localhost:5280', 'LOCALHOST.', 'x.localhost:1', '127.0.0.1:5280', '10.1.2.3', '[::1]:5280', '[fe80::1]', 'admin.example.internal:8080']) {
    assert.equal(hostAllowed(h, names), true, h);
  }
  for (const h of [undefined, '', 'evil.example', 'evil.example:5280', 'localhost.evil.example', '127.0.0.1.nip.io', 'admin.example.internal.evil']) {
    assert.equal(hostAllowed(h, names), false, String(h));
  }
  assert.equal(originAllowed(undefined, 'localhost:5280'), true);
  assert.equal(originAllowed('http://localhost:5280', 'localhost:5280'), true);
  assert.equal(originAllowed('https://admin.example.internal', 'admin.example.internal'), true);
  for (const [o, h] of [['http://evil.example', 'localhost:5280'], ['http://localhost:8080', 'localhost:5280'], ['null', 'localhost:5280'], ['file://', 'localhost'], ['ftp://localhost:5280', 'localhost:5280'], ['http://localhost:5280', undefined]] as const) {
    assert.equal(originAllowed(o, h), false, `${o} for ${String(h)}`);
  }
});

test('415: a body that is not application/json is never read (the text/plain CSRF of the audit)', async () => {
  await withApi(null, async (base, f, h) => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', null]) {
      const r = await raw(h.port, 'POST', '/admin/users', type === null ? {} : { 'content-type': type }, USER);
      assert.deepEqual([r.status, r.body.error], [415, 'unsupported-media-type'], String(type));
    }
    assert.equal(await f.stores.accounts.get('localhost', 'mallory'), null, 'nothing was created');
    await f.admin.addUser('alice@localhost', 'old');
    let r = await raw(h.port, 'PUT', '/admin/users/alice@localhost', { 'content-type': 'text/plain' }, JSON.stringify({ password: 'new' }));
    assert.equal(r.status, 415);
    r = await raw(h.port, 'DELETE', '/admin/users/alice@localhost', { 'content-type': 'text/plain' }, '{}');
    assert.equal(r.status, 415, 'a body on any method must be JSON');
    assert.ok(await f.stores.accounts.get('localhost', 'alice'), 'alice is still there');
    r = await raw(h.port, 'POST', '/admin/users', { 'content-type': 'Application/JSON; charset=utf-8' }, USER);
    assert.equal(r.status, 201, 'JSON with parameters is JSON');
    assert.equal((await fetch(`${base}/admin/status`)).status, 200, 'a GET has no body to check');
  });
});

test('403: a Host that is not ours (DNS rebinding) is refused before anything else, even from loopback', async () => {
  await withApi(null, async (_base, f, h) => {
    await f.admin.addUser('alice@localhost', 'old');
    const json = { 'content-type': 'application/json' };
    // The audit: a PUT with a foreign Host changed a password.
    let r = await raw(h.port, 'PUT', '/admin/users/alice@localhost', { ...json, host: `evil.example:${h.port}` }, JSON.stringify({ password: 'new' }));
    assert.deepEqual([r.status, r.body.error], [403, 'forbidden']);
    assert.match(r.body.message, /Host/);
    r = await raw(h.port, 'POST', '/admin/users', { ...json, host: 'attacker.example' }, USER);
    assert.equal(r.status, 403);
    r = await raw(h.port, 'POST', '/admin/users', json, USER, false);
    assert.ok(r.status === 400 || r.status === 403, `no Host at all: ${r.status}`); // node:http answers 400 itself
    assert.equal(await f.stores.accounts.get('localhost', 'mallory'), null);
    for (const host of [`localhost:${h.port}`, `127.0.0.1:${h.port}`, `[::1]:${h.port}`]) {
      assert.equal((await raw(h.port, 'GET', '/admin/status', { host })).status, 200, host);
    }
  });
  // A name of our own is accepted once configured.
  const f = await fixture();
  const metrics = createMetrics({ service: 'test', node: 'n1', defaultMetrics: false });
  const h = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, checks: [] });
  h.mount(ADMIN_PREFIX, adminHttpHandler(f.admin, { token: null, listenHost: '127.0.0.1', serverNames: ['Hyphae-SM.xmpp.svc'] }));
  try {
    assert.equal((await raw(h.port, 'GET', '/admin/status', { host: 'hyphae-sm.xmpp.svc:5280' })).status, 200);
    assert.equal((await raw(h.port, 'GET', '/admin/status', { host: 'hyphae-sm.xmpp.svc.evil.example' })).status, 403);
  } finally {
    await h.close();
    await f.close();
  }
});

test('403: a foreign Origin or a cross-site fetch is refused (CSRF), token or not', async () => {
  for (const token of [null, TOKEN]) {
    await withApi(token, async (_base, f, h) => {
      const hdrs = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${TOKEN}` } : {}) };
      for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${h.port + 1}`, `ftp://127.0.0.1:${h.port}`]) {
        const r = await raw(h.port, 'POST', '/admin/users', { ...hdrs, origin }, USER);
        assert.deepEqual([r.status, r.body.error], [403, 'forbidden'], `${String(token)} ${origin}`);
        assert.match(r.body.message, /cross-origin/);
      }
      // The audit's request: text/plain, foreign Origin and foreign Host.
      let r = await raw(h.port, 'POST', '/admin/users', { 'content-type': 'text/plain', origin: 'http://evil.example', host: 'evil.example' }, USER);
      assert.equal(r.status, 403);
      r = await raw(h.port, 'POST', '/admin/users', { ...hdrs, 'sec-fetch-site': 'cross-site' }, USER);
      assert.equal(r.status, 403);
      r = await raw(h.port, 'POST', '/admin/users', { ...hdrs, 'sec-fetch-site': 'same-site' }, USER);
      assert.equal(r.status, 403, 'another port or subdomain of the same site is another origin');
      assert.equal(await f.stores.accounts.get('localhost', 'mallory'), null, 'nothing was created');
      r = await raw(h.port, 'POST', '/admin/users', { ...hdrs, origin: `http://127.0.0.1:${h.port}`, 'sec-fetch-site': 'same-origin' }, USER);
      assert.equal(r.status, 201, 'our own origin is served');
    });
  }
});

test('without a token, "loopback" is the socket address only: a proxied request (forwarding headers) is refused', async () => {
  await withApi(null, async (_base, _f, h) => {
    const forwarded: Record<string, string>[] = [{ 'x-forwarded-for': '198.51.100.7' }, { forwarded: 'for=198.51.100.7' }, { 'x-real-ip': '198.51.100.7' }, { 'x-forwarded-for': '127.0.0.1' }];
    for (const fwd of forwarded) {
      const r = await raw(h.port, 'GET', '/admin/status', fwd);
      assert.deepEqual([r.status, r.body.error], [403, 'forbidden'], JSON.stringify(fwd));
    }
    assert.equal((await raw(h.port, 'GET', '/admin/status', {})).status, 200);
  });
  await withApi(TOKEN, async (_base, _f, h) => {
    const r = await raw(h.port, 'GET', '/admin/status', { 'x-forwarded-for': '198.51.100.7', authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200, 'with the token, a proxy is fine');
  });
  assert.equal(authorize('127.0.0.1', undefined, null, true).ok, false);
});

test('a listener on a non-loopback address: refused at start without a token, 401 without the bearer token', async () => {
  const f = await fixture();
  try {
    for (const listenHost of ['0.0.0.0', '::', '192.0.2.10', 'admin.example.org']) {
      assert.throws(() => adminHttpHandler(f.admin, { token: null, listenHost }), (e: unknown) => e instanceof AdminConfigError && e.key === 'http.adminToken' && e.message.includes(listenHost));
      await assert.rejects(startAdminServer(f.admin, { token: null, listenHost, port: 0 }), AdminConfigError);
    }
    for (const listenHost of ['127.0.0.1', '::1', 'localhost']) adminHttpHandler(f.admin, { token: null, listenHost });

    const s = await startAdminServer(f.admin, { token: TOKEN, listenHost: '0.0.0.0', port: 0 });
    try {
      let r = await raw(s.port, 'GET', '/admin/status', {});
      assert.deepEqual([r.status, r.body.error], [401, 'unauthorized'], 'from loopback too: the listener is not loopback-only');
      r = await raw(s.port, 'POST', '/admin/users', { 'content-type': 'application/json' }, USER);
      assert.equal(r.status, 401);
      r = await raw(s.port, 'GET', '/admin/status', { authorization: `Bearer ${TOKEN}` });
      assert.equal(r.status, 200);
      r = await raw(s.port, 'GET', '/metrics', { authorization: `Bearer ${TOKEN}` });
      assert.deepEqual([r.status, r.body.error], [404, 'no-such-endpoint'], 'the admin listener serves the API only');
    } finally {
      await s.close();
    }
    const local = await startAdminServer(f.admin, { token: null, listenHost: '127.0.0.1', port: 0 });
    try {
      assert.equal((await raw(local.port, 'GET', '/admin/status', {})).status, 200);
    } finally {
      await local.close();
    }
  } finally {
    await f.close();
  }
});
