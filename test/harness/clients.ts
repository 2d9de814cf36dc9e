/**
 * Real clients for end-to-end tests.
 *
 * - `login()` connects a real @xmpp/client (STARTTLS or XEP-0368 direct TLS,
 *   SCRAM-SHA-1 or PLAIN, resource binding) and wraps it in a `Session` that
 *   buffers every incoming stanza, so a test can await one matching a
 *   predicate without racing the network.
 * - `register()` does XEP-0077 in-band registration before authentication
 *   over a `RawStream` (our own tiny stream client: @xmpp/client cannot
 *   register before auth).
 * - `RawStream` also serves bad-input tests: it writes whatever bytes it is
 *   given and parses what the server answers.
 *
 * Servers in tests present self-signed certificates: this module turns off
 * certificate verification for the test process (NODE_TLS_REJECT_UNAUTHORIZED=0,
 * which @xmpp/client's STARTTLS upgrade honours; it passes no TLS options).
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { client as xmppClient, xml, type Client, type XmlElement, type XmppError } from '@xmpp/client';
import type { HyphaeServer, C2sNode } from './server.js';

/**
 * What a client needs of a server: its domain and c2s endpoints. A
 * HyphaeServer is one; so is a ProsodyServer (harness/prosody.ts).
 */
export type XmppEndpoint = Pick<HyphaeServer, 'domain' | 'c2s'>;

export { xml };
export type { XmlElement };

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

// Namespaces are protocol facts: one table, shared with the server.
import { NS } from '@hyphae/stanza';
export { NS };

const DEFAULT_WAIT_MS = 10_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fresh lowercase username, unique in this run. */
export function uniqueName(prefix = 'u'): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/** Rejects with `message` after `ms` unless `p` settles first. */
export async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${message}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The defined condition of a stanza error (`<error><item-not-found xmlns=stanzas/></error>`), or null. */
export function stanzaErrorCondition(stanza: XmlElement): string | null {
  const err = stanza.getChild('error');
  if (!err) return null;
  const cond = err.getChildElements().find((c) => c.attrs.xmlns === NS.stanzas);
  return cond ? cond.name : null;
}

/** The condition of a `<stream:error/>`, or null when `el` is not one. */
export function streamErrorCondition(el: XmlElement): string | null {
  if (!isStreamError(el)) return null;
  const cond = el.getChildElements().find((c) => c.attrs.xmlns === NS.streams);
  return cond ? cond.name : '(no condition)';
}

function isStreamError(el: XmlElement): boolean {
  return el.name === 'stream:error' || el.is('error', NS.stream);
}

/** The bare form of a JID string. */
export function bareJid(j: string): string {
  const slash = j.indexOf('/');
  return slash < 0 ? j : j.slice(0, slash);
}

// ---------------------------------------------------------------------------
// A buffer of received elements with predicate waiters.

type Predicate = (el: XmlElement) => boolean;

interface Waiter {
  pred: Predicate;
  resolve: (el: XmlElement) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

class Inbox {
  private items: XmlElement[] = [];
  private waiters = new Set<Waiter>();
  private closedReason: string | null = null;

  push(el: XmlElement): void {
    for (const w of this.waiters) {
      if (w.pred(el)) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(el);
        return;
      }
    }
    this.items.push(el);
    if (this.items.length > 200_000) this.items.shift();
  }

  /** Removes and returns the first buffered element matching, else waits for one. */
  take(pred: Predicate, timeoutMs: number, what: string): Promise<XmlElement> {
    const i = this.items.findIndex(pred);
    if (i >= 0) {
      const [el] = this.items.splice(i, 1);
      return Promise.resolve(el as XmlElement);
    }
    if (this.closedReason !== null) {
      return Promise.reject(new Error(`waiting for ${what}: connection already closed (${this.closedReason})`));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /** Buffered elements matching (not removed). */
  peek(pred: Predicate): XmlElement[] {
    return this.items.filter(pred);
  }

  /** Removes and returns the buffered elements matching. */
  drain(pred: Predicate): XmlElement[] {
    const out: XmlElement[] = [];
    this.items = this.items.filter((el) => {
      if (!pred(el)) return true;
      out.push(el);
      return false;
    });
    return out;
  }

  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error(`connection closed while waiting (${reason})`));
    }
    this.waiters.clear();
  }
}

// ---------------------------------------------------------------------------
// @xmpp/client sessions.

export type Mechanism = 'SCRAM-SHA-1' | 'PLAIN';

export interface LoginOptions {
  username: string;
  password: string;
  /** Client-chosen resource; omitted → the server generates one. */
  resource?: string;
  /** SASL mechanism to use (default SCRAM-SHA-1). Must be offered by the server. */
  mechanism?: Mechanism;
  /** Index of the c2s node to connect to (cluster); default 0. */
  node?: number;
  /** Connect to the XEP-0368 direct TLS port instead of STARTTLS. */
  directTls?: boolean;
  /** Whole login deadline. */
  timeoutMs?: number;
}

/** Why a login failed: `condition` is the SASL failure condition when there is one. */
export class LoginError extends Error {
  constructor(
    message: string,
    readonly condition: string | null,
  ) {
    super(message);
    this.name = 'LoginError';
  }
}

export interface StreamEnd {
  /** Condition of the stream error received, if any. */
  streamError: string | null;
}

/** A logged-in @xmpp/client with buffered receive. */
export class Session {
  /** Full JID bound. */
  readonly jid: string;
  readonly bare: string;
  readonly resource: string;
  /** Every stream error condition received, in order. */
  readonly streamErrors: string[] = [];
  private readonly inbox = new Inbox();
  private offline = false;
  private readonly offlineWaiters: Array<() => void> = [];

  constructor(
    readonly client: Client,
    readonly node: C2sNode,
    /** SASL mechanisms advertised by the server (from stream features). */
    readonly offeredMechanisms: string[],
    /** The mechanism used. */
    readonly mechanism: string,
    /** Stream features after authentication. */
    readonly postAuthFeatures: XmlElement | null,
    streamErrors: string[],
  ) {
    const j = client.jid;
    if (!j) throw new Error('client has no bound JID');
    this.jid = j.toString();
    this.bare = bareJid(this.jid);
    this.resource = j.resource;
    this.streamErrors.push(...streamErrors);
    client.on('stanza', (el: XmlElement) => this.inbox.push(el));
    client.on('element', (el: XmlElement) => {
      const cond = streamErrorCondition(el);
      if (cond !== null) this.streamErrors.push(cond);
    });
    const markOffline = (why: string): void => {
      if (this.offline) return;
      this.offline = true;
      this.inbox.close(why);
      for (const w of this.offlineWaiters.splice(0)) w();
    };
    client.on('disconnect', () => markOffline('disconnected'));
    client.on('offline', () => markOffline('offline'));
    client.on('close', () => markOffline('stream closed'));
  }

  get isOnline(): boolean {
    return !this.offline && this.client.status === 'online';
  }

  send(el: XmlElement): Promise<void> {
    return this.client.send(el);
  }

  /** Writes raw XML on the authenticated stream (for stanzas @xmpp/client would alter). */
  sendRaw(s: string): Promise<void> {
    return this.client.write(s);
  }

  /** The first received stanza matching `pred` (buffered or future). */
  waitFor(pred: Predicate, timeoutMs = DEFAULT_WAIT_MS, what = 'a matching stanza'): Promise<XmlElement> {
    return this.inbox.take(pred, timeoutMs, `${what} at ${this.jid}`);
  }

  /** The first `n` stanzas matching `pred`, in arrival order. */
  async collect(n: number, pred: Predicate, timeoutMs: number, what = 'stanzas'): Promise<XmlElement[]> {
    const out: XmlElement[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const left = deadline - Date.now();
      try {
        out.push(await this.inbox.take(pred, Math.max(1, left), what));
      } catch (err) {
        throw new Error(`${(err as Error).message}: got ${out.length} of ${n}`);
      }
    }
    return out;
  }

  /** Received stanzas matching, still buffered (not consumed). */
  buffered(pred: Predicate): XmlElement[] {
    return this.inbox.peek(pred);
  }

  /** Removes the buffered stanzas matching (default: all) and returns them. */
  drain(pred: Predicate = () => true): XmlElement[] {
    return this.inbox.drain(pred);
  }

  /**
   * Sends an iq (adding an id when it has none) and returns the answer,
   * `type='result'` or `type='error'` alike.
   */
  async iq(el: XmlElement, timeoutMs = DEFAULT_WAIT_MS): Promise<XmlElement> {
    if (!el.attrs.id) el.attrs.id = `iq-${randomBytes(6).toString('hex')}`;
    const id = el.attrs.id;
    const answer = this.waitFor(
      (s) => s.name === 'iq' && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'),
      timeoutMs,
      `answer to iq ${id} (${el.toString().slice(0, 120)})`,
    );
    await this.send(el);
    return answer;
  }

  /** XEP-0199 ping; returns the answer. */
  ping(to: string, timeoutMs = DEFAULT_WAIT_MS): Promise<XmlElement> {
    return this.iq(xml('iq', { type: 'get', to }, xml('ping', { xmlns: NS.ping })), timeoutMs);
  }

  /** Resolves when the connection is gone (stream closed or socket closed). */
  waitOffline(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (this.offline) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.offlineWaiters.push(resolve)),
      timeoutMs,
      `${this.jid} to be disconnected`,
    );
  }

  /** Resolves with the condition of the first stream error (now or later). */
  async waitStreamError(timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const first = this.streamErrors[0];
      if (first !== undefined) return first;
      if (this.offline) {
        await sleep(50); // the error element is emitted before the disconnect; give it a turn
        const e = this.streamErrors[0];
        if (e !== undefined) return e;
        throw new Error(`${this.jid} was disconnected without a stream error`);
      }
      await sleep(20);
    }
    throw new Error(`timeout after ${timeoutMs} ms waiting for a stream error at ${this.jid}`);
  }

  /** Closes the stream and socket; never throws, never hangs. */
  async stop(): Promise<void> {
    if (this.offline) {
      this.client.reconnect.stop();
      return;
    }
    try {
      await withTimeout(this.client.stop(), 5_000, `stop ${this.jid}`);
    } catch {
      // already gone or unresponsive: nothing else to do
    }
  }
}

function endpoint(server: XmppEndpoint, node = 0): C2sNode {
  const n = server.c2s[node];
  if (!n) throw new Error(`server has no c2s node ${node} (it has ${server.c2s.length})`);
  return n;
}

/**
 * `client.start()` without its stray rejection. @xmpp/connection 0.14's
 * start() creates its "online" promise (rejected by the next 'error' event)
 * before it awaits the stream open; when the open fails first (the
 * connection reset by a node that dies), that promise rejects with nobody
 * awaiting it, an unhandled rejection in the test process. The same two
 * steps, with that promise handled.
 */
async function startClient(client: Client, service: string, domain: string): Promise<void> {
  await client.connect(service);
  const online = new Promise<void>((resolve, reject) => {
    const onOnline = (): void => {
      client.off('error', onError);
      resolve();
    };
    const onError = (err: Error): void => {
      client.off('online', onOnline);
      reject(err);
    };
    client.once('online', onOnline);
    client.once('error', onError);
  });
  online.catch(() => undefined);
  await client.open({ domain });
  await online;
}

/**
 * Logs in with @xmpp/client. Rejects with LoginError (condition = SASL
 * failure condition, e.g. 'not-authorized') when authentication fails.
 */
export async function login(server: XmppEndpoint, opts: LoginOptions): Promise<Session> {
  const node = endpoint(server, opts.node);
  const mechanism = opts.mechanism ?? 'SCRAM-SHA-1';
  const service = opts.directTls ? `xmpps://${node.host}:${node.directTlsPort}` : `xmpp://${node.host}:${node.port}`;
  let offered: string[] = [];
  let postAuthFeatures: XmlElement | null = null;
  let authenticated = false;
  const streamErrors: string[] = [];
  const errors: Error[] = [];
  const client = xmppClient({
    service,
    domain: server.domain,
    resource: opts.resource,
    timeout: 15_000,
    credentials: async (authenticate, mechanisms) => {
      if (!offered.includes(mechanism)) {
        throw new LoginError(`server did not offer ${mechanism}; offered: ${offered.join(', ')}`, null);
      }
      if (!mechanisms.includes(mechanism)) {
        throw new LoginError(`@xmpp/client does not support ${mechanism} (supports: ${mechanisms.join(', ')})`, null);
      }
      await authenticate({ username: opts.username, password: opts.password }, mechanism);
      authenticated = true;
    },
  });
  // Tests decide when to reconnect, never the library.
  client.reconnect.stop();
  client.on('error', (err: Error) => errors.push(err));
  // Before the library's own listeners, which run SASL from the features element.
  client.prependListener('element', (el: XmlElement) => {
    const cond = streamErrorCondition(el);
    if (cond !== null) streamErrors.push(cond);
    if (el.is('features', NS.stream)) {
      const mechs = el.getChild('mechanisms', NS.sasl);
      if (mechs) offered = mechs.getChildren('mechanism').map((m) => m.text());
      if (authenticated) postAuthFeatures = el;
    }
  });
  const timeoutMs = opts.timeoutMs ?? 20_000;
  try {
    await withTimeout(startClient(client, service, server.domain), timeoutMs, `login of ${opts.username}@${server.domain} via ${service}`);
  } catch (err) {
    client.removeAllListeners('disconnect');
    void withTimeout(client.stop(), 5_000, 'stop').catch(() => undefined);
    const e = err as XmppError;
    const condition = e.name === 'SASLError' ? e.condition : e instanceof LoginError ? e.condition : null;
    const detail = streamErrors.length ? ` (stream errors: ${streamErrors.join(', ')})` : '';
    throw new LoginError(`login of ${opts.username} via ${service} with ${mechanism} failed: ${e.message}${detail}`, condition);
  }
  if (!client.isSecure()) {
    await client.stop().catch(() => undefined);
    throw new LoginError(`login of ${opts.username} completed without TLS`, null);
  }
  return new Session(client, node, offered, mechanism, postAuthFeatures, streamErrors);
}

/** login() that must fail: resolves with the LoginError (and fails if the login succeeded). */
export async function loginFails(server: XmppEndpoint, opts: LoginOptions): Promise<LoginError> {
  let s: Session;
  try {
    s = await login(server, opts);
  } catch (err) {
    if (err instanceof LoginError) return err;
    throw err;
  }
  await s.stop();
  throw new Error(`login of ${opts.username} succeeded but was expected to fail`);
}

// ---------------------------------------------------------------------------
// Raw streams.

export interface RawStreamOptions {
  node?: number;
  directTls?: boolean;
}

/**
 * A minimal XMPP stream client over a socket: sends exactly the bytes it is
 * given; parses the server's stream into top-level elements.
 */
export class RawStream {
  /** Attributes of the latest stream header received. */
  header: Record<string, string | undefined> | null = null;
  /** Set when the peer closed the stream (`</stream:stream>`). */
  streamEnded = false;
  /** Every stream error condition received. */
  readonly streamErrors: string[] = [];
  /** Raw text received (capped), for diagnostics. */
  received = '';
  socketError: Error | null = null;
  private inbox = new Inbox();
  private headerWaiters: Array<() => void> = [];
  private closeWaiters: Array<() => void> = [];
  private parser = new xml.Parser();
  private decoder = new StringDecoder('utf8');
  private closed = false;
  private onData = (buf: Buffer): void => {
    const s = this.decoder.write(buf);
    if (this.received.length < 64 * 1024) this.received += s;
    try {
      this.parser.write(s);
    } catch (err) {
      this.inbox.push(xml('parse-error', { message: (err as Error).message }));
    }
  };

  private constructor(
    private socket: Socket | TLSSocket,
    readonly domain: string,
  ) {
    this.attachParser();
    this.attachSocket(socket);
  }

  static async connect(server: XmppEndpoint, opts: RawStreamOptions = {}): Promise<RawStream> {
    const node = endpoint(server, opts.node);
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = opts.directTls
        ? tlsConnect({
            host: node.host,
            port: node.directTlsPort,
            servername: server.domain,
            rejectUnauthorized: false,
            ALPNProtocols: ['xmpp-client'],
          })
        : netConnect({ host: node.host, port: node.port });
      s.once(opts.directTls ? 'secureConnect' : 'connect', () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    return new RawStream(socket, server.domain);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private attachParser(): void {
    this.parser = new xml.Parser();
    this.parser.on('start', (el: XmlElement) => {
      this.header = { ...el.attrs };
      for (const w of this.headerWaiters.splice(0)) w();
    });
    this.parser.on('element', (el: XmlElement) => {
      const cond = streamErrorCondition(el);
      if (cond !== null) this.streamErrors.push(cond);
      this.inbox.push(el);
    });
    this.parser.on('end', () => {
      this.streamEnded = true;
    });
    this.parser.on('error', (err: Error) => {
      this.inbox.push(xml('parse-error', { message: err.message }));
    });
  }

  private attachSocket(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', (err) => {
      this.socketError = err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.inbox.close('socket closed');
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  /** Writes bytes; resolves when flushed, or when the socket is gone (see socketError). */
  write(data: string | Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.write(data, () => resolve());
    });
  }

  /** The initial stream header for `domain`. */
  headerXml(to = this.domain): string {
    return `<?xml version='1.0'?><stream:stream to='${to}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='${NS.stream}'>`;
  }

  /** Sends a stream header and returns the stream features. */
  async openStream(to = this.domain, timeoutMs = DEFAULT_WAIT_MS): Promise<XmlElement> {
    this.header = null;
    this.attachParser();
    await this.write(this.headerXml(to));
    return this.next((el) => el.is('features', NS.stream), timeoutMs, 'stream features');
  }

  /** STARTTLS (features already read): proceed, TLS handshake, new stream; returns the new features. */
  async starttls(timeoutMs = DEFAULT_WAIT_MS): Promise<XmlElement> {
    await this.write(`<starttls xmlns='${NS.tls}'/>`);
    const answer = await this.next((el) => el.getNS() === NS.tls, timeoutMs, 'STARTTLS answer');
    if (answer.name !== 'proceed') throw new Error(`STARTTLS: got ${answer.toString()}`);
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, servername: this.domain, rejectUnauthorized: false });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    this.decoder = new StringDecoder('utf8');
    this.attachSocket(secure);
    return this.openStream(this.domain, timeoutMs);
  }

  /** SASL PLAIN (over TLS), then a new stream; returns the post-auth features. */
  async authPlain(username: string, password: string, timeoutMs = DEFAULT_WAIT_MS): Promise<XmlElement> {
    const payload = Buffer.from(`\0${username}\0${password}`, 'utf8').toString('base64');
    await this.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${payload}</auth>`);
    const answer = await this.next((el) => el.getNS() === NS.sasl, timeoutMs, 'SASL answer');
    if (answer.name !== 'success') throw new Error(`SASL PLAIN: got ${answer.toString()}`);
    return this.openStream(this.domain, timeoutMs);
  }

  /** Resource binding; returns the full JID. */
  async bind(resource?: string, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    const id = `bind-${randomBytes(4).toString('hex')}`;
    const res = resource ? `<resource>${xml.escapeXML(resource)}</resource>` : '';
    await this.write(`<iq type='set' id='${id}'><bind xmlns='${NS.bind}'>${res}</bind></iq>`);
    const answer = await this.next((el) => el.name === 'iq' && el.attrs.id === id, timeoutMs, 'bind answer');
    const j = answer.getChild('bind', NS.bind)?.getChildText('jid');
    if (answer.attrs.type !== 'result' || !j) throw new Error(`bind: got ${answer.toString()}`);
    return j;
  }

  /** TLS (STARTTLS unless direct TLS), PLAIN auth, bind: a ready client stream. Returns the full JID. */
  async loginPlain(username: string, password: string, resource?: string): Promise<string> {
    const features = await this.openStream();
    if (features.getChild('starttls', NS.tls)) await this.starttls();
    await this.authPlain(username, password);
    return this.bind(resource);
  }

  /** The first received top-level element matching (buffered or future). */
  next(pred: Predicate = () => true, timeoutMs = DEFAULT_WAIT_MS, what = 'an element'): Promise<XmlElement> {
    return this.inbox.take(pred, timeoutMs, what);
  }

  /** The condition of the stream error the server sends (now or later). */
  async streamError(timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    const first = this.streamErrors[0];
    if (first !== undefined) return first;
    try {
      const el = await this.next((e) => streamErrorCondition(e) !== null, timeoutMs, 'a stream error');
      return streamErrorCondition(el) ?? '(none)';
    } catch (err) {
      const again = this.streamErrors[0];
      if (again !== undefined) return again;
      throw new Error(`${(err as Error).message}; received: ${this.received.slice(-600)}`);
    }
  }

  /** Resolves when the server has closed the connection. */
  waitClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (this.closed) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.closeWaiters.push(resolve)),
      timeoutMs,
      'the server to close the connection',
    );
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens a raw socket to a c2s node (STARTTLS port, or direct TLS): see RawStream. */
export function rawStream(server: XmppEndpoint, opts: RawStreamOptions = {}): Promise<RawStream> {
  return RawStream.connect(server, opts);
}

// ---------------------------------------------------------------------------
// XEP-0077 in-band registration.

export interface RegisterResult {
  type: 'result' | 'error';
  /** Stanza error condition when type is 'error'. */
  condition: string | null;
  stanza: XmlElement;
}

/** Registers before authentication (STARTTLS first); returns the server's answer. */
export async function tryRegister(
  server: HyphaeServer,
  username: string,
  password: string,
  opts: RawStreamOptions = {},
): Promise<RegisterResult> {
  const raw = await RawStream.connect(server, opts);
  try {
    let features = await raw.openStream();
    if (features.getChild('starttls', NS.tls)) features = await raw.starttls();
    const id = `reg-${randomBytes(4).toString('hex')}`;
    await raw.write(
      `<iq type='set' id='${id}'><query xmlns='${NS.register}'><username>${xml.escapeXML(username)}</username><password>${xml.escapeXML(password)}</password></query></iq>`,
    );
    const answer = await raw.next((el) => el.name === 'iq' && el.attrs.id === id, DEFAULT_WAIT_MS, `registration answer for ${username}`).catch((err: Error) => {
      const se = raw.streamErrors.length ? ` (stream errors: ${raw.streamErrors.join(', ')})` : '';
      throw new Error(`registration of ${username}: ${err.message}${se}`);
    });
    const type = answer.attrs.type;
    if (type !== 'result' && type !== 'error') throw new Error(`registration: unexpected answer ${answer.toString()}`);
    return { type, condition: type === 'error' ? stanzaErrorCondition(answer) : null, stanza: answer };
  } finally {
    await raw.write('</stream:stream>');
    raw.destroy();
  }
}

/** Registers an account; throws when the server refuses. */
export async function register(server: HyphaeServer, username: string, password: string, opts: RawStreamOptions = {}): Promise<void> {
  const r = await tryRegister(server, username, password, opts);
  if (r.type !== 'result') throw new Error(`registration of ${username} refused: ${r.condition}: ${r.stanza.toString()}`);
}

/** Registers a fresh account and returns its credentials. */
export async function newAccount(server: HyphaeServer, prefix = 'u'): Promise<{ username: string; password: string; bare: string }> {
  const username = uniqueName(prefix);
  const password = `pw-${randomBytes(6).toString('hex')}`;
  await register(server, username, password);
  return { username, password, bare: `${username}@${server.domain}` };
}

/** Logs in on a fresh connection and pings the server: proves the server still serves clients. */
export async function assertServes(server: HyphaeServer, account: { username: string; password: string }, node = 0): Promise<void> {
  const s = await login(server, { ...account, node });
  try {
    const pong = await s.ping(server.domain);
    if (pong.attrs.type !== 'result') throw new Error(`server ping answered ${pong.toString()}`);
  } finally {
    await s.stop();
  }
}
