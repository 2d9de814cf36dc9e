/**
 * Federation fixtures: certificates from a test CA for made-up domains, the
 * s2s part of a server's configuration, and a raw server-to-server peer for
 * bad-input tests (a real TLS socket, no XMPP library: it must be able to
 * misbehave).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { issueServerCert, type TestCa } from '@hyphae/pki';
import { scrapeMetrics, metricValue, type HyphaeServer } from './server.js';

export interface CertFiles {
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
}

/** A certificate for `domain` and its subdomains (conference.…), written to `dir`. */
export async function certFor(dir: string, ca: TestCa, domain: string, opts: { eku?: ('serverAuth' | 'clientAuth')[] } = {}): Promise<CertFiles> {
  mkdirSync(dir, { recursive: true });
  const issued = await issueServerCert(ca, { domains: [domain, `*.${domain}`], ...(opts.eku ? { eku: opts.eku } : {}) });
  const cert = join(dir, `${domain}.crt`);
  const key = join(dir, `${domain}.key`);
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem, { mode: 0o600 });
  return { cert, key, certPem: issued.certPem, keyPem: issued.keyPem };
}

export function writeCa(dir: string, ca: TestCa, name = 'ca.pem'): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, ca.certPem);
  return p;
}

/** The config of a federating server: its certificate, trust, and how it finds peers. */
export function fedConfig(o: {
  domain: string;
  certs: CertFiles;
  caFile: string;
  dnsServers?: string[];
  staticRoutes?: string[];
  s2s?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    domains: [o.domain],
    tls: { cert: o.certs.cert, key: o.certs.key },
    s2s: {
      enabled: true,
      caFile: o.caFile,
      caOnly: true,
      dnsServers: o.dnsServers ?? [],
      staticRoutes: o.staticRoutes ?? [],
      connectTimeoutMs: 3000,
      // Every test peer listens on loopback, which s2s refuses by default (address-policy.ts).
      allowedAddresses: ['127.0.0.0/8', '::1/128'],
      ...(o.s2s ?? {}),
    },
  };
}

/** Sum of a counter over every process of a server (one HTTP port per process). */
export async function metricSum(server: HyphaeServer, name: string, labels: Record<string, string>, ports?: number[]): Promise<number> {
  let sum = 0;
  for (const port of ports ?? [server.httpPort]) {
    const v = metricValue(await scrapeMetrics(port), name, labels);
    sum += v ?? 0;
  }
  return sum;
}

/** A raw XML stream over TCP (then TLS) to a server-to-server port, read as text. */
export class RawPeer {
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(public socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  private attach(s: Socket | TLSSocket): void {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.buf += d;
      for (const w of this.waiters.splice(0)) w();
    });
    s.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    s.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host, port }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  send(s: string): void {
    this.socket.write(s);
  }

  header(from: string | null, to: string): void {
    this.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'${from ? ` from='${from}'` : ''} to='${to}' version='1.0'>`);
  }

  /** Waits until the text received so far matches; returns the match and consumes up to its end. */
  async expect(re: RegExp, timeoutMs = 5000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m.index + m[0].length);
        return m;
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${re}; got: ${this.buf.slice(0, 400)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got: ${this.buf.slice(0, 400)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** STARTTLS (the <proceed/> must be next), presenting `certs` as the client certificate. */
  async startTls(servername: string, certs?: CertFiles): Promise<void> {
    this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.expect(/<proceed[^>]*\/>/);
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const tls = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ socket: raw as Socket, servername, rejectUnauthorized: false, ...(certs ? { cert: certs.certPem, key: certs.keyPem } : {}) }, () => resolve(t));
      t.once('error', reject);
    });
    this.buf = '';
    this.socket = tls;
    this.attach(tls);
  }

  /** Whether the peer has closed the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
