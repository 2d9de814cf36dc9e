import { DRAIN_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, StatusListeners, checkTimeout, settlesWithin } from './common.js';
import { TRACE_HEADER, runWithTrace } from './trace.js';
import { SerialQueue } from './dispatch.js';
import { BusClosedError, BusTimeoutError, NoRespondersError } from './errors.js';
import { normalizeHeaders } from './headers.js';
import { consoleLogger, type BusLogger } from './logger.js';
import { checkPublishSubject, checkQueueName, checkSubscribeSubject, hasWildcard, matchTokens } from './subjects.js';
import type { Bus, BusHandler, BusMessage, BusStatus, Headers, RequestOptions, SubscribeOptions, Subscription } from './types.js';

// The in-process bus (one-process mode); its semantics are documented on createMemoryBus().

export interface MemoryBusOptions {
  /** Where handler failures and slow-consumer hints go; default: console. */
  logger?: BusLogger;
}

class MemSub implements Subscription {
  /** Pattern tokens for wildcard subscriptions; null for literal subjects. */
  readonly tokens: readonly string[] | null;
  readonly q: SerialQueue<MemMessage>;
  active = true;

  constructor(
    private readonly bus: MemoryBus,
    readonly subject: string,
    readonly queue: string | undefined,
    handler: BusHandler,
    logger: BusLogger,
  ) {
    this.tokens = hasWildcard(subject) ? subject.split('.') : null;
    this.q = new SerialQueue<MemMessage>(
      (msg) => runWithTrace(msg.headers[TRACE_HEADER], () => handler(msg)),
      (err, msg) => logger.warn({ err, subject: msg.subject, subscription: subject }, 'bus handler failed'),
      (pending) => logger.warn({ subject, pending }, 'bus subscription is falling behind'),
    );
  }

  unsubscribe(): void {
    if (!this.active) return;
    this.bus.remove(this);
    this.q.stop();
  }

  async drain(): Promise<void> {
    if (!this.active) return;
    // Publishing is synchronous routing: once removed, nothing new arrives.
    this.bus.remove(this);
    await this.q.idle();
    this.q.stop();
  }
}

/** A queue group as seen by one subject: its members and the shared round-robin counter. */
interface Group {
  readonly members: MemSub[];
  readonly rr: { n: number };
}

interface Match {
  readonly plain: readonly MemSub[];
  readonly groups: readonly Group[];
}

const NO_MATCH: Match = { plain: [], groups: [] };
/** Subjects whose match results are cached; the oldest entry is evicted beyond this. */
const CACHE_MAX = 8192;

class PendingReply {
  done = false;
  timer: NodeJS.Timeout | undefined;
  constructor(
    readonly inbox: string,
    private readonly owner: Set<PendingReply>,
    private readonly resolveFn: (m: BusMessage) => void,
    readonly rejectFn: (e: Error) => void,
  ) {}

  settle(data: Uint8Array, headers: Headers | undefined): void {
    if (this.done) return; // first reply wins, as with NATS requests
    const h = normalizeHeaders(this.inbox, headers);
    this.done = true;
    clearTimeout(this.timer);
    this.owner.delete(this);
    this.resolveFn(new MemMessage(this.inbox, data, h, null));
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.owner.delete(this);
    this.rejectFn(err);
  }
}

class MemMessage implements BusMessage {
  constructor(
    readonly subject: string,
    readonly data: Uint8Array,
    readonly headers: Headers,
    private readonly reply: PendingReply | null,
  ) {}

  respond(data: Uint8Array, headers?: Headers): boolean {
    if (this.reply === null) return false;
    this.reply.settle(data, headers);
    return true;
  }
}

type State = 'open' | 'closing' | 'closed';

class MemoryBus implements Bus {
  readonly kind = 'memory';
  private readonly exact = new Map<string, MemSub[]>();
  private readonly wild: MemSub[] = [];
  private readonly cache = new Map<string, Match>();
  private readonly roundRobin = new Map<string, { n: number }>();
  private readonly pending = new Set<PendingReply>();
  private readonly logger: BusLogger;
  private readonly listeners: StatusListeners;
  private state: State = 'open';
  private closing: Promise<void> | undefined;
  private inboxSeq = 0;
  private readonly inboxPrefix = `_INBOX.mem${Math.floor(Math.random() * 1e9).toString(36)}.`;

  constructor(opts: MemoryBusOptions) {
    this.logger = opts.logger ?? consoleLogger;
    this.listeners = new StatusListeners(this.logger);
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    if (this.state === 'closed') throw new BusClosedError(subject);
    const m = this.lookup(subject);
    const h = normalizeHeaders(subject, headers);
    if (m === NO_MATCH) return;
    this.deliver(m, new MemMessage(subject, data, h, null));
  }

  subscribe(subject: string, handler: BusHandler, opts?: SubscribeOptions): Subscription {
    if (this.state !== 'open') throw new BusClosedError(subject);
    checkSubscribeSubject(subject);
    const queue = opts?.queue;
    if (queue !== undefined) checkQueueName(queue, subject);
    const sub = new MemSub(this, subject, queue, handler, this.logger);
    if (sub.tokens === null) {
      const list = this.exact.get(subject);
      if (list) list.push(sub);
      else this.exact.set(subject, [sub]);
    } else {
      this.wild.push(sub);
    }
    this.cache.clear();
    return sub;
  }

  request(subject: string, data: Uint8Array, opts?: RequestOptions): Promise<BusMessage> {
    if (this.state === 'closed') return Promise.reject(new BusClosedError(subject));
    let m: Match;
    let h: Readonly<Headers>;
    let timeoutMs: number;
    try {
      timeoutMs = checkTimeout(subject, opts?.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
      m = this.lookup(subject);
      h = normalizeHeaders(subject, opts?.headers);
    } catch (err) {
      return Promise.reject(err);
    }
    if (m === NO_MATCH) return Promise.reject(new NoRespondersError(subject));
    return new Promise<BusMessage>((resolve, reject) => {
      const reply = new PendingReply(this.inboxPrefix + String(++this.inboxSeq), this.pending, resolve, reject);
      reply.timer = setTimeout(() => reply.fail(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
      this.pending.add(reply);
      this.deliver(m, new MemMessage(subject, data, h, reply));
    });
  }

  flush(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new BusClosedError('(flush)'));
    const waits: Promise<void>[] = [];
    for (const list of this.exact.values()) for (const s of list) waits.push(s.q.idle());
    for (const s of this.wild) waits.push(s.q.idle());
    return Promise.all(waits).then(() => undefined);
  }

  isConnected(): boolean {
    return this.state !== 'closed';
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    return this.listeners.add(listener);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // Like a NATS drain: no new deliveries, let queued messages be handled
    // (handlers may still publish and respond meanwhile), then close.
    this.state = 'closing';
    const subs = [...[...this.exact.values()].flat(), ...this.wild];
    for (const s of subs) this.remove(s);
    if (!(await settlesWithin(Promise.all(subs.map((s) => s.q.idle())), DRAIN_TIMEOUT_MS))) {
      this.logger.warn({ timeoutMs: DRAIN_TIMEOUT_MS }, 'bus close: handlers did not finish in time; dropping queued messages');
    }
    for (const s of subs) s.q.stop();
    this.state = 'closed';
    for (const r of [...this.pending]) r.fail(new BusClosedError(r.inbox));
    this.listeners.emit('closed');
  }

  /** Called by MemSub.unsubscribe() and close(). */
  remove(sub: MemSub): void {
    if (!sub.active) return;
    sub.active = false;
    if (sub.tokens === null) {
      const list = this.exact.get(sub.subject);
      if (list) {
        const i = list.indexOf(sub);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.exact.delete(sub.subject);
      }
    } else {
      const i = this.wild.indexOf(sub);
      if (i >= 0) this.wild.splice(i, 1);
    }
    this.cache.clear();
  }

  private deliver(m: Match, msg: MemMessage): void {
    const plain = m.plain;
    for (let i = 0; i < plain.length; i++) (plain[i] as MemSub).q.push(msg);
    const groups = m.groups;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] as Group;
      const n = g.rr.n++;
      (g.members[n % g.members.length] as MemSub).q.push(msg);
    }
  }

  /** Subscriptions matching a literal subject, cached; validates the subject on a cache miss. */
  private lookup(subject: string): Match {
    const hit = this.cache.get(subject);
    if (hit !== undefined) return hit;
    checkPublishSubject(subject);
    const found: MemSub[] = [];
    const ex = this.exact.get(subject);
    if (ex) found.push(...ex);
    if (this.wild.length !== 0) {
      const tokens = subject.split('.');
      for (const s of this.wild) if (matchTokens(s.tokens as readonly string[], tokens)) found.push(s);
    }
    let m: Match = NO_MATCH;
    if (found.length !== 0) {
      const plain: MemSub[] = [];
      const byQueue = new Map<string, MemSub[]>();
      for (const s of found) {
        if (s.queue === undefined) plain.push(s);
        else {
          const members = byQueue.get(s.queue);
          if (members) members.push(s);
          else byQueue.set(s.queue, [s]);
        }
      }
      const groups: Group[] = [];
      for (const [name, members] of byQueue) {
        let rr = this.roundRobin.get(name);
        if (rr === undefined) {
          rr = { n: 0 };
          this.roundRobin.set(name, rr);
        }
        groups.push({ members, rr });
      }
      m = { plain, groups };
    }
    if (this.cache.size >= CACHE_MAX) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(subject, m);
    return m;
  }
}

/**
 * An in-process bus (one-process mode).
 *
 * Semantics, beyond the Bus interface:
 * - Payloads are NOT copied: every subscriber receives the very Uint8Array the
 *   publisher passed. Both sides must treat it as read-only, and a publisher
 *   must not modify or reuse a buffer after publish() (the same rule holds for
 *   NATS, whose client keeps a reference until it writes to the socket).
 * - Headers are validated and copied once per publish into a frozen object
 *   shared by all receivers (see headers.ts).
 * - Delivery is asynchronous (microtask), per subscription in publish() call
 *   order, one handler at a time (see dispatch.ts). A subscription is active as
 *   soon as subscribe() returns; unsubscribe() drops what it has not handled.
 * - Queue groups: each message goes to one member per queue name among all
 *   matching subscriptions (as NATS groups them), chosen round-robin.
 * - flush() resolves when every message published so far has been handled,
 *   including the promises of async handlers.
 * - request(): NoRespondersError at once when nothing matches; the first
 *   respond() wins. isConnected() is true until close(); the only status
 *   change is 'closed'.
 * - close() drains like NATS: no new deliveries, queued messages are handled
 *   (at most 10 s), then publish/request/subscribe/flush throw BusClosedError.
 */
export function createMemoryBus(opts: MemoryBusOptions = {}): Bus {
  return new MemoryBus(opts);
}
