/**
 * The per-subscription delivery queue both implementations use, so the
 * "one handler at a time, in arrival order" contract (types.ts, BusHandler)
 * is one piece of code rather than two that could drift apart.
 *
 * - push() never calls the handler itself: delivery starts in a microtask.
 *   A handler that publishes to a subject it also subscribes to therefore
 *   does not recurse, and publish() returns before any handler runs.
 * - Messages are handled strictly in push order. A handler returning a
 *   promise (any thenable) holds the next message until it settles.
 * - A throwing or rejecting handler is reported through onError and the next
 *   message is handled as usual.
 * - Deliveries share a budget per event-loop turn (TURN_BUDGET, across all
 *   queues of the process): past it, queues continue with setImmediate
 *   instead of microtasks. A busy subscription, or two handlers publishing to
 *   each other, cannot starve timers and socket I/O of the rest of the process.
 */
export type Deliver<M> = (msg: M) => void | Promise<void>;

/** Deliveries per event-loop turn, all queues together, before yielding to I/O and timers. */
const TURN_BUDGET = 2048;
/** Deliveries made in the current turn; reset by an immediate scheduled when the count starts. */
let usedThisTurn = 0;
function resetTurn(): void {
  usedThisTurn = 0;
}
/** Counts one delivery; true when the turn's budget is spent and the caller must yield. */
function spend(): boolean {
  if (usedThisTurn === 0) setImmediate(resetTurn);
  return ++usedThisTurn > TURN_BUDGET;
}
function schedule(fn: () => void): void {
  if (usedThisTurn >= TURN_BUDGET) setImmediate(fn);
  else queueMicrotask(fn);
}
/** A backlog this deep is logged once (then again after it drained), as a slow-consumer hint. */
export const BACKLOG_WARN = 10_000;

interface Waiter {
  target: number;
  resolve: () => void;
}

export class SerialQueue<M> {
  private items: (M | undefined)[] = [];
  private head = 0;
  /** A drain is scheduled, running, or waiting on a handler's promise. */
  private busy = false;
  private stopped = false;
  private warned = false;
  /** Messages accepted so far / handled so far (handler returned or its promise settled). */
  private enqueued = 0;
  private done = 0;
  private waiters: Waiter[] = [];

  constructor(
    private readonly deliver: Deliver<M>,
    private readonly onError: (err: unknown, msg: M) => void,
    private readonly onBacklog: (pending: number) => void,
  ) {}

  get pending(): number {
    return this.items.length - this.head;
  }

  push(msg: M): void {
    if (this.stopped) return;
    this.items.push(msg);
    this.enqueued++;
    if (!this.busy) {
      this.busy = true;
      schedule(this.run);
    } else if (!this.warned && this.items.length - this.head >= BACKLOG_WARN) {
      this.warned = true;
      this.onBacklog(this.items.length - this.head);
    }
  }

  /** Resolves once every message pushed before this call has been handled (or the queue stopped). */
  idle(): Promise<void> {
    if (this.stopped || this.done >= this.enqueued) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ target: this.enqueued, resolve }));
  }

  /** Drops messages not yet handled; a handler already running finishes. */
  stop(): void {
    this.stopped = true;
    this.items = [];
    this.head = 0;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.resolve();
  }

  // Arrow properties: bound once, so scheduling allocates no closure per message.
  private readonly run = (): void => {
    // A queue that never fully empties would keep its handled prefix forever;
    // drop it now and then (amortised O(1) per message).
    if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    while (!this.stopped && this.head < this.items.length) {
      if (spend()) {
        setImmediate(this.run);
        return;
      }
      const msg = this.items[this.head] as M;
      this.items[this.head++] = undefined; // let the message be collected
      let r: void | Promise<void>;
      try {
        r = this.deliver(msg);
      } catch (err) {
        this.onError(err, msg);
        this.completed();
        continue;
      }
      if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(this.resumeOk, (err: unknown) => {
          this.onError(err, msg);
          this.resumeOk();
        });
        return;
      }
      this.completed();
    }
    // Queue empty (or stopped): reset the array so it does not grow forever.
    this.items.length = 0;
    this.head = 0;
    this.busy = false;
    this.warned = false;
  };

  private readonly resumeOk = (): void => {
    this.completed();
    this.run(); // already in a microtask; run() itself checks the turn's budget
  };

  private completed(): void {
    this.done++;
    if (this.waiters.length !== 0) {
      while (this.waiters.length !== 0 && (this.waiters[0] as Waiter).target <= this.done) {
        (this.waiters.shift() as Waiter).resolve();
      }
    }
  }
}
