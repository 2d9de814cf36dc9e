/**
 * The Prosody harness (harness/prosody.ts) works: Prosody starts and stops
 * (several at once), accounts made with addUser log in over STARTTLS with
 * @xmpp/client, Prosody's outgoing s2s for a statically routed domain
 * reaches the given port, and the s2s authentication Prosody offers and uses
 * depends on whether it trusts our test CA — checked against a scripted peer
 * speaking the s2s wire protocol, so federation tests know what to expect.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/prosody-harness.test.js
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, TLSSocket } from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createTestCa, issueServerCert, type IssuedCert, type TestCa } from '@hyphae/pki';
import { freePort } from '@hyphae/testkit';
import { NS, login, loginFails, withTimeout, xml, type XmlElement } from '../harness/clients.js';
import { waitUntil } from '../harness/util.js';
import { prosodySkipReason, startProsody, withProsodyLogs, type ProsodyOptions, type ProsodyServer } from '../harness/prosody.js';

const skip = prosodySkipReason();

const DOMAIN = 'prosody-a.test';
/** The domain Prosody federates with: routed to a scripted peer in this file. */
const REMOTE = 'hyphae-a.test';
const NS_DB = 'jabber:server:dialback';
const NS_DB_FEATURE = 'urn:xmpp:features:dialback';
const WAIT_MS = 15_000;

// ---------------------------------------------------------------------------
// A scripted s2s peer: one TCP connection, its stream parsed into top-level
// elements; STARTTLS either side.

class Wire {
  header: Record<string, string | undefined> | null = null;
  received = '';
  private parser = new xml.Parser();
  private decoder = new StringDecoder('utf8');
  private items: XmlElement[] = [];
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
    this.restart();
  }

  static connect(port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(new Wire(s)));
      s.once('error', reject);
    });
  }

  get tls(): TLSSocket | null {
    return this.socket instanceof TLSSocket ? this.socket : null;
  }

  private onData = (b: Buffer): void => {
    const s = this.decoder.write(b);
    if (this.received.length < 256 * 1024) this.received += s;
    try {
      this.parser.write(s);
    } catch (err) {
      this.push(xml('parse-error', { message: (err as Error).message }));
    }
  };

  private attach(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private push(el: XmlElement): void {
    this.items.push(el);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** A new stream: forget the old header, parse from scratch. */
  restart(): void {
    this.header = null;
    this.parser = new xml.Parser();
    this.parser.on('start', (el: XmlElement) => {
      this.header = { ...el.attrs };
      this.wake();
    });
    this.parser.on('element', (el: XmlElement) => this.push(el));
    this.parser.on('error', (err: Error) => this.push(xml('parse-error', { message: err.message })));
  }

  write(s: string): void {
    this.socket.write(s);
  }

  private async until<T>(probe: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined) return v;
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; received: ${this.received.slice(-800)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; received: ${this.received.slice(-800)}`);
      await withTimeout(new Promise<void>((r) => this.waiters.push(r)), left, what).catch(() => undefined);
    }
  }

  /** The stream header of the current stream. */
  streamHeader(): Promise<Record<string, string | undefined>> {
    return this.until(() => this.header ?? undefined, 'a stream header');
  }

  /** The next top-level element (removed from the buffer); with `pred`, the first matching. */
  next(pred: (el: XmlElement) => boolean = () => true, what = 'an element'): Promise<XmlElement> {
    return this.until(() => {
      const i = this.items.findIndex(pred);
      return i < 0 ? undefined : this.items.splice(i, 1)[0];
    }, what);
  }

  /** Answers `<starttls/>` with `<proceed/>` and becomes the TLS server. */
  async acceptStarttls(cert: IssuedCert): Promise<void> {
    const el = await this.next(undefined, '<starttls/>');
    assert.ok(el.is('starttls', NS.tls), `expected <starttls/>, got ${el.toString()}`);
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    this.write(`<proceed xmlns='${NS.tls}'/>`);
    const secure = new TLSSocket(plain, {
      isServer: true,
      cert: cert.certPem,
      key: cert.keyPem,
      ca: [cert.caPem],
      requestCert: true,
      rejectUnauthorized: false,
    });
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', reject);
    });
    this.decoder = new StringDecoder('utf8');
    this.attach(secure);
    this.restart();
  }

  /** Sends `<starttls/>`, expects `<proceed/>`, becomes the TLS client (verifying the server against `ca`). */
  async starttls(opts: { servername: string; ca: string; cert: IssuedCert }): Promise<void> {
    this.write(`<starttls xmlns='${NS.tls}'/>`);
    const el = await this.next(undefined, '<proceed/>');
    assert.ok(el.is('proceed', NS.tls), `expected <proceed/>, got ${el.toString()}`);
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({
        socket: plain,
        servername: opts.servername,
        ca: [opts.ca],
        cert: opts.cert.certPem,
        key: opts.cert.keyPem,
        rejectUnauthorized: true,
      });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    this.decoder = new StringDecoder('utf8');
    this.attach(secure);
    this.restart();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const serverStreamHeader = (from: string, to: string, id?: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='${NS.stream}' xmlns:db='${NS_DB}' ` +
  `from='${from}' to='${to}'${id ? ` id='${id}'` : ''} version='1.0'>`;

/** A one-connection TCP listener on a free loopback port: stands in for our server's s2s port. */
async function listenOnce(): Promise<{ port: number; connection: Promise<Wire>; close(): void }> {
  const port = await freePort();
  let srv: Server | undefined;
  const connection = new Promise<Wire>((resolve, reject) => {
    srv = createServer((sock) => resolve(new Wire(sock)));
    srv.once('error', reject);
  });
  await new Promise<void>((resolve) => srv!.listen(port, '127.0.0.1', resolve));
  return { port, connection, close: () => srv?.close() };
}

const mechanisms = (f: XmlElement): string[] =>
  f.getChild('mechanisms', NS.sasl)?.getChildren('mechanism').map((m) => m.text()) ?? [];

// ---------------------------------------------------------------------------

describe('prosody harness', { skip: skip ?? false }, () => {
  let ca: TestCa;
  let prosodyCert: IssuedCert;
  let remoteCert: IssuedCert;
  const started: ProsodyServer[] = [];

  /** Starts Prosody for DOMAIN with the test CA's certificate; stopped after the test. */
  const start = async (t: TestContext, opts: Partial<ProsodyOptions> = {}): Promise<ProsodyServer> => {
    const p = await startProsody({ domain: DOMAIN, certPem: prosodyCert.certPem, keyPem: prosodyCert.keyPem, caPem: ca.certPem, ...opts });
    started.push(p);
    t.after(() => p.stop());
    return p;
  };

  before(async () => {
    ca = await createTestCa({ name: 'Hyphae Test CA' });
    prosodyCert = await issueServerCert(ca, { domains: [DOMAIN, `*.${DOMAIN}`], xmppAddrs: [DOMAIN] });
    remoteCert = await issueServerCert(ca, { domains: [REMOTE], xmppAddrs: [REMOTE] });
  });
  after(async () => {
    await Promise.all(started.map((p) => p.stop()));
  });

  it('starts (two at once, on their own ports and directories) and stops leaving no process or directory', { timeout: 60_000 }, async (t) => {
    const [a, b] = await Promise.all([start(t, { muc: true }), start(t)]);
    await withProsodyLogs(t, [a, b], async () => {
      for (const p of [a, b]) {
        assert.ok(p.running());
        process.kill(p.pid, 0); // alive
        assert.ok(existsSync(`${p.dir}/prosody.cfg.lua`) && existsSync(`${p.dir}/prosody.pid`));
        assert.match(p.log(), /Hello and welcome to Prosody version 0\.12/);
        for (const port of [p.c2sPort, p.c2sDirectTlsPort, p.s2sPort]) {
          assert.match(p.log(), new RegExp(`Activated service '\\w+' on \\[127\\.0\\.0\\.1\\]:${port}`));
        }
        assert.doesNotMatch(p.log(), /\terror\t/);
      }
      assert.equal(new Set([a.c2sPort, a.s2sPort, a.c2sDirectTlsPort, b.c2sPort, b.s2sPort, b.c2sDirectTlsPort]).size, 6);
      assert.notEqual(a.dir, b.dir);
      assert.equal(a.mucDomain, `conference.${DOMAIN}`);
      assert.match(a.log(), new RegExp(`Activated host: conference\\.${DOMAIN.replace(/\./g, '\\.')}`));
      t.diagnostic(`a: c2s ${a.c2sPort}, direct TLS ${a.c2sDirectTlsPort}, s2s ${a.s2sPort}, pid ${a.pid}, ${a.dir}`);

      const { pid, dir, c2sPort } = a;
      await a.stop();
      assert.equal(a.running(), false);
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
      assert.equal(existsSync(dir), false, 'temporary directory removed');
      const refused = await new Promise<boolean>((resolve) => {
        const s = netConnect({ host: '127.0.0.1', port: c2sPort });
        s.once('connect', () => (s.destroy(), resolve(false)));
        s.once('error', () => resolve(true));
      });
      assert.ok(refused, 'c2s port closed');
      assert.ok(b.running(), 'the other instance is unaffected');
      await a.stop(); // idempotent
      await b.stop();
    });
  });

  it('a test process killed with SIGKILL takes its Prosody with it (watchdog in mod_hyphae_test)', { timeout: 60_000 }, async (t) => {
    const harness = new URL('../harness/prosody.js', import.meta.url).href;
    const code = [
      `const { startProsody } = await import(${JSON.stringify(harness)});`,
      'const p = await startProsody(JSON.parse(process.env.HYPHAE_PROSODY_OPTS));',
      'console.log(JSON.stringify({ pid: p.pid, dir: p.dir }));',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const opts = { domain: DOMAIN, certPem: prosodyCert.certPem, keyPem: prosodyCert.keyPem, caPem: ca.certPem };
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...process.env, HYPHAE_PROSODY_OPTS: JSON.stringify(opts), HYPHAE_E2E_KEEP: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const started = await withTimeout(
      new Promise<{ pid: number; dir: string }>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (line) resolve(JSON.parse(line) as { pid: number; dir: string });
        });
        child.once('exit', (c) => reject(new Error(`child exited ${c}: ${err}`)));
      }),
      30_000,
      'the child to start Prosody',
    );
    t.after(() => rmSync(started.dir, { recursive: true, force: true }));
    process.kill(started.pid, 0);
    child.kill('SIGKILL');
    const ms = await waitUntil(() => {
      try {
        process.kill(started.pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 15_000, `Prosody (pid ${started.pid}) to exit after its test process died`);
    t.diagnostic(`Prosody exited ${ms} ms after the test process was killed`);
    assert.match(readFileSync(`${started.dir}/prosody.log`, 'utf8'), /test process \d+ is gone, shutting down/);
  });

  it('addUser accounts log in over STARTTLS with @xmpp/client; Prosody presents the given certificate', { timeout: 60_000 }, async (t) => {
    const p = await start(t, { users: [{ user: 'alice', password: 'alice-pw' }], muc: true });
    await withProsodyLogs(t, [p], async () => {
      await p.addUser('bob', 'bob-pw');
      for (const [username, password] of [['alice', 'alice-pw'], ['bob', 'bob-pw']] as const) {
        const s = await login(p, { username, password });
        try {
          assert.equal(s.bare, `${username}@${DOMAIN}`);
          assert.ok(s.client.isSecure(), 'STARTTLS');
          assert.ok(s.offeredMechanisms.includes('SCRAM-SHA-1'), s.offeredMechanisms.join(','));
          // The certificate on the wire is the one we gave, and chains to the test CA.
          const sock = (s.client.socket as { socket?: TLSSocket } | null)?.socket;
          assert.ok(sock instanceof TLSSocket, 'TLS socket under @xmpp/client');
          const peer = sock.getPeerX509Certificate();
          assert.ok(peer, 'peer certificate');
          const caCert = new X509Certificate(ca.certPem);
          assert.ok(peer.checkIssued(caCert) && peer.verify(caCert.publicKey), 'issued by the test CA');
          assert.equal(peer.checkHost(DOMAIN), DOMAIN);
          assert.equal(peer.fingerprint256, new X509Certificate(prosodyCert.certPem).fingerprint256);
          const pong = await s.ping(DOMAIN);
          assert.equal(pong.attrs.type, 'result', pong.toString());
          const info = await s.iq(xml('iq', { type: 'get', to: p.mucDomain }, xml('query', { xmlns: NS.discoInfo })));
          assert.equal(info.getChild('query', NS.discoInfo)?.getChild('identity')?.attrs.category, 'conference', info.toString());
        } finally {
          await s.stop();
        }
      }
      const bad = await loginFails(p, { username: 'alice', password: 'wrong' });
      assert.equal(bad.condition, 'not-authorized');
      // Direct TLS, verified by Node against the test CA (not the process-wide "accept anything").
      const direct = await new Promise<TLSSocket>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: p.c2sDirectTlsPort, servername: DOMAIN, ca: [ca.certPem], rejectUnauthorized: true, ALPNProtocols: ['xmpp-client'] });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
      });
      assert.equal(direct.authorized, true, String(direct.authorizationError));
      direct.destroy();
    });
  });

  it(`outgoing s2s to a routed domain reaches the given port: STARTTLS, SASL EXTERNAL, then the message`, { timeout: 60_000 }, async (t) => {
    const peer = await listenOnce();
    t.after(() => peer.close());
    const p = await start(t, { users: [{ user: 'alice', password: 'alice-pw' }], staticRoutes: { [REMOTE]: { host: '127.0.0.1', port: peer.port } } });
    await withProsodyLogs(t, [p], async () => {
      const alice = await login(p, { username: 'alice', password: 'alice-pw' });
      t.after(() => alice.stop());
      await alice.send(xml('message', { to: `bob@${REMOTE}`, type: 'chat', id: 'm1' }, xml('body', {}, 'hello over s2s')));

      const w = await withTimeout(peer.connection, WAIT_MS, `Prosody to connect to 127.0.0.1:${peer.port}`);
      t.after(() => w.destroy());
      const h1 = await w.streamHeader();
      t.diagnostic(`Prosody's s2s stream header: ${JSON.stringify(h1)}`);
      assert.equal(h1.to, REMOTE);
      assert.equal(h1.from, DOMAIN);
      assert.equal(h1.xmlns, 'jabber:server');
      assert.equal(h1.version, '1.0');
      assert.match(p.log(), new RegExp(`static route for ${REMOTE.replace(/\./g, '\\.')} \\(xmpp-server\\): 127\\.0\\.0\\.1 port ${peer.port}`));

      w.write(serverStreamHeader(REMOTE, DOMAIN, 's1') + `<stream:features><starttls xmlns='${NS.tls}'><required/></starttls></stream:features>`);
      await w.acceptStarttls(remoteCert);
      const presented = w.tls?.getPeerX509Certificate();
      t.diagnostic(`Prosody's TLS client certificate: ${presented ? presented.subject.replace(/\n/g, ', ') : 'none'}`);
      const h2 = await w.streamHeader();
      assert.equal(h2.to, REMOTE);
      w.write(
        serverStreamHeader(REMOTE, DOMAIN, 's2') +
          `<stream:features><mechanisms xmlns='${NS.sasl}'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='${NS_DB_FEATURE}'><errors/></dialback></stream:features>`,
      );
      const auth = await w.next(undefined, '<auth/>');
      t.diagnostic(`Prosody's answer to EXTERNAL + dialback: ${auth.toString()}`);
      assert.ok(auth.is('auth', NS.sasl) && auth.attrs.mechanism === 'EXTERNAL', auth.toString());
      assert.equal(Buffer.from(auth.text(), 'base64').toString(), DOMAIN, 'authzid is its domain');
      w.write(`<success xmlns='${NS.sasl}'/>`);
      w.restart();
      const h3 = await w.streamHeader();
      assert.equal(h3.from, DOMAIN);
      w.write(serverStreamHeader(REMOTE, DOMAIN, 's3') + '<stream:features/>');
      const msg = await w.next((el) => el.name === 'message', 'the message');
      assert.equal(msg.attrs.to, `bob@${REMOTE}`);
      assert.equal(msg.attrs.from, alice.jid);
      assert.equal(msg.getChildText('body'), 'hello over s2s');
    });
  });
  it('a directTls route: Prosody opens XEP-0368 direct TLS to the given port', { timeout: 60_000 }, async (t) => {
    const port = await freePort();
    let got: ((s: TLSSocket) => void) | undefined;
    const conn = new Promise<TLSSocket>((r) => (got = r));
    const srv = createTlsServer({ cert: remoteCert.certPem, key: remoteCert.keyPem, ALPNProtocols: ['xmpp-server'] }, (s) => got?.(s));
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    t.after(() => srv.close());
    const p = await start(t, { users: [{ user: 'alice', password: 'alice-pw' }], staticRoutes: { [REMOTE]: { host: '127.0.0.1', port, directTls: true } } });
    await withProsodyLogs(t, [p], async () => {
      const alice = await login(p, { username: 'alice', password: 'alice-pw' });
      t.after(() => alice.stop());
      await alice.send(xml('message', { to: `bob@${REMOTE}`, type: 'chat' }, xml('body', {}, 'direct')));
      const sock = await withTimeout(conn, WAIT_MS, 'a direct TLS connection from Prosody');
      const w = new Wire(sock);
      t.after(() => w.destroy());
      t.diagnostic(`SNI ${(sock as unknown as { servername?: string }).servername}, ALPN ${String(sock.alpnProtocol)}`);
      const h = await w.streamHeader();
      assert.equal(h.to, REMOTE);
      assert.equal((sock as unknown as { servername?: string }).servername, REMOTE, 'SNI');
      assert.equal(sock.alpnProtocol, 'xmpp-server', 'ALPN');
    });
  });

  it('outgoing s2s when Prosody does not trust our CA: it still tries SASL EXTERNAL, then falls back to dialback', { timeout: 60_000 }, async (t) => {
    const peer = await listenOnce();
    t.after(() => peer.close());
    const p = await start(t, { trustCa: false, users: [{ user: 'alice', password: 'alice-pw' }], staticRoutes: { [REMOTE]: { host: '127.0.0.1', port: peer.port } } });
    await withProsodyLogs(t, [p], async () => {
      const alice = await login(p, { username: 'alice', password: 'alice-pw' });
      t.after(() => alice.stop());
      await alice.send(xml('message', { to: `bob@${REMOTE}`, type: 'chat', id: 'm2' }, xml('body', {}, 'hello via dialback')));
      const w = await withTimeout(peer.connection, WAIT_MS, `Prosody to connect to 127.0.0.1:${peer.port}`);
      t.after(() => w.destroy());
      await w.streamHeader();
      w.write(serverStreamHeader(REMOTE, DOMAIN, 'out-1') + `<stream:features><starttls xmlns='${NS.tls}'><required/></starttls></stream:features>`);
      await w.acceptStarttls(remoteCert);
      await w.streamHeader();
      w.write(
        serverStreamHeader(REMOTE, DOMAIN, 'out-2') +
          `<stream:features><mechanisms xmlns='${NS.sasl}'><mechanism>EXTERNAL</mechanism></mechanisms><dialback xmlns='${NS_DB_FEATURE}'><errors/></dialback></stream:features>`,
      );
      // Its own check of our certificate failed (see the log), yet it asks for EXTERNAL.
      const auth = await w.next(undefined, '<auth/>');
      assert.ok(auth.is('auth', NS.sasl) && auth.attrs.mechanism === 'EXTERNAL', auth.toString());
      assert.match(p.log(), /certificate chain validation result: invalid/);
      w.write(`<failure xmlns='${NS.sasl}'><not-authorized/></failure>`);
      // mod_dialback takes the SASL failure (priority 100, before mod_saslauth's "give up" at 90).
      const result = await w.next(undefined, '<db:result/>');
      t.diagnostic(`after the EXTERNAL failure: ${result.toString()}`);
      assert.ok(result.is('result', NS_DB), result.toString());
      assert.equal(result.attrs.from, DOMAIN);
      assert.equal(result.attrs.to, REMOTE);
      const key = result.text();
      assert.ok(key.length > 0, 'a dialback key');

      // We are the receiving server: ask Prosody (authoritative for its domain) over its s2s port.
      const v = await openToProsody(p, remoteCert);
      t.after(() => v.wire.destroy());
      assert.deepEqual(mechanisms(v.features), [], 'no EXTERNAL: it does not trust our certificate');
      v.wire.write(`<db:verify from='${REMOTE}' to='${DOMAIN}' id='out-2'>${key}</db:verify>`);
      const verdict = await v.wire.next((el) => el.is('verify', NS_DB), '<db:verify/> answer');
      assert.equal(verdict.attrs.type, 'valid', verdict.toString());
      w.write(`<db:result from='${REMOTE}' to='${DOMAIN}' type='valid'/>`);
      const msg = await w.next((el) => el.name === 'message', 'the message');
      assert.equal(msg.attrs.from, alice.jid);
      assert.equal(msg.getChildText('body'), 'hello via dialback');
    });
  });

  it('incoming s2s, Prosody trusting our CA: features, SASL EXTERNAL, a message delivered to a local user', { timeout: 60_000 }, async (t) => {
    const p = await start(t, { users: [{ user: 'alice', password: 'alice-pw' }] });
    await withProsodyLogs(t, [p], async () => {
      const alice = await login(p, { username: 'alice', password: 'alice-pw' });
      t.after(() => alice.stop());
      const c = await openToProsody(p, remoteCert);
      t.after(() => c.wire.destroy());
      t.diagnostic(`features before TLS: ${c.featuresBeforeTls.toString()}`);
      t.diagnostic(`features after TLS: ${c.features.toString()}`);
      assert.ok(c.featuresBeforeTls.getChild('starttls', NS.tls)?.getChild('required'), 'STARTTLS required');
      assert.ok(c.featuresBeforeTls.getChild('dialback', NS_DB_FEATURE), 'dialback offered before TLS too');
      assert.deepEqual(mechanisms(c.features), ['EXTERNAL']);
      assert.ok(c.features.getChild('dialback', NS_DB_FEATURE));
      c.wire.write(`<auth xmlns='${NS.sasl}' mechanism='EXTERNAL'>=</auth>`);
      const r = await c.wire.next(undefined, 'SASL answer');
      assert.ok(r.is('success', NS.sasl), r.toString());
      c.wire.restart();
      c.wire.write(serverStreamHeader(REMOTE, DOMAIN));
      await c.wire.streamHeader();
      const f3 = await c.wire.next((el) => el.is('features', NS.stream), 'features after SASL');
      t.diagnostic(`features after SASL: ${f3.toString()}`);
      c.wire.write(`<message from='bob@${REMOTE}/r' to='${alice.jid}' type='chat' id='in1'><body>hello from ${REMOTE}</body></message>`);
      const got = await alice.waitFor((el) => el.name === 'message' && el.attrs.id === 'in1');
      assert.equal(got.attrs.from, `bob@${REMOTE}/r`);
      assert.equal(got.getChildText('body'), `hello from ${REMOTE}`);

      // A certificate from the trusted CA, but for another domain: no EXTERNAL.
      const other = await issueServerCert(ca, { domains: ['other.test'] });
      const o = await openToProsody(p, other);
      t.after(() => o.wire.destroy());
      assert.deepEqual(mechanisms(o.features), [], `identity mismatch: ${o.features.toString()}`);
      assert.ok(o.features.getChild('dialback', NS_DB_FEATURE));
    });
  });

  it('incoming s2s, Prosody not trusting our CA: dialback only, verified through the static route', { timeout: 60_000 }, async (t) => {
    const authoritative = await listenOnce();
    t.after(() => authoritative.close());
    const p = await start(t, { trustCa: false, users: [{ user: 'alice', password: 'alice-pw' }], staticRoutes: { [REMOTE]: { host: '127.0.0.1', port: authoritative.port } } });
    await withProsodyLogs(t, [p], async () => {
      const alice = await login(p, { username: 'alice', password: 'alice-pw' });
      t.after(() => alice.stop());
      const c = await openToProsody(p, remoteCert);
      t.after(() => c.wire.destroy());
      t.diagnostic(`features after TLS: ${c.features.toString()}`);
      assert.deepEqual(mechanisms(c.features), [], 'no EXTERNAL');
      assert.ok(c.features.getChild('dialback', NS_DB_FEATURE));
      const streamId = c.wire.header?.id;
      assert.ok(streamId, 'stream id');
      c.wire.write(`<db:result from='${REMOTE}' to='${DOMAIN}'>0123456789abcdef</db:result>`);

      // Prosody asks the authoritative server of REMOTE: that is us again, at the routed port.
      const a = await withTimeout(authoritative.connection, WAIT_MS, 'Prosody to connect to the routed port for dialback verification');
      t.after(() => a.destroy());
      const h = await a.streamHeader();
      assert.equal(h.to, REMOTE);
      a.write(serverStreamHeader(REMOTE, DOMAIN, 'auth-1') + `<stream:features><starttls xmlns='${NS.tls}'><required/></starttls></stream:features>`);
      await a.acceptStarttls(remoteCert);
      await a.streamHeader();
      a.write(serverStreamHeader(REMOTE, DOMAIN, 'auth-2') + `<stream:features><dialback xmlns='${NS_DB_FEATURE}'><errors/></dialback></stream:features>`);
      // Prosody 0.12 first authenticates this outgoing stream with dialback of
      // its own and holds the <db:verify/> back until that succeeds: we
      // check its key with it (a third connection), as a real server would.
      const own = await a.next((el) => el.is('result', NS_DB), "Prosody's own <db:result/>");
      const check = await openToProsody(p, remoteCert);
      t.after(() => check.wire.destroy());
      check.wire.write(`<db:verify from='${REMOTE}' to='${DOMAIN}' id='auth-2'>${own.text()}</db:verify>`);
      const checked = await check.wire.next((el) => el.is('verify', NS_DB), '<db:verify/> answer');
      assert.equal(checked.attrs.type, 'valid', checked.toString());
      a.write(`<db:result from='${REMOTE}' to='${DOMAIN}' type='valid'/>`);
      const verify = await a.next((el) => el.is('verify', NS_DB), '<db:verify/>');
      t.diagnostic(`Prosody's verification request: ${verify.toString()}`);
      assert.equal(verify.attrs.from, DOMAIN);
      assert.equal(verify.attrs.to, REMOTE);
      assert.equal(verify.attrs.id, streamId);
      assert.equal(verify.text(), '0123456789abcdef');
      a.write(`<db:verify from='${REMOTE}' to='${DOMAIN}' id='${verify.attrs.id}' type='valid'/>`);
      const result = await c.wire.next((el) => el.is('result', NS_DB), '<db:result type=valid/>');
      assert.equal(result.attrs.type, 'valid', result.toString());
      c.wire.write(`<message from='bob@${REMOTE}/r' to='${alice.jid}' type='chat' id='in2'><body>dialback works</body></message>`);
      const got = await alice.waitFor((el) => el.name === 'message' && el.attrs.id === 'in2');
      assert.equal(got.getChildText('body'), 'dialback works');
    });
  });

  it('incoming s2s, Prosody not trusting our CA with s2s_secure_auth: not-authorized right after TLS', { timeout: 60_000 }, async (t) => {
    const p = await start(t, { trustCa: false, s2sSecureAuth: true });
    await withProsodyLogs(t, [p], async () => {
      const w = await Wire.connect(p.s2sPort);
      t.after(() => w.destroy());
      w.write(serverStreamHeader(REMOTE, DOMAIN));
      await w.next((el) => el.is('features', NS.stream), 'features');
      await w.starttls({ servername: DOMAIN, ca: ca.certPem, cert: remoteCert });
      w.write(serverStreamHeader(REMOTE, DOMAIN));
      const err = await w.next((el) => el.name === 'stream:error', 'a stream error');
      t.diagnostic(err.toString());
      assert.ok(err.getChild('not-authorized', NS.streams), err.toString());
    });
  });
});

/**
 * Opens an s2s stream to Prosody as REMOTE: header, STARTTLS (verifying
 * Prosody's certificate against the test CA, presenting `cert`), header
 * again. Returns the stream and both feature sets.
 */
async function openToProsody(p: ProsodyServer, cert: IssuedCert): Promise<{ wire: Wire; featuresBeforeTls: XmlElement; features: XmlElement }> {
  const wire = await Wire.connect(p.s2sPort);
  wire.write(serverStreamHeader(REMOTE, p.domain));
  const h = await wire.streamHeader();
  assert.equal(h.from, p.domain);
  const featuresBeforeTls = await wire.next((el) => el.is('features', NS.stream), 'features');
  await wire.starttls({ servername: p.domain, ca: cert.caPem, cert });
  wire.write(serverStreamHeader(REMOTE, p.domain));
  await wire.streamHeader();
  const features = await wire.next((el) => el.is('features', NS.stream), 'features after TLS');
  return { wire, featuresBeforeTls, features };
}
