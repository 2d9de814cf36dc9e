/**
 * The SOCKS5 side of the proxy: the listener, the connections waiting for
 * their peer and for activation, and the relays. An instance "holds" the
 * streams whose connections reached it; it announces that on the bus
 * (`xmpp.proxy65.stream.<H>`) so an activation handled by any instance
 * finds it.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { NoRespondersError, type Bus, type BusMessage, type Subscription } from '@hyphae/bus';
import type { Logger, Metrics } from '@hyphae/observability';
import {
  MAX_HANDSHAKE_BYTES, METHOD_NO_AUTH, REP,
  connectRequest, failureReply, methodReply, parseGreeting, parseRequest, successReply,
  type ConnectRequest,
} from './socks5.js';
import {
  OP_HEADER, RESULT_HEADER, sidSubject, streamSubject,
  type ActivateRequest, type ActivateResult, type LocateReply, type SidRequest, type SidResult,
} from './hash.js';

export interface HolderLimits {
  maxStreams: number;
  maxStreamsPerUser: number;
  pairingTimeoutMs: number;
  idleTimeoutMs: number;
  /** Per stream and direction; 0 = none. */
  maxBytesPerSecond: number;
  /** Per stream, both directions together; 0 = none. */
  maxBytes: number;
}

export interface HolderOptions {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  limits: HolderLimits;
  host: string;
  port: number;
  /**
   * The address other instances reach this listener at, for connections
   * they forward here (a stream's second party that reached another
   * instance). Default: `host`.
   */
  internalHost?: string;
  now?: () => number;
}

/** How long a connection being closed gracefully may take to say goodbye before it is destroyed. */
const LINGER_MS = 2_000;
/** How long the question "who holds this hash?" may take. */
const LOCATE_TIMEOUT_MS = 2_000;
const EMPTY = new Uint8Array(0);
const dec = new TextDecoder();
const discard = (): void => undefined;
/** The greeting a forwarding instance sends: one method, no authentication. */
const methodReplyRequest = Buffer.from([5, 1, METHOD_NO_AUTH]);

/**
 * Token bucket in bytes (one per stream and direction): the burst is one
 * second's worth. `take` returns how long the reader must pause (ms).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly rate: number, private readonly now: () => number = Date.now) {
    this.tokens = rate;
    this.last = now();
  }

  take(bytes: number): number {
    const t = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((t - this.last) * this.rate) / 1000);
    this.last = t;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
}

interface Conn {
  readonly socket: Socket;
  closed: boolean;
  /** Has been told "succeeded" (only then may bytes be relayed to it). */
  answered: boolean;
  /** The 'end' listener while waiting for activation. */
  early: () => void;
}

type State = 'pending' | 'active' | 'closing' | 'closed';

class Stream {
  readonly conns: Conn[] = [];
  state: State = 'pending';
  /** Resolves once activation requests can reach this instance (the subscription is on the server). */
  ready: Promise<void> = Promise.resolve();
  sub: Subscription | null = null;
  sid: string | null = null;
  requester: string | null = null;
  requesterBare: string | null = null;
  /** Counted in the per-user total (activated). */
  counted = false;
  bytes = 0;
  readonly timers = new Set<NodeJS.Timeout>();

  constructor(readonly hash: string) {}
}

/** What an instance knows about a StreamID (learned from activation requests). */
interface SidEntry {
  sub: Subscription;
  streams: Set<Stream>;
}

export class Holder {
  private readonly server: Server;
  private readonly streams = new Map<string, Stream>();
  private readonly sids = new Map<string, SidEntry>();
  private readonly perUser = new Map<string, number>();
  /** Every socket accepted and not yet closed. */
  private readonly sockets = new Set<Socket>();
  private readonly logger: Logger;
  private boundPort = 0;
  private stopped = false;
  private forwards = 0;

  constructor(private readonly opts: HolderOptions) {
    this.logger = opts.logger;
    // Half-close is relayed (one side's FIN ends the other's writing side), so
    // Node must not end our writing side by itself when a peer sends FIN.
    this.server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    // Handshaking and waiting connections beyond two per stream are refused anyway.
    this.server.maxConnections = opts.limits.maxStreams * 2 + 64;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (err) => this.logger.error({ err }, 'proxy65 listener failed'));
    const addr = this.server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Streams held (pending or relaying). */
  get size(): number {
    return this.streams.size;
  }

  /** Sockets open (handshaking, waiting, relaying, forwarding): for tests and stop(). */
  get openSockets(): number {
    return this.sockets.size;
  }

  /** Connections forwarded to the instance holding their stream (each is two sockets here). */
  get forwarded(): number {
    return this.forwards;
  }

  /** Whether this instance can take another stream. */
  hasRoom(): boolean {
    return this.streams.size < this.opts.limits.maxStreams;
  }

  /** Test hook: the sockets of the stream for `hash` (target first). */
  socketsOf(hash: string): Socket[] {
    return this.streams.get(hash)?.conns.map((c) => c.socket) ?? [];
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const st of [...this.streams.values()]) this.end(st);
    for (const s of [...this.sockets]) s.destroy();
    for (const e of this.sids.values()) e.sub.unsubscribe();
    this.sids.clear();
    await closed;
  }

  // --- SOCKS5 handshake ------------------------------------------------------

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.logger.debug({ err }, 'proxy65 connection error'));
    const { limits } = this.opts;
    const timer = setTimeout(() => {
      this.refused('handshake-timeout');
      socket.destroy();
    }, limits.pairingTimeoutMs);
    socket.once('close', () => clearTimeout(timer));

    let buf: Buffer = Buffer.alloc(0);
    let phase: 'greeting' | 'request' = 'greeting';
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (phase === 'greeting') {
        const step = parseGreeting(buf);
        if (step.kind === 'more') return this.checkSize(socket, buf, onData, timer);
        if (step.kind === 'refuse') return this.refuseHandshake(socket, onData, timer, step.reason, step.reply);
        socket.write(methodReply(METHOD_NO_AUTH));
        buf = buf.subarray(step.used);
        phase = 'request';
      }
      const step = parseRequest(buf);
      if (step.kind === 'more') return this.checkSize(socket, buf, onData, timer);
      if (step.kind === 'refuse') return this.refuseHandshake(socket, onData, timer, step.reason, step.reply);
      // Bytes after the request are data sent before activation: ignored (XEP-0065 §10.1).
      socket.off('data', onData);
      clearTimeout(timer);
      this.attach(socket, step.value).catch((err: unknown) => {
        this.logger.error({ err }, 'proxy65: connection handling failed');
        socket.destroy();
      });
    };
    socket.on('data', onData);
  }

  private checkSize(socket: Socket, buf: Buffer, onData: (c: Buffer) => void, timer: NodeJS.Timeout): void {
    // Cannot happen with a well-formed handshake (parsers refuse early), but never buffer without bound.
    if (buf.length > MAX_HANDSHAKE_BYTES) this.refuseHandshake(socket, onData, timer, 'address', failureReply(REP.generalFailure));
  }

  private refuseHandshake(socket: Socket, onData: (c: Buffer) => void, timer: NodeJS.Timeout, reason: string, reply: Uint8Array | null): void {
    socket.off('data', onData);
    clearTimeout(timer);
    this.refused(reason);
    this.logger.debug({ reason }, 'proxy65 connection refused');
    closeGracefully(socket, reply);
  }

  private refused(reason: string): void {
    this.opts.metrics.proxyRefused.inc({ reason });
  }

  // --- pairing -----------------------------------------------------------------

  /**
   * A connection with a valid CONNECT: the first for its hash waits (the
   * target, XEP-0065 §6.3.2), the second pairs with it (the requester,
   * §6.3.4), any further one is refused (§10.1: one target per bytestream).
   */
  private async attach(socket: Socket, req: ConnectRequest): Promise<void> {
    const { limits } = this.opts;
    let st = this.streams.get(req.hash);
    if (!st) {
      // The other party may have reached another instance (several
      // instances behind one address, or a requester that picked another
      // streamhost of the same JID): then this connection is forwarded there.
      const where = await this.locate(req.hash);
      if (socket.destroyed || socket.readableEnded) {
        socket.destroy();
        return;
      }
      if (where === 'full') {
        this.refused('duplicate');
        closeGracefully(socket, failureReply(REP.notAllowed));
        return;
      }
      if (where !== null) {
        this.forward(socket, req, where);
        return;
      }
      st = this.streams.get(req.hash);
    }
    if (st) {
      if (st.state !== 'pending' || st.conns.length >= 2) {
        this.refused('duplicate');
        closeGracefully(socket, failureReply(REP.notAllowed));
        return;
      }
    } else {
      if (this.streams.size >= limits.maxStreams || this.stopped) {
        this.refused('max-streams');
        closeGracefully(socket, failureReply(REP.generalFailure));
        return;
      }
      st = this.open(req.hash);
    }
    const stream = st;
    const conn: Conn = {
      socket,
      closed: false,
      answered: false,
      early: () => {
        if (stream.state === 'pending') socket.destroy();
      },
    };
    stream.conns.push(conn);
    // Until activation, bytes received are ignored (XEP-0065 §10.1) and a FIN
    // means the peer gave up.
    socket.on('data', discard);
    socket.once('end', conn.early);
    socket.once('close', (hadError) => this.closed(stream, conn, hadError));
    await stream.ready;
    if (conn.closed || stream.state !== 'pending') return;
    socket.write(successReply(req.addr));
    conn.answered = true;
  }

  /**
   * Asks the cluster which instance holds the stream for `hash`: its
   * internal address, 'full' (it has both parties or is relaying), or null
   * (nobody: this instance becomes the holder).
   */
  private async locate(hash: string): Promise<{ host: string; port: number } | 'full' | null> {
    try {
      const reply = await this.opts.bus.request(streamSubject(hash), EMPTY, { headers: { [OP_HEADER]: 'locate' }, timeoutMs: LOCATE_TIMEOUT_MS });
      if (reply.headers[RESULT_HEADER] !== 'here') return 'full';
      const at = JSON.parse(dec.decode(reply.data)) as LocateReply;
      return typeof at.host === 'string' && typeof at.port === 'number' ? at : 'full';
    } catch (err) {
      if (!(err instanceof NoRespondersError)) this.logger.warn({ err, hash }, 'proxy65: locating a stream failed; holding it here');
      return null;
    }
  }

  private onLocate(st: Stream, msg: BusMessage): void {
    if (st.state === 'pending' && st.conns.length < 2) {
      const at: LocateReply = { host: this.opts.internalHost ?? this.opts.host, port: this.boundPort };
      msg.respond(new TextEncoder().encode(JSON.stringify(at)), { [RESULT_HEADER]: 'here' });
    } else {
      msg.respond(EMPTY, { [RESULT_HEADER]: 'full' });
    }
  }

  /**
   * Connects to the holder's listener on the client's behalf (the same
   * CONNECT), answers the client with the holder's answer, then pipes both
   * ways with backpressure and half-close. Every policy (pairing, limits,
   * activation, ignoring early bytes) is the holder's: this is a wire.
   */
  private forward(client: Socket, req: ConnectRequest, to: { host: string; port: number }): void {
    this.forwards++;
    const upstream = connect({ host: to.host, port: to.port, allowHalfOpen: true });
    this.sockets.add(upstream);
    let piping = false;
    let counted = true;
    const uncount = (): void => {
      if (counted) this.forwards--;
      counted = false;
    };
    const timer = setTimeout(() => {
      this.refused('handshake-timeout');
      client.destroy();
      upstream.destroy();
    }, this.opts.limits.pairingTimeoutMs);
    upstream.on('error', (err) => this.logger.debug({ err, to }, 'proxy65: forwarded connection failed'));
    // Before the holder has answered, either side closing ends both. Once
    // piping, an error ends both; a clean close of one side means it has
    // finished both ways, and the other is ended gracefully (destroying it
    // could drop bytes still queued for it).
    const { idleTimeoutMs } = this.opts.limits;
    const onUpstreamClose = (hadError: boolean): void => {
      clearTimeout(timer);
      uncount();
      if (!piping || hadError) client.destroy();
      else endGracefully(client, idleTimeoutMs);
    };
    const onClientClose = (hadError: boolean): void => {
      clearTimeout(timer);
      uncount();
      if (!piping || hadError) upstream.destroy();
      else endGracefully(upstream, idleTimeoutMs);
    };
    upstream.once('close', () => this.sockets.delete(upstream));
    upstream.once('close', onUpstreamClose);
    client.once('close', onClientClose);

    const expected = 2 + 5 + req.addr.length + 2;
    let buf: Buffer = Buffer.alloc(0);
    const onReply = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      // The holder's answer: [5, 0] then [5, REP, …] (47 bytes on success, 10 on failure).
      if (buf.length >= 4 && (buf[0] !== 5 || buf[1] !== METHOD_NO_AUTH || buf[2] !== 5 || buf[3] !== REP.succeeded)) {
        upstream.off('data', onReply);
        clearTimeout(timer);
        const rep = buf[0] === 5 && buf[1] === METHOD_NO_AUTH && buf[2] === 5 ? (buf[3] as number) : REP.generalFailure;
        upstream.off('close', onUpstreamClose);
        client.off('close', onClientClose);
        uncount();
        upstream.destroy();
        closeGracefully(client, failureReply(rep));
        return;
      }
      if (buf.length < expected) return;
      upstream.off('data', onReply);
      clearTimeout(timer);
      piping = true;
      client.write(successReply(req.addr));
      if (buf.length > expected) client.write(buf.subarray(expected));
      client.off('data', discard);
      client.pipe(upstream);
      upstream.pipe(client);
      // The holder closes idle streams; a leg left half-open here (the
      // holder is gone, the client has not closed) is closed the same way.
      for (const s of [client, upstream]) {
        s.setTimeout(idleTimeoutMs);
        s.once('timeout', () => {
          client.destroy();
          upstream.destroy();
        });
      }
    };
    // Until the holder has answered, what the client sends is dropped (it
    // would be ignored there anyway: nothing is activated yet).
    client.on('data', discard);
    upstream.on('data', onReply);
    upstream.once('connect', () => {
      upstream.write(Buffer.concat([methodReplyRequest, Buffer.from(connectRequest(req.addr))]));
    });
  }

  private open(hash: string): Stream {
    const st = new Stream(hash);
    this.streams.set(hash, st);
    this.opts.metrics.proxyStreams.set(this.streams.size);
    st.sub = this.opts.bus.subscribe(streamSubject(hash), (msg) => {
      if (msg.headers[OP_HEADER] === 'locate') this.onLocate(st, msg);
      else this.onActivate(st, msg);
    });
    // The subscription must reach the bus server before either party hears
    // "succeeded": the activation follows from that answer. (In memory a
    // subscription is effective at once, and flush() would wait for every
    // handler of the process.)
    if (this.opts.bus.kind !== 'memory') {
      st.ready = this.opts.bus.flush().catch((err: unknown) => {
        this.logger.warn({ err }, 'proxy65: bus flush failed');
      });
    }
    this.timer(st, this.opts.limits.pairingTimeoutMs, () => {
      if (st.state !== 'pending') return;
      this.refused('pairing-timeout');
      this.end(st);
    });
    return st;
  }

  private timer(st: Stream, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      st.timers.delete(t);
      fn();
    }, ms);
    st.timers.add(t);
  }

  private closed(st: Stream, conn: Conn, hadError: boolean): void {
    conn.closed = true;
    if (st.state === 'pending') {
      const i = st.conns.indexOf(conn);
      if (i >= 0) st.conns.splice(i, 1);
      if (st.conns.length === 0) this.end(st);
      return;
    }
    // Relaying: an error on one side ends the other. A clean close means
    // that side has finished both ways: the other gets what is queued for
    // it, then FIN (what it still sends has nowhere to go).
    if (hadError) {
      for (const c of st.conns) if (c !== conn) c.socket.destroy();
    } else if (st.state === 'active') {
      this.finish(st);
    }
    if (st.conns.every((c) => c.closed)) this.end(st);
  }

  /** Frees everything of a stream (its sockets are destroyed if still open). */
  private end(st: Stream): void {
    if (st.state === 'closed') return;
    st.state = 'closed';
    for (const t of st.timers) clearTimeout(t);
    st.timers.clear();
    for (const c of st.conns) if (!c.closed) c.socket.destroy();
    st.sub?.unsubscribe();
    st.sub = null;
    if (this.streams.get(st.hash) === st) this.streams.delete(st.hash);
    this.opts.metrics.proxyStreams.set(this.streams.size);
    if (st.sid !== null) {
      const e = this.sids.get(st.sid);
      if (e) {
        e.streams.delete(st);
        if (e.streams.size === 0) {
          e.sub.unsubscribe();
          this.sids.delete(st.sid);
        }
      }
    }
    if (st.counted && st.requesterBare !== null) {
      const n = (this.perUser.get(st.requesterBare) ?? 1) - 1;
      if (n <= 0) this.perUser.delete(st.requesterBare);
      else this.perUser.set(st.requesterBare, n);
    }
  }

  // --- activation -----------------------------------------------------------

  private onActivate(st: Stream, msg: BusMessage): void {
    let result: ActivateResult;
    try {
      const req = JSON.parse(dec.decode(msg.data)) as ActivateRequest;
      result = this.activate(st, req);
    } catch (err) {
      this.logger.warn({ err }, 'proxy65: bad activation request');
      result = 'gone';
    }
    msg.respond(EMPTY, { [RESULT_HEADER]: result });
  }

  /** XEP-0065 §6.3.5, on the instance holding the connections. */
  private activate(st: Stream, req: ActivateRequest): ActivateResult {
    if (st.state === 'closed' || st.state === 'closing') return 'gone';
    if (st.sid === null) this.learnSid(st, req);
    if (st.state === 'active') return 'active';
    if (st.conns.length < 2 || !st.conns.every((c) => c.answered)) return 'one-side';
    const { limits } = this.opts;
    if ((this.perUser.get(req.requesterBare) ?? 0) >= limits.maxStreamsPerUser) {
      this.refused('max-streams-per-user');
      return 'limit';
    }
    this.perUser.set(req.requesterBare, (this.perUser.get(req.requesterBare) ?? 0) + 1);
    st.counted = true;
    this.startRelay(st);
    this.logger.debug({ hash: st.hash, sid: req.sid, requester: req.requester, target: req.target }, 'proxy65 stream activated');
    return 'ok';
  }

  /**
   * The activation request names the stream's StreamID and requester (its
   * hash matched): from now on this instance answers on the sid subject,
   * so a later request with the same sid and another hash can be told
   * apart from an unknown sid.
   */
  private learnSid(st: Stream, req: ActivateRequest): void {
    st.sid = req.sid;
    st.requester = req.requester;
    st.requesterBare = req.requesterBare;
    let e = this.sids.get(req.sid);
    if (!e) {
      const sid = req.sid;
      const sub = this.opts.bus.subscribe(sidSubject(sid), (msg) => this.onSid(sid, msg));
      e = { sub, streams: new Set() };
      this.sids.set(sid, e);
    }
    e.streams.add(st);
  }

  private onSid(sid: string, msg: BusMessage): void {
    let result: SidResult = 'other';
    try {
      const req = JSON.parse(dec.decode(msg.data)) as SidRequest;
      for (const st of this.sids.get(sid)?.streams ?? []) if (st.requester === req.requester) result = 'requester';
    } catch {
      // answer 'other'
    }
    msg.respond(EMPTY, { [RESULT_HEADER]: result });
  }

  // --- relay ------------------------------------------------------------------

  private startRelay(st: Stream): void {
    st.state = 'active';
    for (const t of st.timers) clearTimeout(t);
    st.timers.clear();
    const [target, requester] = st.conns as [Conn, Conn];
    const { idleTimeoutMs } = this.opts.limits;
    for (const c of st.conns) {
      c.socket.off('data', discard);
      c.socket.off('end', c.early);
      c.socket.setTimeout(idleTimeoutMs);
      c.socket.on('timeout', () => {
        if (st.state !== 'active') return;
        this.refused('idle');
        this.end(st);
      });
    }
    this.pump(st, requester.socket, target.socket, 'to-target');
    this.pump(st, target.socket, requester.socket, 'to-requester');
  }

  /**
   * One direction. Backpressure: when the destination's buffer is full the
   * source is paused until 'drain', so a slow reader slows the writer down
   * through TCP instead of the proxy buffering. The bandwidth cap pauses
   * the source too, for as long as the bucket is in debt.
   */
  private pump(st: Stream, src: Socket, dst: Socket, direction: 'to-target' | 'to-requester'): void {
    const { maxBytes, maxBytesPerSecond } = this.opts.limits;
    const bucket = maxBytesPerSecond > 0 ? new TokenBucket(maxBytesPerSecond, this.opts.now) : null;
    const counter = this.opts.metrics.proxyBytes.labels({ direction });
    let draining = false;
    let throttled = false;
    const resume = (): void => {
      if (!draining && !throttled && st.state === 'active') src.resume();
    };
    const onDrain = (): void => {
      draining = false;
      resume();
    };
    src.on('data', (chunk: Buffer) => {
      if (st.state !== 'active') return;
      let data = chunk;
      let over = false;
      if (maxBytes > 0 && st.bytes + data.length > maxBytes) {
        data = data.subarray(0, maxBytes - st.bytes);
        over = true;
      }
      st.bytes += data.length;
      if (data.length > 0) {
        counter.inc(data.length);
        if (!dst.write(data) && !draining) {
          draining = true;
          src.pause();
          dst.once('drain', onDrain);
        }
      }
      if (over) {
        this.refused('max-bytes');
        this.finish(st);
        return;
      }
      if (bucket) {
        const wait = bucket.take(data.length);
        if (wait > 0 && !throttled) {
          throttled = true;
          src.pause();
          this.timer(st, wait, () => {
            throttled = false;
            resume();
          });
        }
      }
    });
    // Half-close: the source is done sending, so is the destination's writer.
    src.once('end', () => {
      if (st.state === 'active' && !dst.destroyed) dst.end();
    });
  }

  /**
   * Ends a relaying stream gracefully (maxBytes): both sides get what was
   * already written, then FIN; what they still send is read and dropped
   * (see endGracefully).
   */
  private finish(st: Stream): void {
    st.state = 'closing';
    for (const c of st.conns) if (!c.closed) endGracefully(c.socket, this.opts.limits.idleTimeoutMs);
  }
}

/**
 * Sends `reply` (if any) and FIN; keeps reading (and dropping) so the
 * reply is not lost to a reset, and destroys the socket if the peer has not
 * closed within LINGER_MS.
 */
function closeGracefully(socket: Socket, reply: Uint8Array | null): void {
  socket.on('data', discard);
  socket.resume();
  if (reply) socket.end(reply);
  else socket.end();
  const t = setTimeout(() => socket.destroy(), LINGER_MS);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}

/**
 * Ends a socket whose peer can no longer be relayed to, without losing what
 * is queued for it: FIN after the queue, what arrives is read and dropped
 * (unread data would make the close a reset, which discards the queue), and
 * the socket is destroyed LINGER_MS after everything was handed to the
 * kernel, or after `capMs` if the peer never takes it.
 */
function endGracefully(socket: Socket, capMs: number): void {
  if (socket.destroyed) return;
  socket.setTimeout(0);
  socket.on('data', discard);
  socket.resume();
  socket.end();
  let t = setTimeout(() => socket.destroy(), capMs);
  const linger = (): void => {
    clearTimeout(t);
    t = setTimeout(() => socket.destroy(), LINGER_MS);
  };
  if (socket.writableFinished) linger();
  else socket.once('finish', linger);
  socket.once('close', () => clearTimeout(t));
}
