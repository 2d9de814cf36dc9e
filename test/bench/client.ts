/**
 * The load tool's own XMPP client: lean enough that thousands of them fit in
 * one process, and a real client on the wire (see docs/benchmarks.md, "the
 * client", for the comparison with @xmpp/client).
 *
 * TCP (TCP_NODELAY) → stream header → `<stream:features/>` → STARTTLS
 * (node:tls, certificate not verified) → stream restart → SASL SCRAM-SHA-1
 * (or -256) with the server signature verified → stream restart → resource
 * binding (and the RFC 3921 session, if the server marks it required) →
 * initial presence. XEP-0077 registration uses the same stream up to TLS.
 *
 * Incoming bytes go through `Framer` (framing.ts), which cuts them into
 * top-level elements as text. A scenario may install `fast`, which sees every
 * element's text first and takes the hot ones (room messages) without a
 * parse; the rest are parsed with ltx and handed to waiters or `onStanza`.
 * Outgoing writes are queued and written once per event-loop turn.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { parse, type Element } from 'ltx';
import { Framer, escapeXml } from './framing.js';
import { ScramClient, type ScramMechanism } from './scram.js';

export const NS = {
  client: 'jabber:client',
  stream: 'http://etherx.jabber.org/streams',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  register: 'jabber:iq:register',
  data: 'jabber:x:data',
  muc: 'http://jabber.org/protocol/muc',
  mucUser: 'http://jabber.org/protocol/muc#user',
  mucOwner: 'http://jabber.org/protocol/muc#owner',
  roster: 'jabber:iq:roster',
} as const;

export interface Endpoint {
  host: string;
  port: number;
}

/** Monotonic nanoseconds, comparable across worker threads of one machine. */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export class XmppError extends Error {
  constructor(
    message: string,
    /** SASL failure, stanza error or stream error condition, when there is one. */
    readonly condition: string | null = null,
  ) {
    super(message);
    this.name = 'XmppError';
  }
}

/** The defined condition of a stanza's `<error/>`, or null. */
export function errorCondition(el: Element): string | null {
  const err = el.getChild('error');
  if (!err) return null;
  const cond = err.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS.stanzas && c.name !== 'text');
  return cond ? cond.name : null;
}

export interface ClientOptions {
  endpoint: Endpoint;
  domain: string;
  /** Deadline of each step that waits for the server (default 30 s). */
  timeoutMs?: number;
  /** Sees every write and every received element (wire comparison, debugging). */
  wireLog?: (dir: 'out' | 'in', data: string) => void;
}

export interface LoginOptions {
  username: string;
  password: string;
  resource?: string;
  mechanism?: ScramMechanism;
  /** Send initial presence after binding (default true). */
  presence?: boolean;
  /** Get the roster before the initial presence, as RFC 6121 §2.2 clients do (default true). */
  roster?: boolean;
}

/** Milliseconds of each login step (from the TCP connect on). */
export interface LoginTimings {
  connect: number;
  tls: number;
  auth: number;
  bind: number;
  /** Roster get round trip (0 when not asked). */
  roster: number;
  total: number;
}

type Pred = (el: Element) => boolean;
interface Waiter {
  pred: Pred;
  resolve: (el: Element) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

let idCounter = 0;
export function nextId(prefix = 'b'): string {
  idCounter = (idCounter + 1) % 1e9;
  return `${prefix}${idCounter.toString(36)}`;
}

export class BenchClient {
  /** The full JID after binding. */
  jid = '';
  /** Stream errors received (conditions). */
  readonly streamErrors: string[] = [];
  /** Arrival time (nowNs) of the TCP chunk the element being handled came in. */
  rxAt = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** The roster from the login's roster get (contact → subscription). */
  roster = new Map<string, string>();
  /** Hot path: sees each element's text first; returns true when it took it. */
  fast: ((xml: string) => boolean) | null = null;
  /** Parsed elements nobody waited for. */
  onStanza: ((el: Element, xml: string) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;

  private socket: Socket | TLSSocket;
  private decoder = new StringDecoder('utf8');
  private readonly framer: Framer;
  private streamPrefix = 'stream';
  private readonly waiters: Waiter[] = [];
  private readonly unclaimed: Element[] = [];
  private queue: string[] = [];
  private flushScheduled = false;
  private closed = false;
  private closeReason = '';
  private readonly closeWaiters: Array<() => void> = [];
  private readonly timeoutMs: number;

  private constructor(
    socket: Socket,
    private readonly opts: ClientOptions,
  ) {
    this.socket = socket;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.framer = new Framer({
      header: (tag) => {
        const name = tag.slice(1, tag.search(/[\s>/]/));
        this.streamPrefix = name.slice(0, name.indexOf(':'));
        this.opts.wireLog?.('in', tag);
      },
      element: (xml) => this.onElement(xml),
      end: () => {
        this.opts.wireLog?.('in', '</stream:stream>');
        this.shutdown('the server closed the stream');
      },
    });
    this.attach(socket);
  }

  /** Opens the TCP connection (TCP_NODELAY on). */
  static connect(opts: ClientOptions): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: opts.endpoint.host, port: opts.endpoint.port, noDelay: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new XmppError(`TCP connect to ${opts.endpoint.host}:${opts.endpoint.port} timed out`));
      }, opts.timeoutMs ?? 30_000);
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.setNoDelay(true);
        resolve(new BenchClient(s, opts));
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes queued in user space on the socket (write backpressure). */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', this.onData);
    socket.on('error', (err) => this.shutdown(`socket error: ${err.message}`));
    socket.on('close', () => this.shutdown('socket closed'));
  }

  private readonly onData = (chunk: Buffer): void => {
    this.rxAt = nowNs();
    this.bytesIn += chunk.length;
    const s = this.decoder.write(chunk);
    if (s.length > 0) this.framer.write(s);
  };

  private onElement(xml: string): void {
    this.opts.wireLog?.('in', xml);
    if (this.fast !== null && this.fast(xml)) return;
    let el: Element;
    try {
      el = parse(xml);
    } catch (err) {
      this.shutdown(`unparsable element from the server (${(err as Error).message}): ${xml.slice(0, 200)}`);
      return;
    }
    if (el.name === `${this.streamPrefix}:error`) {
      const cond = el.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS.streams && c.name !== 'text');
      this.streamErrors.push(cond?.name ?? '(none)');
      this.shutdown(`stream error: ${cond?.name ?? xml}`);
      return;
    }
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i] as Waiter;
      if (w.pred(el)) {
        this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(el);
        return;
      }
    }
    if (this.onStanza) this.onStanza(el, xml);
    else {
      this.unclaimed.push(el);
      if (this.unclaimed.length > 256) this.unclaimed.shift();
    }
  }

  private shutdown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new XmppError(`${reason} (while waiting)`, this.streamErrors[0] ?? null));
    }
    this.socket.destroy();
    for (const w of this.closeWaiters.splice(0)) w();
    this.onClose?.(reason);
  }

  /** Queues XML for the next write (one socket write per event-loop turn). */
  send(xml: string): void {
    if (this.closed) return;
    this.queue.push(xml);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const data = this.queue.length === 1 ? (this.queue[0] as string) : this.queue.join('');
    this.queue = [];
    this.bytesOut += Buffer.byteLength(data);
    this.opts.wireLog?.('out', data);
    this.socket.write(data);
  };

  /** The first parsed element matching (already received and unclaimed, or future). */
  waitFor(pred: Pred, what: string, timeoutMs = this.timeoutMs): Promise<Element> {
    const i = this.unclaimed.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.unclaimed.splice(i, 1)[0] as Element);
    if (this.closed) return Promise.reject(new XmppError(`${this.closeReason} (before ${what})`, this.streamErrors[0] ?? null));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.waiters.indexOf(w);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(new XmppError(`timeout after ${timeoutMs} ms waiting for ${what} (${this.jid || this.opts.endpoint.port})`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Sends an iq (its XML must carry `id`) and waits for the result or error. */
  iq(xml: string, id: string, what: string, timeoutMs = this.timeoutMs): Promise<Element> {
    const p = this.waitFor((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'), what, timeoutMs);
    this.send(xml);
    return p;
  }

  private isFeatures = (el: Element): boolean => el.name === `${this.streamPrefix}:features`;

  /** Sends a stream header; resolves with the server's stream features. */
  async openStream(): Promise<Element> {
    this.framer.reset();
    const features = this.waitFor(this.isFeatures, 'stream features');
    // The header @xmpp/client 0.14 sends, byte for byte (it sets no xml:lang unless asked to).
    this.send(`<?xml version='1.0'?><stream:stream version="1.0" xmlns="${NS.client}" xmlns:stream="${NS.stream}" to="${escapeXml(this.opts.domain)}">`);
    return features;
  }

  /** STARTTLS on features that offer it; returns the new stream's features. */
  async starttls(): Promise<Element> {
    const answer = this.waitFor((el) => el.attrs.xmlns === NS.tls, 'the STARTTLS answer');
    this.send(`<starttls xmlns="${NS.tls}"/>`);
    const el = await answer;
    if (el.name !== 'proceed') throw new XmppError(`STARTTLS refused: ${el.toString()}`, el.name);
    const plain = this.socket as Socket;
    plain.removeListener('data', this.onData);
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, servername: this.opts.domain, rejectUnauthorized: false });
      s.once('secureConnect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', reject);
    });
    this.socket = secure;
    this.decoder = new StringDecoder('utf8');
    this.attach(secure);
    return this.openStream();
  }

  /** SASL SCRAM; returns the restarted stream's features. */
  async authenticate(features: Element, username: string, password: string, mechanism: ScramMechanism): Promise<Element> {
    const offered = features.getChild('mechanisms', NS.sasl)?.getChildren('mechanism').map((m) => m.getText()) ?? [];
    if (!offered.includes(mechanism)) throw new XmppError(`the server does not offer ${mechanism} (offered: ${offered.join(', ') || 'none'})`);
    const scram = new ScramClient(mechanism, username, password);
    const isSasl = (el: Element): boolean => el.attrs.xmlns === NS.sasl;
    let answer = this.waitFor(isSasl, 'the SASL challenge');
    this.send(`<auth xmlns="${NS.sasl}" mechanism="${mechanism}">${Buffer.from(scram.first()).toString('base64')}</auth>`);
    let el = await answer;
    if (el.name !== 'challenge') throw saslFailure(el, username);
    const final = await scram.final(Buffer.from(el.getText(), 'base64').toString('utf8'));
    answer = this.waitFor(isSasl, 'the SASL outcome');
    this.send(`<response xmlns="${NS.sasl}">${Buffer.from(final).toString('base64')}</response>`);
    el = await answer;
    if (el.name !== 'success') throw saslFailure(el, username);
    scram.verify(Buffer.from(el.getText(), 'base64').toString('utf8'));
    return this.openStream();
  }

  /** Resource binding (and a required legacy session); returns the full JID. */
  async bind(features: Element, resource?: string): Promise<string> {
    if (!features.getChild('bind', NS.bind)) throw new XmppError('the server offers no resource binding');
    const id = nextId('bind');
    const res = resource ? `<resource>${escapeXml(resource)}</resource>` : '';
    const el = await this.iq(`<iq type="set" id="${id}"><bind xmlns="${NS.bind}">${res}</bind></iq>`, id, 'the bind result');
    const jid = el.getChild('bind', NS.bind)?.getChildText('jid');
    if (el.attrs.type !== 'result' || !jid) throw new XmppError(`bind failed: ${el.toString()}`, errorCondition(el));
    this.jid = jid;
    const session = features.getChild('session', NS.session);
    if (session && !session.getChild('optional')) {
      const sid = nextId('sess');
      const r = await this.iq(`<iq type="set" id="${sid}"><session xmlns="${NS.session}"/></iq>`, sid, 'the session result');
      if (r.attrs.type !== 'result') throw new XmppError(`session establishment failed: ${r.toString()}`, errorCondition(r));
    }
    return jid;
  }

  /** The whole login on a connected client; returns the step timings. */
  async login(o: LoginOptions, t0 = nowNs()): Promise<LoginTimings> {
    const ms = (a: number, b: number): number => (b - a) / 1e6;
    const tConnect = nowNs();
    let features = await this.openStream();
    if (features.getChild('starttls', NS.tls)) features = await this.starttls();
    else throw new XmppError('the server does not offer STARTTLS');
    const tTls = nowNs();
    features = await this.authenticate(features, o.username, o.password, o.mechanism ?? 'SCRAM-SHA-1');
    const tAuth = nowNs();
    await this.bind(features, o.resource);
    const tBind = nowNs();
    if (o.roster !== false) this.roster = await this.getRoster();
    const tRoster = nowNs();
    if (o.presence !== false) this.send('<presence/>');
    return { connect: ms(t0, tConnect), tls: ms(tConnect, tTls), auth: ms(tTls, tAuth), bind: ms(tAuth, tBind), roster: ms(tBind, tRoster), total: ms(t0, tRoster) };
  }

  /** RFC 6121 §2.2 roster get: contact bare JID → subscription. */
  async getRoster(): Promise<Map<string, string>> {
    const id = nextId('roster');
    const el = await this.iq(`<iq type="get" id="${id}"><query xmlns="${NS.roster}"/></iq>`, id, 'the roster');
    if (el.attrs.type !== 'result') throw new XmppError(`roster get failed: ${el.toString().slice(0, 300)}`, errorCondition(el));
    const out = new Map<string, string>();
    for (const item of el.getChild('query', NS.roster)?.getChildren('item') ?? []) out.set(String(item.attrs.jid), String(item.attrs.subscription ?? 'none'));
    return out;
  }

  /**
   * XEP-0077 registration before authentication (STARTTLS first): asks for
   * the form, then submits username and password. 'exists' on <conflict/>.
   */
  async register(username: string, password: string): Promise<'created' | 'exists'> {
    const features = await this.openStream();
    if (features.getChild('starttls', NS.tls)) await this.starttls();
    const gid = nextId('regget');
    const form = await this.iq(`<iq type="get" id="${gid}"><query xmlns="${NS.register}"/></iq>`, gid, 'the registration form');
    if (form.attrs.type !== 'result') throw new XmppError(`registration refused: ${form.toString().slice(0, 300)}`, errorCondition(form));
    const sid = nextId('regset');
    const r = await this.iq(
      `<iq type="set" id="${sid}"><query xmlns="${NS.register}"><username>${escapeXml(username)}</username><password>${escapeXml(password)}</password></query></iq>`,
      sid,
      `the registration of ${username}`,
    );
    if (r.attrs.type === 'result') return 'created';
    const cond = errorCondition(r);
    if (cond === 'conflict') return 'exists';
    throw new XmppError(`registration of ${username} refused: ${cond}: ${r.toString().slice(0, 300)}`, cond);
  }

  /** Closes the stream politely (waits up to `timeoutMs` for the server's close), then the socket. */
  async close(timeoutMs = 3_000): Promise<void> {
    if (this.closed) return;
    this.send('</stream:stream>');
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    const timer = setTimeout(() => this.shutdown('closed by the client (no answer to </stream:stream>)'), timeoutMs);
    // The server answers </stream:stream> and closes the TCP connection.
    await done;
    clearTimeout(timer);
  }

  destroy(): void {
    this.shutdown('destroyed by the client');
  }
}

function saslFailure(el: Element, username: string): XmppError {
  const cond = el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text')?.name ?? null;
  return new XmppError(`SASL ${el.name} for ${username}: ${cond ?? el.toString()}`, cond);
}

/** Connect + login in one go; destroys the connection if the login fails. */
export async function loginClient(opts: ClientOptions, login: LoginOptions): Promise<{ client: BenchClient; timings: LoginTimings }> {
  const t0 = nowNs();
  const client = await BenchClient.connect(opts);
  try {
    const timings = await client.login(login, t0);
    return { client, timings };
  } catch (err) {
    client.destroy();
    throw err;
  }
}
