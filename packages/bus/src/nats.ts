import {
  connect,
  errors as natsErrors,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Status,
  type Subscription as NatsSubscription,
} from '@nats-io/transport-node';
import { TRACE_HEADER, runWithTrace } from './trace.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, DRAIN_TIMEOUT_MS, StatusListeners, checkTimeout, settlesWithin } from './common.js';
import { SerialQueue } from './dispatch.js';
import { BusClosedError, BusError, BusTimeoutError, NoRespondersError } from './errors.js';
import { EMPTY_HEADERS, normalizeHeaders } from './headers.js';
import { consoleLogger, type BusLogger } from './logger.js';
import { checkPublishSubject, checkQueueName, checkSubscribeSubject } from './subjects.js';
import type { Bus, BusHandler, BusMessage, BusStatus, Headers, RequestOptions, SubscribeOptions, Subscription } from './types.js';

// The NATS bus (cluster mode); its semantics are documented on connectNatsBus().

export interface NatsBusOptions {
  servers: string | string[];
  /** Connection name, shown by the server's monitoring (e.g. "c2s-7f9c"). */
  name?: string;
  logger?: BusLogger;
  /** Default -1: forever. */
  maxReconnectAttempts?: number;
  /** Wait between reconnect attempts to one server (plus jitter); default 500 ms. */
  reconnectTimeWaitMs?: number;
}

/**
 * Bytes of messages kept while disconnected (payload + headers + subject);
 * the figure nats.go uses for its reconnect buffer.
 */
const RECONNECT_BUFFER_BYTES = 8 * 1024 * 1024;
/** Short enough that recovery after a NATS restart is quick, long enough not to hammer it. */
const DEFAULT_RECONNECT_WAIT_MS = 500;
/**
 * Client PINGs: a connection whose peer vanished without a FIN/RST (node lost,
 * network partition) is declared stale after PING_INTERVAL × MAX_PINGS_OUT,
 * i.e. 30 s instead of the client's default 4 minutes.
 */
const PING_INTERVAL_MS = 10_000;
const MAX_PINGS_OUT = 3;
/** How often connectNatsBus() repeats "still waiting for NATS". */
const WAIT_LOG_EVERY_MS = 5_000;

interface Buffered {
  subject: string;
  data: Uint8Array;
  headers: Readonly<Headers>;
  size: number;
}

function toNatsHeaders(h: Readonly<Headers>): MsgHdrs | undefined {
  if (h === EMPTY_HEADERS) return undefined;
  const out = natsHeaders();
  for (const k in h) out.set(k, h[k] as string);
  return out;
}

function fromNatsHeaders(h: MsgHdrs | undefined): Readonly<Headers> {
  if (h === undefined) return EMPTY_HEADERS;
  let out: Headers | undefined;
  // The bus sets one value per name; should a foreign publisher repeat a name, the first wins.
  for (const [k, values] of h) {
    const v = values[0];
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out === undefined ? EMPTY_HEADERS : Object.freeze(out);
}

class NatsBusMessage implements BusMessage {
  private h: Readonly<Headers> | undefined;
  constructor(
    private readonly m: Msg,
    private readonly bus: NatsBus,
  ) {}

  get subject(): string {
    return this.m.subject;
  }

  get data(): Uint8Array {
    return this.m.data;
  }

  // Decoded on first use: a c2s node forwarding the payload may never look at them.
  get headers(): Headers {
    this.h ??= fromNatsHeaders(this.m.headers);
    return this.h;
  }

  respond(data: Uint8Array, headers?: Headers): boolean {
    const reply = this.m.reply;
    if (!reply) return false;
    // A reply is an ordinary publish to the requester's inbox, so it is
    // buffered across a reconnect like any other.
    this.bus.publish(reply, data, headers);
    return true;
  }
}

class NatsBusSub implements Subscription {
  readonly q: SerialQueue<Msg>;
  ns: NatsSubscription | undefined;
  active = true;

  constructor(
    private readonly bus: NatsBus,
    readonly subject: string,
    handler: BusHandler,
    logger: BusLogger,
  ) {
    this.q = new SerialQueue<Msg>(
      (m) => {
        const msg = new NatsBusMessage(m, bus);
        return runWithTrace(msg.headers[TRACE_HEADER], () => handler(msg));
      },
      (err, m) => logger.warn({ err, subject: m.subject, subscription: subject }, 'bus handler failed'),
      (pending) => logger.warn({ subject, pending }, 'bus subscription is falling behind'),
    );
  }

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.bus.forget(this);
    this.q.stop();
    try {
      this.ns?.unsubscribe();
    } catch {
      // the connection is closed already: nothing left to unsubscribe from
    }
  }

  async drain(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.bus.forget(this);
    try {
      // UNSUB and wait for the server's PONG: everything the server routed
      // to us before that is in our queue now.
      await this.ns?.drain();
    } catch {
      // closed connection: nothing more can arrive
    }
    await this.q.idle();
    this.q.stop();
  }
}

type State = 'open' | 'closing' | 'closed';

interface ConnWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

class NatsBus implements Bus {
  readonly kind = 'nats';
  private status: BusStatus = 'connected';
  private state: State = 'open';
  private closing: Promise<void> | undefined;
  private readonly subs = new Set<NatsBusSub>();
  private readonly listeners: StatusListeners;
  private buffer: Buffered[] = [];
  private bufferBytes = 0;
  private bufferFullLogged = false;
  private connWaiters: ConnWaiter[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly logger: BusLogger,
  ) {
    this.listeners = new StatusListeners(logger);
    // status() registers its listener now, synchronously, so no event is missed.
    void this.watchStatus(nc.status());
    void nc.closed().then((err) => {
      if (err) this.logger.warn({ err }, 'NATS connection closed with an error');
      this.markClosed();
    });
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    if (this.state === 'closed') throw new BusClosedError(subject);
    checkPublishSubject(subject);
    const h = normalizeHeaders(subject, headers);
    if (this.status !== 'connected' || this.buffer.length !== 0) {
      this.bufferPublish(subject, data, h);
      return;
    }
    try {
      this.nc.publish(subject, data, h === EMPTY_HEADERS ? undefined : { headers: toNatsHeaders(h) as MsgHdrs });
    } catch (err) {
      throw this.mapError(subject, err);
    }
  }

  subscribe(subject: string, handler: BusHandler, opts?: SubscribeOptions): Subscription {
    if (this.state !== 'open') throw new BusClosedError(subject);
    checkSubscribeSubject(subject);
    const queue = opts?.queue;
    if (queue !== undefined) checkQueueName(queue, subject);
    const sub = new NatsBusSub(this, subject, handler, this.logger);
    try {
      // Callback form: nats.js calls it synchronously per message, in order;
      // the SerialQueue provides the one-at-a-time handling on top.
      sub.ns = this.nc.subscribe(subject, {
        ...(queue !== undefined ? { queue } : {}),
        callback: (err, m) => {
          if (err) {
            this.logger.warn({ err, subject }, 'NATS subscription error');
            return;
          }
          sub.q.push(m);
        },
      });
    } catch (err) {
      throw this.mapError(subject, err);
    }
    this.subs.add(sub);
    return sub;
  }

  async request(subject: string, data: Uint8Array, opts?: RequestOptions): Promise<BusMessage> {
    if (this.state === 'closed') throw new BusClosedError(subject);
    const timeoutMs = checkTimeout(subject, opts?.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    checkPublishSubject(subject);
    const h = normalizeHeaders(subject, opts?.headers);
    const deadline = Date.now() + timeoutMs;
    if (this.status !== 'connected' || this.buffer.length !== 0) {
      await this.waitConnected(subject, timeoutMs);
    }
    const left = Math.max(1, deadline - Date.now());
    try {
      const hdrs = toNatsHeaders(h);
      const m = await this.nc.request(subject, data, hdrs ? { timeout: left, headers: hdrs } : { timeout: left });
      return new NatsBusMessage(m, this);
    } catch (err) {
      throw this.mapRequestError(subject, timeoutMs, err);
    }
  }

  async flush(): Promise<void> {
    for (;;) {
      if (this.state === 'closed') throw new BusClosedError('(flush)');
      if (this.status !== 'connected' || this.buffer.length !== 0) await this.waitConnected('(flush)', Infinity);
      try {
        await this.nc.flush();
        return;
      } catch (err) {
        // The connection broke while the PING was out: what we published may
        // not have arrived; wait for the reconnect and flush again.
        // (state is re-read through a method: TypeScript narrowed it before the await)
        if (this.isShut() || this.nc.isClosed()) throw new BusClosedError('(flush)', { cause: err });
      }
    }
  }

  private isShut(): boolean {
    return this.state === 'closed';
  }

  isConnected(): boolean {
    return this.status === 'connected';
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    return this.listeners.add(listener);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** Called by NatsBusSub.unsubscribe(). */
  forget(sub: NatsBusSub): void {
    this.subs.delete(sub);
  }

  private async doClose(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    const subs = [...this.subs];
    const drain = async (): Promise<void> => {
      // 1. UNSUB each subscription and wait for the server's PONG: every
      //    message sent to us before that has reached our queues.
      await Promise.allSettled(subs.map((s) => s.ns?.drain()));
      // 2. Let handlers finish them; they may still publish and respond.
      await Promise.all(subs.map((s) => s.q.idle()));
      // 3. Flush our publishes and close.
      await this.nc.drain();
    };
    try {
      // Draining needs the server; while disconnected there is nothing to drain from.
      if (this.status === 'connected' && !this.nc.isClosed()) {
        const inTime = await settlesWithin(drain(), DRAIN_TIMEOUT_MS);
        if (!inTime) this.logger.warn({ timeoutMs: DRAIN_TIMEOUT_MS }, 'bus close: drain did not finish in time; closing anyway');
      }
    } catch (err) {
      this.logger.warn({ err }, 'bus close: drain failed; closing anyway');
    }
    for (const s of subs) {
      s.active = false;
      s.q.stop();
    }
    this.subs.clear();
    if (!this.nc.isClosed()) await this.nc.close();
    this.markClosed();
  }

  private markClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const s of this.subs) s.q.stop();
    this.subs.clear();
    if (this.buffer.length !== 0) {
      this.logger.warn({ messages: this.buffer.length, bytes: this.bufferBytes }, 'bus closed while disconnected: dropping buffered messages');
      this.buffer = [];
      this.bufferBytes = 0;
    }
    const ws = this.connWaiters;
    this.connWaiters = [];
    for (const w of ws) w.reject(new BusClosedError('(closed)'));
    this.setStatus('closed');
  }

  private bufferPublish(subject: string, data: Uint8Array, headers: Readonly<Headers>): void {
    let size = subject.length + data.byteLength;
    for (const k in headers) size += k.length + (headers[k] as string).length + 4;
    const max = this.nc.info?.max_payload;
    if (max !== undefined && data.byteLength > max) {
      throw new BusError(`payload of ${data.byteLength} bytes exceeds the server's max_payload ${max}`, subject);
    }
    if (this.bufferBytes + size > RECONNECT_BUFFER_BYTES) {
      if (!this.bufferFullLogged) {
        this.bufferFullLogged = true;
        this.logger.warn({ bytes: this.bufferBytes, limit: RECONNECT_BUFFER_BYTES }, 'NATS reconnect buffer full: publishes fail until the connection is back');
      }
      throw new BusError(`not connected to NATS and the reconnect buffer (${RECONNECT_BUFFER_BYTES} bytes) is full`, subject);
    }
    this.buffer.push({ subject, data, headers, size });
    this.bufferBytes += size;
  }

  /** Sends what was published while disconnected, in order, before anything newer. */
  private replayBuffer(): void {
    const buf = this.buffer;
    if (buf.length === 0) return;
    this.buffer = [];
    this.bufferBytes = 0;
    this.bufferFullLogged = false;
    let failed = 0;
    for (const b of buf) {
      try {
        this.nc.publish(b.subject, b.data, b.headers === EMPTY_HEADERS ? undefined : { headers: toNatsHeaders(b.headers) as MsgHdrs });
      } catch (err) {
        failed++;
        if (failed === 1) this.logger.warn({ err, subject: b.subject }, 'failed to send a message buffered during the disconnection');
      }
    }
    this.logger.info({ messages: buf.length, failed }, 'sent messages buffered while disconnected');
  }

  private waitConnected(subject: string, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const w: ConnWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          const i = this.connWaiters.indexOf(w);
          if (i >= 0) this.connWaiters.splice(i, 1);
          reject(new BusTimeoutError(subject, timeoutMs));
        }, timeoutMs);
      }
      this.connWaiters.push(w);
    });
  }

  private async watchStatus(events: AsyncIterable<Status>): Promise<void> {
    try {
      for await (const s of events) {
        switch (s.type) {
          case 'disconnect':
            this.logger.warn({ server: s.server }, 'NATS disconnected');
            this.setStatus('disconnected');
            break;
          case 'reconnecting':
            this.setStatus('reconnecting');
            break;
          case 'reconnect': {
            if (this.state === 'closed') break;
            this.logger.info({ server: s.server }, 'NATS reconnected');
            // Replay before flipping the status, in this same synchronous step,
            // so no newer publish can overtake a buffered one.
            this.replayBuffer();
            this.setStatus('connected');
            const ws = this.connWaiters;
            this.connWaiters = [];
            for (const w of ws) w.resolve();
            break;
          }
          case 'close':
            this.markClosed();
            break;
          case 'error':
            this.logger.warn({ err: s.error }, 'NATS server error');
            break;
          case 'staleConnection':
            this.logger.warn({}, 'NATS connection stale (no PONG): reconnecting');
            break;
          case 'ldm':
            this.logger.info({ server: s.server }, 'NATS server entering lame duck mode');
            break;
          case 'slowConsumer':
            this.logger.warn({}, 'NATS slow consumer');
            break;
          default:
            // ping, update (cluster topology), forceReconnect: nothing to do
            break;
        }
      }
    } catch (err) {
      this.logger.warn({ err }, 'NATS status stream failed');
    }
  }

  private setStatus(s: BusStatus): void {
    // The client announces 'reconnecting' before every attempt; listeners get changes only.
    if (s === this.status) return;
    this.status = s;
    this.listeners.emit(s);
  }

  private isClosedError(err: unknown): boolean {
    return err instanceof natsErrors.ClosedConnectionError || err instanceof natsErrors.DrainingConnectionError;
  }

  private mapError(subject: string, err: unknown): Error {
    if (err instanceof BusError) return err;
    if (this.isClosedError(err)) return new BusClosedError(subject, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    return new BusError(`NATS: ${message}`, subject, { cause: err });
  }

  private mapRequestError(subject: string, timeoutMs: number, err: unknown): Error {
    if (err instanceof natsErrors.TimeoutError) return new BusTimeoutError(subject, timeoutMs, { cause: err });
    if (err instanceof natsErrors.NoRespondersError) return new NoRespondersError(subject, { cause: err });
    if (err instanceof natsErrors.RequestError) {
      if (err.isNoResponders()) return new NoRespondersError(subject, { cause: err });
      if (this.isClosedError(err.cause) || this.state !== 'open' || this.nc.isClosed()) return new BusClosedError(subject, { cause: err });
    }
    return this.mapError(subject, err);
  }
}

/**
 * Connects to NATS (cluster mode) and returns the bus, on @nats-io/transport-node v3.
 *
 * Semantics, beyond the Bus interface:
 * - connectNatsBus() resolves once the first connection is made; until then
 *   it keeps trying, whatever maxReconnectAttempts says (waitOnFirstConnect),
 *   so a service may start before NATS. It logs a warning every 5 s meanwhile.
 * - After that it reconnects (forever by default) and resubscribes everything.
 *   Client PINGs every 10 s, 3 unanswered → stale: a peer that vanished
 *   without a FIN/RST is noticed within ~30 s.
 * - Status listeners get changes only: 'disconnected', 'reconnecting' (once
 *   per outage, not per attempt), 'connected', 'closed'. isConnected() is true
 *   only in 'connected'.
 * - Publishing while disconnected does not throw: messages go to a buffer of
 *   this bus (8 MiB: payload + subject + headers) and are sent, in order and
 *   ahead of anything newer, as soon as the connection is back. (nats.js v3
 *   itself discards its outbound buffer on every reconnect.) When the buffer
 *   is full, publish() throws a BusError, so the caller knows that message is
 *   lost. Messages already written to the socket when the connection broke
 *   are lost: core NATS is at-most-once; must-not-lose senders use request()
 *   and retry. Messages published to a subject whose subscriber (on another
 *   connection) has not resubscribed yet are dropped by NATS.
 * - request() while disconnected waits for the connection, within its
 *   timeout, then sends. Right after a reconnect the responder's own
 *   connection may not be back yet: NoRespondersError, which callers retry.
 *   flush() waits for the connection, without a deadline.
 * - A subscription is active at the server once flush() on the same bus has
 *   resolved (the SUB is written asynchronously).
 * - Handlers: one at a time per subscription, in arrival order (dispatch.ts).
 *   NATS keeps the order of messages from one connection.
 * - Received payloads are views into the client's read buffer: copy
 *   (`data.slice()`) one you keep for long, or the whole read chunk stays in
 *   memory. Treat them as read-only. A published buffer must not be modified
 *   after publish(): the client writes it to the socket later.
 * - close() drains: UNSUB, handlers finish what had arrived (they may still
 *   publish), pending publishes are flushed, then the connection closes;
 *   at most 10 s, and at once when disconnected (buffered messages dropped,
 *   with a warning).
 */
export async function connectNatsBus(opts: NatsBusOptions): Promise<Bus> {
  const logger = opts.logger ?? consoleLogger;
  const started = Date.now();
  const waiting = setInterval(() => {
    logger.warn({ servers: opts.servers, waitedMs: Date.now() - started }, 'NATS not reachable yet; still trying');
  }, WAIT_LOG_EVERY_MS);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.servers,
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      maxReconnectAttempts: opts.maxReconnectAttempts ?? -1,
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_WAIT_MS,
      waitOnFirstConnect: true,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      // By default every request builds an Error (with a stack) up front, in case it times
      // out: the profile of a c2s node under chat load had ~6% of its busy time there.
      // Our callers treat timeouts and "no responders" as values and need no stack.
      noAsyncTraces: true,
    });
  } finally {
    clearInterval(waiting);
  }
  logger.info({ server: nc.getServer(), name: opts.name }, 'connected to NATS');
  return new NatsBus(nc, logger);
}
