import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket } from 'node:tls';
import { createTestCa, issueServerCert, guardHandshake, tlsPolicyOptions, type HandshakeFailure } from './index.js';

const ca = await createTestCa({ name: 'Hyphae TLS policy test CA' });
/** ECDSA P-256 (the test CA's keys): the ECDHE-ECDSA suites apply. */
const cert = await issueServerCert(ca, { domains: ['localhost'] });
/** What config's FORWARD_SECRET_CIPHERS holds (pki does not depend on config). */
const FS = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

interface Listener {
  port: number;
  failures: HandshakeFailure[];
  secured: number;
  server: Server;
}

/** A TLS server built the way the edges build theirs: raw accept, `new TLSSocket`, guardHandshake. */
async function listen(minVersion: 'TLSv1.2' | 'TLSv1.3', timeoutMs = 10_000): Promise<Listener> {
  const context = createSecureContext({ cert: cert.certPem, key: cert.keyPem, ...tlsPolicyOptions({ minVersion, ciphers: FS }) });
  const l: Listener = { port: 0, failures: [], secured: 0, server: createServer() };
  l.server.on('connection', (raw: Socket) => {
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context });
    guardHandshake(tls, timeoutMs, (reason) => l.failures.push(reason));
    tls.on('secure', () => l.secured++);
    tls.on('error', () => undefined);
  });
  await new Promise<void>((r) => l.server.listen(0, '127.0.0.1', r));
  l.port = (l.server.address() as { port: number }).port;
  return l;
}

function handshake(port: number, options: Record<string, unknown>): Promise<string> {
  return new Promise((resolve) => {
    const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    c.once('secureConnect', () => {
      resolve(`${c.getProtocol()} ${c.getCipher().name}`);
      c.destroy();
    });
    c.once('error', () => resolve('refused'));
  });
}

test('the policy refuses CBC-SHA1 and TLS 1.1; ECDHE with GCM or ChaCha20 and TLS 1.3 pass', async () => {
  const l = await listen('TLSv1.2');
  try {
    // (Static-RSA suites need an RSA certificate: the e2e test checks them against the edges' RSA one.)
    assert.equal(await handshake(l.port, { ciphers: 'ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2' }), 'refused');
    assert.equal(await handshake(l.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), 'refused');
    assert.equal(await handshake(l.port, { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }), 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
    assert.equal(await handshake(l.port, { ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', maxVersion: 'TLSv1.2' }), 'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305');
    assert.match(await handshake(l.port, {}), /^TLSv1\.3 TLS_/);
    assert.deepEqual(l.failures, ['error', 'error'], 'each refused handshake is reported once');
  } finally {
    l.server.close();
  }
});

test('minVersion TLSv1.3 refuses a TLS 1.2 client', async () => {
  const l = await listen('TLSv1.3');
  try {
    assert.equal(await handshake(l.port, { maxVersion: 'TLSv1.2' }), 'refused');
    assert.match(await handshake(l.port, {}), /^TLSv1\.3/);
  } finally {
    l.server.close();
  }
});

test('guardHandshake closes a connection that sends nothing, and one that trickles, after the timeout', async () => {
  const l = await listen('TLSv1.2', 300);
  try {
    const silent = netConnect({ host: '127.0.0.1', port: l.port });
    const trickling = netConnect({ host: '127.0.0.1', port: l.port });
    const closed = (s: Socket) => new Promise<number>((r) => {
      const t0 = Date.now();
      s.on('error', () => undefined);
      s.once('close', () => r(Date.now() - t0));
    });
    // A handshake record header announcing 512 bytes, then its body one byte at a time.
    trickling.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    const tick = setInterval(() => trickling.write(Buffer.from([0x01])), 50);
    const [a, b] = await Promise.all([closed(silent), closed(trickling)]);
    clearInterval(tick);
    assert.ok(a >= 250 && a < 5000, `silent closed after ${a} ms`);
    assert.ok(b >= 250 && b < 5000, `trickling closed after ${b} ms`);
    assert.deepEqual(l.failures, ['timeout', 'timeout']);
  } finally {
    l.server.close();
  }
});

test('guardHandshake leaves a completed handshake alone', async () => {
  const l = await listen('TLSv1.2', 200);
  try {
    const c = tlsConnect({ host: '127.0.0.1', port: l.port, rejectUnauthorized: false });
    await new Promise((r) => c.once('secureConnect', r));
    let closed = false;
    c.once('close', () => (closed = true));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(closed, false, 'still open after the timeout');
    assert.deepEqual(l.failures, []);
    assert.equal(l.secured, 1);
    c.destroy();
  } finally {
    l.server.close();
  }
});
