/** Routing metadata travels in headers, never in the stanza XML (DESIGN.md). */
export type Headers = Record<string, string>;

export interface BusMessage {
  readonly subject: string;
  /** The payload: for stanzas, the stamped stanza serialized as UTF-8 XML. */
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** Answers a request; returns false when the message was not a request. */
  respond(data: Uint8Array, headers?: Headers): boolean;
}

/**
 * Handlers of one subscription run one at a time in arrival order: when a
 * handler returns a promise, the next message waits for it. A handler that
 * throws (or rejects) is logged by the bus and does not stop the subscription.
 */
export type BusHandler = (msg: BusMessage) => void | Promise<void>;

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

export interface RequestOptions {
  headers?: Headers;
  /** Default 5000 ms. */
  timeoutMs?: number;
}

export interface Subscription {
  readonly subject: string;
  unsubscribe(): void;
  /**
   * Stops new messages reaching this subscription, then resolves once every
   * message routed to it before that has been handled: a graceful handover
   * loses nothing (unsubscribe() drops what is queued).
   */
  drain(): Promise<void>;
}

export type BusStatus = 'connected' | 'disconnected' | 'reconnecting' | 'closed';

/**
 * Subjects are dot-separated tokens; subscriptions may use `*` (one token) and
 * `>` (one or more trailing tokens), as NATS does. Messages from one publisher
 * on one subject arrive in the order published.
 */
export interface Bus {
  /** 'memory' or 'nats'. */
  readonly kind: string;
  publish(subject: string, data: Uint8Array, headers?: Headers): void;
  subscribe(subject: string, handler: BusHandler, opts?: SubscribeOptions): Subscription;
  /**
   * Sends and waits for one reply. Rejects with NoRespondersError when nobody
   * subscribes to the subject (detected at once, not by timeout), with
   * BusTimeoutError when no reply comes in time, BusClosedError after close().
   */
  request(subject: string, data: Uint8Array, opts?: RequestOptions): Promise<BusMessage>;
  /** Resolves when everything published so far has reached the server (NATS) or its handlers (memory). */
  flush(): Promise<void>;
  isConnected(): boolean;
  /** Returns a function that removes the listener. */
  onStatus(listener: (status: BusStatus) => void): () => void;
  /** Drains subscriptions and closes; idempotent. */
  close(): Promise<void>;
}
