/**
 * TLS hardening of every listener (issue 21, findings 5 and 8), against a
 * real `hyphae all` with federation on:
 *   - a connection that never finishes its TLS handshake — silent, or
 *     trickling its ClientHello — is closed after tls.handshakeTimeoutMs on
 *     the c2s direct-TLS port, after c2s STARTTLS, on the s2s direct-TLS port
 *     and after s2s STARTTLS, and counted in
 *     hyphae_tls_handshake_failures_total;
 *   - connections count against the per-IP limit from accept, before any
 *     handshake: past the cap, the next one is refused at once (direct TLS)
 *     or with <policy-violation/> (plain port), c2s and s2s alike;
 *   - the default TLS policy: TLS 1.2 at least, forward-secret AEAD suites
 *     only — static-RSA and CBC-SHA1 suites refused, ECDHE-GCM accepted —
 *     on every listener, and the only ones the s2s client offers (outbound).
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/tls-hardening.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type ConnectionOptions, type SecureContext } from 'node:tls';
import { login, newAccount, stanzaErrorCondition, uniqueName, xml } from '../harness/clients.js';
import { embeddedSkipReason, metricValue, scrapeMetrics, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

const skip = embeddedSkipReason();
/** Short for the test; long enough that nothing else (auth timers: 30 s) closes a connection first. */
const HANDSHAKE_TIMEOUT_MS = 4000;
/** A connection the handshake timer closes must be gone by then (the next timer in line is 30 s away). */
const CLOSED_BY_MS = HANDSHAKE_TIMEOUT_MS + 6000;
const PER_IP = 4;

const STREAM_NS = "xmlns:stream='http://etherx.jabber.org/streams'";
const TLS_NS = 'urn:ietf:params:xml:ns:xmpp-tls';

/** A raw TCP connection, its received text, and when it closed. */
class Raw {
  text = '';
  closedAt: number | null = null;
  readonly openedAt = Date.now();
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => (this.text += d.toString('latin1')));
    socket.on('close', () => (this.closedAt = Date.now()));
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  async waitFor(re: RegExp, ms = 5000): Promise<void> {
    await waitUntil(() => re.test(this.text) || this.closedAt !== null, ms, `${re} from the server`, 20);
    assert.match(this.text, re);
  }

  /** Milliseconds from connect to close, waiting up to `ms`; null when still open then. */
  async closedWithin(ms: number): Promise<number | null> {
    const deadline = this.openedAt + ms;
    while (this.closedAt === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.closedAt === null ? null : this.closedAt - this.openedAt;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function clientHeader(domain: string): string {
  return `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' ${STREAM_NS}>`;
}

function serverHeader(domain: string): string {
  return `<?xml version='1.0'?><stream:stream to='${domain}' from='peer.example' version='1.0' xmlns='jabber:server' xmlns:db='jabber:server:dialback' ${STREAM_NS}>`;
}

/** A raw connection that has asked for STARTTLS and got <proceed/>: the next bytes are the TLS handshake. */
async function afterProceed(port: number, header: string): Promise<Raw> {
  const r = await Raw.open(port);
  r.socket.write(header);
  await r.waitFor(/<starttls/);
  r.socket.write(`<starttls xmlns='${TLS_NS}'/>`);
  await r.waitFor(/<proceed/);
  return r;
}

/** The bytes of a real ClientHello (captured from Node's TLS client), to trickle. */
async function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' });
      c.on('error', () => undefined);
    });
    srv.on('error', reject);
  });
}

type Handshake = { ok: true; protocol: string | null; cipher: string } | { ok: false; error: string };

/** A TLS handshake with `options` on `socket` (after STARTTLS) or to `port` (direct TLS). */
function handshake(target: { port: number } | { socket: Socket }, options: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const c = tlsConnect({ host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost', ...target, ...options });
    c.once('secureConnect', () => {
      resolve({ ok: true, protocol: c.getProtocol(), cipher: c.getCipher().name });
      c.destroy();
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.message }));
  });
}

/** Clients the default policy must refuse, and one it must accept. */
const WEAK: Array<[string, ConnectionOptions]> = [
  ['static RSA, CBC, SHA-1 (AES128-SHA)', { ciphers: 'AES128-SHA', maxVersion: 'TLSv1.2' }],
  ['static RSA, AEAD (AES128-GCM-SHA256)', { ciphers: 'AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }],
  ['ECDHE, CBC, SHA-1 (ECDHE-RSA-AES128-SHA)', { ciphers: 'ECDHE-RSA-AES128-SHA', maxVersion: 'TLSv1.2' }],
  ['TLS 1.1', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }],
];
const GOOD: ConnectionOptions = { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' };

async function checkPolicy(name: string, connect: (o: ConnectionOptions) => Promise<Handshake>): Promise<void> {
  for (const [what, options] of WEAK) {
    const r = await connect(options);
    assert.equal(r.ok, false, `${name}: a client offering only ${what} must be refused, got ${JSON.stringify(r)}`);
  }
  const good = await connect(GOOD);
  assert.deepEqual(good, { ok: true, protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' }, `${name}: ECDHE-RSA-AES128-GCM-SHA256 over TLS 1.2 is accepted`);
  const tls13 = await connect({});
  assert.equal(tls13.ok && tls13.protocol, 'TLSv1.3', `${name}: TLS 1.3 with Node's defaults is accepted`);
}

async function metric(server: HyphaeServer, name: string, labels: Record<string, string>): Promise<number> {
  return metricValue(await scrapeMetrics(server.httpPort), name, labels) ?? 0;
}

/**
 * A peer for our s2s's outbound streams: plain XMPP up to STARTTLS, then TLS
 * 1.2 with only `cipher` (its context set once the server has generated the
 * RSA certificate it uses); records how each handshake ended.
 */
class WeakPeer {
  readonly handshakes: string[] = [];
  context: SecureContext | null = null;
  port = 0;
  private readonly server: Server;

  constructor(readonly domain: string, readonly cipher: string) {
    this.server = createServer((raw) => {
      raw.on('error', () => undefined);
      let text = '';
      let featuresSent = false;
      const onPlain = (d: Buffer): void => {
        text += d.toString('utf8');
        if (!featuresSent && /<stream:stream[^>]*>/.test(text)) {
          featuresSent = true;
          raw.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' ${STREAM_NS} from='${this.domain}' id='w1' version='1.0'><stream:features><starttls xmlns='${TLS_NS}'><required/></starttls></stream:features>`);
        }
        if (text.includes('<starttls') && this.context) {
          raw.removeListener('data', onPlain);
          raw.write(`<proceed xmlns='${TLS_NS}'/>`);
          const tls = new TLSSocket(raw, { isServer: true, secureContext: this.context });
          tls.once('secure', () => {
            this.handshakes.push(`secure ${tls.getCipher().name}`);
            tls.destroy();
          });
          tls.on('error', (err: NodeJS.ErrnoException) => this.handshakes.push(`error ${err.code ?? err.message}`));
        }
      };
      raw.on('data', onPlain);
    });
  }

  async listen(): Promise<void> {
    this.port = await new Promise<number>((r) => this.server.listen(0, '127.0.0.1', () => r((this.server.address() as { port: number }).port)));
  }

  /** Uses the server's own self-signed RSA pair (static-RSA suites need an RSA key). */
  useKeyOf(server: HyphaeServer): void {
    const dir = join(server.dataDir, 'tls');
    this.context = createSecureContext({
      cert: readFileSync(join(dir, 'selfsigned.crt'), 'utf8'),
      key: readFileSync(join(dir, 'selfsigned.key'), 'utf8'),
      ciphers: this.cipher,
      maxVersion: 'TLSv1.2',
    });
  }

  close(): void {
    this.server.close();
  }
}

describe('TLS hardening: handshake timeouts, per-IP limits from accept, forward-secret suites', { skip: skip ?? false }, () => {
  let server: HyphaeServer;
  const weakPeers = [new WeakPeer('static-rsa.test', 'AES128-SHA'), new WeakPeer('cbc-sha1.test', 'ECDHE-RSA-AES128-SHA')];

  before(async () => {
    for (const p of weakPeers) await p.listen();
    server = await startEmbedded({
      config: {
        tls: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
        c2s: { maxConnectionsPerIp: PER_IP },
        s2s: {
          enabled: true,
          maxConnectionsPerIp: PER_IP,
          staticRoutes: weakPeers.map((p) => `${p.domain}=127.0.0.1:${p.port}`),
          // The weak peers listen on loopback, which s2s refuses by default.
          allowedAddresses: ['127.0.0.0/8'],
          connectTimeoutMs: 3000,
        },
      },
    });
    for (const p of weakPeers) p.useKeyOf(server);
  }, { timeout: 120_000 });
  after(async () => {
    await server?.dispose();
    for (const p of weakPeers) p.close();
  });

  const test = (name: string, fn: () => Promise<void>): void => {
    it(name, { timeout: 60_000 }, (t) => withServerLogs(t, server, fn));
  };
  const c2sTls = () => server.c2s[0]?.directTlsPort ?? 0;
  const c2sPlain = () => server.c2s[0]?.port ?? 0;
  const s2sTls = () => server.s2s[0]?.directTlsPort ?? 0;
  const s2sPlain = () => server.s2s[0]?.port ?? 0;
  /** Until the server has let go of every client connection (the per-IP count is back to zero). */
  const c2sIdle = () => waitUntil(async () => (await metric(server, 'hyphae_c2s_connections', {})) === 0, 10_000, 'no open c2s connections');

  // --- finding 5: handshakes that never finish --------------------------------

  const silentCases: Array<[string, string, () => Promise<Raw>]> = [
    ['c2s direct TLS (XEP-0368)', 'c2s-tls', () => Raw.open(c2sTls())],
    ['c2s after STARTTLS', 'c2s-starttls', () => afterProceed(c2sPlain(), clientHeader('localhost'))],
    ['s2s direct TLS (XEP-0368)', 's2s-tls', () => Raw.open(s2sTls())],
    ['s2s after STARTTLS', 's2s-starttls', () => afterProceed(s2sPlain(), serverHeader('localhost'))],
  ];
  for (const [where, listener, open] of silentCases) {
    test(`${where}: a client that sends no handshake is closed after tls.handshakeTimeoutMs`, async () => {
      const before = await metric(server, 'hyphae_tls_handshake_failures_total', { listener, reason: 'timeout' });
      const r = await open();
      const ms = await r.closedWithin(CLOSED_BY_MS);
      r.destroy();
      assert.notEqual(ms, null, `${where}: still open ${CLOSED_BY_MS} ms after connecting without a handshake`);
      assert.ok((ms ?? 0) >= HANDSHAKE_TIMEOUT_MS - 200, `${where}: closed by the handshake timer (after ${ms} ms), not before`);
      const after = await metric(server, 'hyphae_tls_handshake_failures_total', { listener, reason: 'timeout' });
      assert.equal(after - before, 1, `${where}: one handshake timeout counted`);
    });
  }

  test('c2s direct TLS and s2s direct TLS: a ClientHello trickled one byte at a time is closed after the timeout', async () => {
    const hello = await captureClientHello();
    assert.ok(hello.length > 100, 'a whole ClientHello captured');
    for (const port of [c2sTls(), s2sTls()]) {
      const r = await Raw.open(port);
      let i = 0;
      const trickle = setInterval(() => {
        if (r.closedAt === null && i < hello.length) r.socket.write(hello.subarray(i, ++i));
      }, 250);
      try {
        const ms = await r.closedWithin(CLOSED_BY_MS);
        assert.notEqual(ms, null, `port ${port}: a trickling handshake still open after ${CLOSED_BY_MS} ms (${i} bytes sent)`);
        assert.ok(i < hello.length, 'closed before the ClientHello was complete');
      } finally {
        clearInterval(trickle);
        r.destroy();
      }
    }
  });

  test('c2s: connections count against the per-IP limit from accept, before any handshake', async () => {
    await c2sIdle();
    const pending = await Promise.all(Array.from({ length: PER_IP }, () => Raw.open(c2sTls())));
    try {
      // The server holds them as connections already (not once a handshake is done).
      await waitUntil(async () => (await metric(server, 'hyphae_c2s_connections', { transport: 'tls' })) === PER_IP, 5000, `${PER_IP} pending TLS connections counted`);
      // One more on the direct-TLS port: closed at once, long before the handshake timeout.
      const extra = await Raw.open(c2sTls());
      const ms = await extra.closedWithin(1500);
      extra.destroy();
      assert.notEqual(ms, null, 'a connection past the per-IP cap is refused before any handshake');
      // And on the STARTTLS port: the plain connection gets <policy-violation/>.
      const plain = await Raw.open(c2sPlain());
      plain.socket.write(clientHeader('localhost'));
      await plain.waitFor(/<policy-violation/);
      plain.destroy();
      assert.ok(pending.every((p) => p.closedAt === null), 'the connections under the cap are still open');
      assert.ok((await metric(server, 'hyphae_connections_refused_total', { listener: 'c2s-tls', reason: 'per-ip-limit' })) >= 1);
    } finally {
      for (const p of pending) p.destroy();
    }
    // Their slots come back: a client logs in over direct TLS.
    await c2sIdle();
    const account = await newAccount(server, 'tlsip');
    const s = await login(server, { ...account, directTls: true });
    await s.stop();
  });

  test('s2s: inbound connections count against the per-IP limit from accept, before any handshake', async () => {
    const pending = await Promise.all(Array.from({ length: PER_IP }, () => Raw.open(s2sTls())));
    try {
      const extra = await Raw.open(s2sTls());
      const ms = await extra.closedWithin(1500);
      extra.destroy();
      assert.notEqual(ms, null, 'an s2s connection past the per-IP cap is refused before any handshake');
      const plain = await Raw.open(s2sPlain());
      plain.socket.write(serverHeader('localhost'));
      await plain.waitFor(/<policy-violation/);
      plain.destroy();
      assert.ok(pending.every((p) => p.closedAt === null), 'the connections under the cap are still open');
    } finally {
      for (const p of pending) p.destroy();
    }
    // Their slots come back once they are gone.
    await waitUntil(async () => {
      const r = await Raw.open(s2sPlain());
      r.socket.write(serverHeader('localhost'));
      await r.waitFor(/<stream:features|<policy-violation/);
      r.destroy();
      return /<starttls/.test(r.text);
    }, 10_000, 'an s2s connection served again');
  });

  // --- finding 8: forward-secret AEAD suites, TLS 1.2 at least ---------------------

  test('c2s direct TLS: weak suites and TLS 1.1 refused, ECDHE-GCM accepted', async () => {
    await c2sIdle();
    await checkPolicy('c2s direct TLS', (o) => handshake({ port: c2sTls() }, { ALPNProtocols: ['xmpp-client'], ...o }));
  });

  test('c2s STARTTLS: weak suites and TLS 1.1 refused, ECDHE-GCM accepted', async () => {
    await c2sIdle();
    await checkPolicy('c2s STARTTLS', async (o) => {
      const r = await afterProceed(c2sPlain(), clientHeader('localhost'));
      r.socket.removeAllListeners('data');
      const out = await handshake({ socket: r.socket }, o);
      r.destroy();
      return out;
    });
  });

  test('s2s direct TLS: weak suites and TLS 1.1 refused, ECDHE-GCM accepted', async () => {
    await checkPolicy('s2s direct TLS', (o) => handshake({ port: s2sTls() }, { ALPNProtocols: ['xmpp-server'], ...o }));
  });

  test('s2s STARTTLS: weak suites and TLS 1.1 refused, ECDHE-GCM accepted', async () => {
    await checkPolicy('s2s STARTTLS', async (o) => {
      const r = await afterProceed(s2sPlain(), serverHeader('localhost'));
      r.socket.removeAllListeners('data');
      const out = await handshake({ socket: r.socket }, o);
      r.destroy();
      return out;
    });
  });

  test('s2s outbound: the client offers no static-RSA and no CBC-SHA1 suite (peers accepting only those get no handshake)', async () => {
    await c2sIdle();
    const account = await newAccount(server, 'tlsout');
    const s = await login(server, account);
    try {
      for (const peer of weakPeers) {
        const id = uniqueName('m');
        await s.send(xml('message', { to: `someone@${peer.domain}`, type: 'chat', id }, xml('body', {}, 'hello')));
        const answer = await s.waitFor((el) => el.attrs.id === id && el.attrs.type === 'error', 20_000, 'the bounce');
        assert.equal(stanzaErrorCondition(answer), 'remote-server-not-found');
        assert.ok(peer.handshakes.length > 0, `our s2s reached ${peer.domain} and tried TLS`);
        assert.ok(peer.handshakes.every((h) => h.startsWith('error')), `no handshake with ${peer.cipher}: ${peer.handshakes.join(', ')}`);
      }
    } finally {
      await s.stop();
    }
  });
});
