/**
 * Helpers of the proxy65 tests (not part of the service): a SOCKS5 client
 * that reads exact byte counts, a stand-in c2s node that collects the
 * stanzas the service sends, and configuration/metric shortcuts.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import type { Bus } from '@hyphae/bus';
import { defaultConfig, type HyphaeConfig } from '@hyphae/config';
import { openEmbeddedStores, type Stores } from '@hyphae/store';
import { createLogger, createMetrics, type Logger, type Metrics } from '@hyphae/observability';
import { H, PROXY65_SUBJECT, c2sSubject } from '@hyphae/router';
import { tryParseJid } from '@hyphae/jid';

type Proxy65Config = HyphaeConfig['proxy65'];

export const DOMAIN = 'example.org';
export const PROXY = `proxy.${DOMAIN}`;
const enc = new TextEncoder();
const dec = new TextDecoder();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function testConfig(nodeId: string, proxy: Partial<Proxy65Config> = {}): HyphaeConfig {
  const base = defaultConfig();
  return {
    ...base,
    nodeId,
    domains: [DOMAIN],
    log: { level: 'silent' },
    proxy65: { ...base.proxy65, host: '127.0.0.1', port: 0, ...proxy },
  };
}

export function quietLogger(): Logger {
  return createLogger({ service: 'test', level: process.env.HYPHAE_TEST_LOG ?? 'silent' });
}

export function testMetrics(node = 'test'): Metrics {
  return createMetrics({ service: 'proxy65', node, defaultMetrics: false });
}

/** The value of a metric without labels, or of one label set. */
export async function metric(m: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await m.get();
  let sum = 0;
  for (const v of values) if (Object.entries(labels).every(([k, x]) => v.labels[k] === x)) sum += v.value;
  return sum;
}

export async function tempStores(): Promise<{ stores: Stores; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'hy-proxy65-'));
  const stores = await openEmbeddedStores({ dir });
  return {
    stores,
    async dispose() {
      await stores.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `cond` until true (or fails after `ms`). */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Reads a socket: exact byte counts, everything until the end, or just the close. */
export class Reader {
  /** Received and not read yet, in order (joined lazily: large transfers stay linear). */
  private chunks: Buffer[] = [];
  private size = 0;
  private wake: (() => void) | null = null;
  ended = false;
  closed = false;
  total = 0;

  constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.size += c.length;
      this.total += c.length;
      this.poke();
    });
    socket.on('end', () => {
      this.ended = true;
      this.poke();
    });
    socket.on('close', () => {
      this.closed = true;
      this.poke();
    });
    socket.on('error', () => undefined);
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out: ${what} (have ${this.size} bytes, ended=${this.ended}, closed=${this.closed})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  /** Exactly n bytes; rejects if the stream ends first. */
  async read(n: number, ms = 3000): Promise<Buffer> {
    await this.until(() => this.size >= n || this.ended || this.closed, ms, `${n} bytes`);
    if (this.size < n) throw new Error(`stream ended after ${this.size} of ${n} bytes`);
    return this.take(n);
  }

  /** Everything until the peer's FIN (or close). */
  async readToEnd(ms = 5000): Promise<Buffer> {
    await this.until(() => this.ended || this.closed, ms, 'end of stream');
    return this.take(this.size);
  }

  /** Bytes received and not read yet. */
  pending(): number {
    return this.size;
  }

  /** Until the proxy has closed its side (FIN or reset). */
  async waitClosed(ms = 3000): Promise<void> {
    await this.until(() => this.ended || this.closed, ms, 'close');
  }
}

export function tcp(port: number): Promise<{ socket: Socket; reader: Reader }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({ socket, reader: new Reader(socket) });
    });
  });
}

export function request(hash: string, opts: { cmd?: number; atyp?: number; port?: number; ver?: number } = {}): Buffer {
  const a = Buffer.from(hash, 'latin1');
  const port = opts.port ?? 0;
  return Buffer.concat([Buffer.from([opts.ver ?? 5, opts.cmd ?? 1, 0, opts.atyp ?? 3, a.length]), a, Buffer.from([port >> 8, port & 0xff])]);
}

/** A SOCKS5 CONNECT to `hash` that succeeded (asserts the replies). */
export async function socksConnect(port: number, hash: string): Promise<{ socket: Socket; reader: Reader }> {
  const c = await tcp(port);
  c.socket.write(Buffer.from([5, 1, 0]));
  const m = await c.reader.read(2);
  if (m[0] !== 5 || m[1] !== 0) throw new Error(`method reply ${m.toString('hex')}`);
  c.socket.write(request(hash));
  const r = await c.reader.read(5 + hash.length + 2);
  const expected = Buffer.concat([Buffer.from([5, 0, 0, 3, hash.length]), Buffer.from(hash, 'latin1'), Buffer.from([0, 0])]);
  if (!r.equals(expected)) throw new Error(`connect reply ${r.toString('hex')}`);
  return c;
}

export function randomHash(): string {
  return randomBytes(20).toString('hex');
}

/**
 * Stands in for a c2s node: users "log in" (a session in the registry on
 * this node) and the stanzas routed to them are collected by id.
 */
export class FakeC2s {
  readonly node = `c2s-test-${randomBytes(3).toString('hex')}`;
  private readonly waiting = new Map<string, (el: Element) => void>();
  readonly received: Element[] = [];
  private seq = 0;

  constructor(private readonly bus: Bus, private readonly stores: Stores) {
    bus.subscribe(c2sSubject(this.node), (msg) => {
      const el = parse(dec.decode(msg.data)) as Element;
      this.received.push(el);
      const id = String(el.attrs.id ?? '');
      const w = this.waiting.get(id);
      if (w) {
        this.waiting.delete(id);
        w(el);
      }
      msg.respond(new Uint8Array(0), { [H.ack]: 'ok' });
    });
  }

  async login(full: string): Promise<void> {
    const jid = tryParseJid(full);
    if (!jid) throw new Error(`bad jid ${full}`);
    await this.stores.sessions.bind(jid.toBareString(), {
      resource: jid.resource, sessionId: randomBytes(8).toString('hex'), node: this.node, priority: 0, available: true, boundAt: Date.now(),
    });
  }

  /**
   * Sends `<iq>` (its body given as XML) from `from` to `to` through the
   * service subject, as the router would, and returns the reply.
   */
  async iq(from: string, type: 'get' | 'set', body: string, to = PROXY): Promise<Element> {
    const id = `iq${++this.seq}`;
    const reply = new Promise<Element>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply to ${id}`)), 10_000);
      this.waiting.set(id, (el) => {
        clearTimeout(t);
        resolve(el);
      });
    });
    const xml = `<iq type='${type}' id='${id}' from='${from}' to='${to}'>${body}</iq>`;
    await this.bus.request(PROXY65_SUBJECT, enc.encode(xml), { timeoutMs: 10_000 });
    return reply;
  }

  /** Sends a stanza and collects nothing (for stanzas that get no answer). */
  async send(xml: string): Promise<void> {
    await this.bus.request(PROXY65_SUBJECT, enc.encode(xml), { timeoutMs: 10_000 });
  }
}

/** The stanza error condition of an error reply (null for a result). */
export function errorCondition(el: Element): string | null {
  if (el.attrs.type !== 'error') return null;
  const err = el.getChild('error');
  const cond = err?.getChildElements().find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text');
  return cond?.name ?? 'none';
}

export function errorType(el: Element): string | undefined {
  return el.getChild('error')?.attrs.type as string | undefined;
}
