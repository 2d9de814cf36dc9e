/**
 * Deliveries from this process to c2s nodes (`xmpp.c2s.<node>`), one lane
 * per node, in the order they were handed over (RFC 6120 §10.1) — also
 * through a NATS outage or restart, when the node's subscription is
 * briefly missing (DESIGN.md invariants 1 and 2).
 *
 * While this process's bus is down, or after a request met "no responders"
 * (nobody holds the node's subject: it is resubscribing, or dead), the lane
 * holds what comes next instead of sending it. Once the bus is back it asks
 * the node whether it holds its subject again (a request naming no session,
 * which a live node answers 'gone'), then sends what it held in order,
 * ahead of anything newer — as RemoteDomains (remote.ts) does for the s2s
 * service. Holding is bounded: a delivery held longer than `holdMs`, or past
 * `maxHeld` deliveries for one node, gets 'unreachable' (the sender gets a
 * wait error). A node still silent once this process's bus has been up for
 * `settleMs` is marked dead (dead-nodes.ts): what it held is 'gone', and the
 * router falls back (offline storage).
 *
 * Three kinds of delivery (DeliveryMode): a request the node acknowledges
 * (message, iq: the router learns 'gone' and falls back); a publish
 * (presence: fire-and-forget); and a fenced publish, for stanzas sent to
 * many sessions at once (a MUC room's fan-out): what one tick sends to a
 * node is published between two fences — session-less requests the node
 * answers. Both answered: the node held its subject throughout, everything
 * between was handed to it (a subscription only comes with a new
 * connection and goes with it, which cannot both happen between two
 * messages written together). Neither answered: nothing reached it, it may
 * go again. Otherwise the outcome is unknown. Two requests per node and
 * tick instead of one per session keep a 400-occupant room cheap.
 *
 * Never resent: a delivery whose outcome is unknown (no ack in time: it may
 * have reached the session), and a held one after a later delivery to the
 * same session was acknowledged meanwhile (resending it would put it after
 * that one: it is 'unreachable'). Requests written before a disconnection
 * are either delivered before it or lost with the connection, never after
 * what is sent on the new one, so the lane does not wait for their timeouts.
 */
import { NoRespondersError, type Bus, type Headers } from '@hyphae/bus';
import type { Logger, Metrics } from '@hyphae/observability';
import { H, c2sSubject } from './delivery.js';
import type { DeadNodes } from './dead-nodes.js';

/**
 * What became of one delivery: the session took it; the session is gone
 * (its node said so, or the node is known dead); its node did not answer
 * in time, so it may or may not have reached it; or it could not be sent
 * (nobody held the node's subject within the hold time, or too much was
 * held for the node).
 */
export type DeliveryOutcome = 'delivered' | 'gone' | 'unanswered' | 'unreachable';

/**
 * 'request': acknowledged per delivery, 'gone' when the session is not
 * there; 'publish': fire-and-forget, 'delivered' once sent; 'fenced':
 * acknowledged per node and tick (never 'gone'). See above.
 */
export type DeliveryMode = 'request' | 'publish' | 'fenced';

export interface NodeLanesOptions {
  bus: Bus;
  /** This process's node id (the origin of probes). */
  nodeId: string;
  deadNodes: DeadNodes;
  logger: Logger;
  metrics: Metrics;
  /** How long a delivery waits for its ack once sent. */
  timeoutMs: number;
  /** How long a delivery may be held before it is 'unreachable'. */
  holdMs: number;
  /** Deliveries held for one node at most; past it, 'unreachable' at once. */
  maxHeld: number;
  /** How long a node found silent after the bus settled counts as dead. */
  deadNodeMs: number;
  /** After this process's bus (re)connects, for this long silence does not prove a node dead. */
  settleMs: number;
}

interface Item {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly headers: Headers;
  readonly mode: DeliveryMode;
  /** When it was handed over. */
  readonly at: number;
  /** The bus connection it was last sent on. */
  epoch: number;
  resolve(outcome: DeliveryOutcome): void;
}

/** What a fence learnt: the node answered; nobody held its subject; no answer in time. */
type Fence = 'answered' | 'nobody' | 'unknown';

/** Fenced publishes of one tick to one node. */
interface Batch {
  readonly items: Item[];
  /** The fence written before the first of them. */
  readonly before: Promise<Fence>;
  readonly epoch: number;
}

interface Lane {
  readonly node: string;
  readonly subject: string;
  /** Requests sent on the current connection and not answered yet. */
  inflight: number;
  /** Deliveries waiting, in the order handed over. */
  held: Item[];
  /** New deliveries wait in `held` rather than going out. */
  blocked: boolean;
  since: number;
  /**
   * While held: the latest delivery (seq) the node acknowledged, per
   * session. Nothing held for that session before it may be resent.
   */
  delivered: Map<string, number>;
  timer: NodeJS.Timeout | null;
  probing: boolean;
  /** Wait before the next probe. */
  delay: number;
  /** Logged that the lane is full, this time it blocked. */
  fullLogged: boolean;
  /** Fenced publishes of the current tick (sealed by a fence in a microtask). */
  batch: Batch | null;
}

/** The pause before the first look at a node that met "no responders"; doubles up to MAX_PROBE_DELAY_MS. */
const FIRST_PROBE_DELAY_MS = 250;
const MAX_PROBE_DELAY_MS = 1000;
const EMPTY = new Uint8Array(0);

function sessionOf(item: Item): string {
  return item.headers[H.sid] ?? '';
}

export class NodeLanes {
  private readonly lanes = new Map<string, Lane>();
  private seq = 0;
  /** Bumped at every disconnection: requests of an older connection are not waited for. */
  private epoch = 0;
  private held = 0;
  /** Since when the bus has been connected (Infinity while it is not). */
  private upSince = 0;
  private readonly offStatus: () => void;
  private readonly depth: ReturnType<Metrics['queueDepth']['labels']>;
  private closed = false;

  constructor(private readonly opts: NodeLanesOptions) {
    this.depth = opts.metrics.queueDepth.labels({ queue: 'node-lanes' });
    this.offStatus = opts.bus.onStatus((status) => {
      if (status === 'connected') {
        this.upSince = Date.now();
        // Every held lane looks at its node at once.
        for (const lane of this.lanes.values()) {
          if (!lane.blocked || lane.probing) continue;
          this.clearTimer(lane);
          lane.delay = 0;
          this.resume(lane);
        }
        return;
      }
      this.upSince = Infinity;
      this.epoch++;
      for (const lane of this.lanes.values()) lane.inflight = 0;
    });
  }

  /**
   * Hands `data` to the node for the session named in `headers`, as `mode`
   * says; `done` hears the outcome once (at once when it is known at once).
   * A callback rather than a promise: a room's fan-out makes thousands a second.
   */
  send(node: string, data: Uint8Array, headers: Headers, mode: DeliveryMode, done: (outcome: DeliveryOutcome) => void): void {
    const resolve = (outcome: DeliveryOutcome): void => {
      try {
        done(outcome);
      } catch (err) {
        // `done` runs its fallbacks through the router's after/tell: only a defect gets here.
        this.opts.logger.error({ err, node, outcome }, 'delivery outcome not handled');
      }
    };
    if (this.closed) return resolve('unreachable');
    if (this.opts.deadNodes.isGone(node)) return resolve('gone');
    const lane = this.lane(node);
    const item: Item = { seq: this.seq++, data, headers, mode, at: Date.now(), epoch: this.epoch, resolve };
    if (!lane.blocked && this.opts.bus.isConnected()) {
      this.fire(lane, item);
      // A publish leaves nothing to wait for: an idle lane is forgotten.
      if (mode === 'publish') this.resume(lane);
      return;
    }
    if (lane.held.length >= this.opts.maxHeld) {
      if (!lane.fullLogged) {
        lane.fullLogged = true;
        this.opts.logger.warn({ node, held: lane.held.length }, 'deliveries to a c2s node: too many held; new ones are refused until it is reachable again');
      }
      return resolve('unreachable');
    }
    this.hold(lane, item, this.opts.bus.isConnected() ? 'no responders' : 'bus down');
    this.resume(lane);
  }

  /** Stops: what is held is 'unreachable'. */
  close(): void {
    this.closed = true;
    this.offStatus();
    for (const lane of this.lanes.values()) {
      this.clearTimer(lane);
      this.settle(lane, lane.held.splice(0), 'unreachable');
    }
    this.lanes.clear();
  }

  private lane(node: string): Lane {
    let lane = this.lanes.get(node);
    if (!lane) {
      lane = { node, subject: c2sSubject(node), inflight: 0, held: [], blocked: false, since: 0, delivered: new Map(), timer: null, probing: false, delay: FIRST_PROBE_DELAY_MS, fullLogged: false, batch: null };
      this.lanes.set(node, lane);
    }
    return lane;
  }

  private fire(lane: Lane, item: Item): void {
    const { bus } = this.opts;
    item.epoch = this.epoch;
    if (item.mode === 'fenced') return this.fenced(lane, item);
    if (item.mode === 'publish') {
      try {
        bus.publish(lane.subject, item.data, item.headers);
        item.resolve('delivered');
      } catch (err) {
        this.opts.logger.warn({ err, node: lane.node }, 'delivery to a c2s node could not be published');
        item.resolve('unreachable');
      }
      return;
    }
    lane.inflight++;
    const started = performance.now();
    let sent;
    try {
      sent = bus.request(lane.subject, item.data, { headers: item.headers, timeoutMs: this.opts.timeoutMs });
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (reply) => {
        this.answered(lane, item);
        this.opts.metrics.busLatency.observe({ op: 'deliver' }, (performance.now() - started) / 1000);
        const gone = reply.headers[H.ack] === 'gone';
        // Only while held: it is what a held delivery must not be resent after.
        if (!gone && lane.blocked) lane.delivered.set(sessionOf(item), item.seq);
        item.resolve(gone ? 'gone' : 'delivered');
        this.resume(lane);
      },
      (err: unknown) => {
        this.answered(lane, item);
        // Nobody held the subject: not delivered, so it may go again, in its place.
        if (err instanceof NoRespondersError && !this.closed) {
          const current = this.lane(lane.node);
          this.hold(current, item, 'no responders');
          this.resume(current);
          return;
        }
        this.opts.logger.debug({ err, node: lane.node }, 'delivery request failed');
        item.resolve('unanswered');
        this.resume(lane);
      },
    );
  }

  private answered(lane: Lane, item: { epoch: number }): void {
    if (item.epoch === this.epoch && lane.inflight > 0) lane.inflight--;
  }

  /** Publishes `item` inside this tick's batch for the node, opening it (first fence) if need be. */
  private fenced(lane: Lane, item: Item): void {
    let batch = lane.batch;
    if (!batch) {
      lane.inflight++;
      const opened: Batch = { items: [], before: this.fence(lane), epoch: this.epoch };
      lane.batch = batch = opened;
      queueMicrotask(() => this.seal(lane, opened));
    }
    try {
      this.opts.bus.publish(lane.subject, item.data, item.headers);
    } catch (err) {
      this.opts.logger.warn({ err, node: lane.node }, 'delivery to a c2s node could not be published');
      item.resolve('unreachable');
      return;
    }
    batch.items.push(item);
  }

  /** Closes the batch with its second fence; the two fences decide what became of it. */
  private seal(lane: Lane, batch: Batch): void {
    if (lane.batch === batch) lane.batch = null;
    const started = performance.now();
    const after = this.fence(lane);
    Promise.all([batch.before, after])
      .then(([before, behind]) => {
        this.answered(lane, batch);
        if (before === 'answered' && behind === 'answered') {
          this.opts.metrics.busLatency.observe({ op: 'deliver' }, (performance.now() - started) / 1000);
          for (const item of batch.items) {
            if (lane.blocked) lane.delivered.set(sessionOf(item), item.seq);
            item.resolve('delivered');
          }
          return this.resume(lane);
        }
        // Nobody held the subject before or after: none of it was handed over; it may go again, in its place.
        if (before === 'nobody' && behind === 'nobody' && !this.closed) {
          const current = this.lane(lane.node);
          for (const item of batch.items) this.hold(current, item, 'no responders');
          return this.resume(current);
        }
        this.opts.logger.debug({ node: lane.node, before, behind, stanzas: batch.items.length }, 'fenced deliveries: outcome unknown');
        for (const item of batch.items) item.resolve('unanswered');
        this.resume(lane);
      })
      .catch((err: unknown) => this.opts.logger.error({ err, node: lane.node }, 'fenced deliveries: outcome not handled'));
  }

  /** A request naming no session (a live node answers it 'gone', delivery.ts): whether the node held its subject. */
  private fence(lane: Lane): Promise<Fence> {
    let asked: Promise<unknown>;
    try {
      asked = this.opts.bus.request(lane.subject, EMPTY, { headers: { [H.origin]: this.opts.nodeId }, timeoutMs: this.opts.timeoutMs });
    } catch (err) {
      asked = Promise.reject(err);
    }
    return asked.then(
      () => 'answered' as const,
      (err: unknown) => (err instanceof NoRespondersError ? 'nobody' : 'unknown'),
    );
  }

  private hold(lane: Lane, item: Item, why: string): void {
    if (!lane.blocked) {
      lane.blocked = true;
      lane.since = Date.now();
      lane.delay = FIRST_PROBE_DELAY_MS;
      lane.fullLogged = false;
      this.opts.logger.info({ node: lane.node, why }, 'deliveries to a c2s node held');
    }
    // Mostly appended; a request sent back by "no responders" goes before later ones.
    let i = lane.held.length;
    while (i > 0 && (lane.held[i - 1] as Item).seq > item.seq) i--;
    lane.held.splice(i, 0, item);
    this.count(1);
  }

  /** Takes the next step for a held lane once nothing it sent is unanswered on this connection. */
  private resume(lane: Lane): void {
    if (this.closed || lane.inflight > 0 || lane.timer || lane.probing) return;
    if (lane.blocked) this.prune(lane);
    if (!lane.blocked || lane.held.length === 0) {
      lane.delivered.clear();
      if (lane.blocked) {
        lane.blocked = false;
        this.opts.logger.info({ node: lane.node, heldMs: Date.now() - lane.since }, 'deliveries to a c2s node no longer held');
      }
      if (this.lanes.get(lane.node) === lane && lane.held.length === 0) this.lanes.delete(lane.node);
      return;
    }
    if (this.opts.deadNodes.isGone(lane.node)) {
      lane.blocked = false;
      this.settle(lane, lane.held.splice(0), 'gone');
      return this.resume(lane);
    }
    if (!this.opts.bus.isConnected()) {
      // The bus's 'connected' resumes it; until then, the oldest expires on time.
      const oldest = lane.held[0] as Item;
      this.later(lane, oldest.at + this.opts.holdMs - Date.now(), () => this.resume(lane));
      return;
    }
    this.later(lane, lane.delay, () => this.probe(lane));
  }

  /** Held deliveries that may not go any more: past the hold time, or overtaken by an acknowledged one. */
  private prune(lane: Lane): void {
    const now = Date.now();
    let overtaken = 0;
    const keep: Item[] = [];
    const drop: Item[] = [];
    for (const item of lane.held) {
      if (item.seq < (lane.delivered.get(sessionOf(item)) ?? -1)) overtaken++;
      else if (now - item.at < this.opts.holdMs) {
        keep.push(item);
        continue;
      }
      drop.push(item);
    }
    if (drop.length === 0) return;
    lane.held = keep;
    this.count(-drop.length);
    this.opts.logger.warn({ node: lane.node, expired: drop.length - overtaken, overtaken, holdMs: this.opts.holdMs }, 'deliveries to a c2s node given up: the senders get a wait error');
    // Last: an outcome's consequences (an error to the sender) may come back into this lane.
    for (const item of drop) item.resolve('unreachable');
  }

  /** Whether anyone holds the node's subject; then everything held goes, in order. */
  private probe(lane: Lane): void {
    // Disconnected since the probe was scheduled: the bus's 'connected' brings it back.
    if (!this.opts.bus.isConnected()) return this.resume(lane);
    lane.probing = true;
    this.fence(lane)
      .then((seen) => {
        lane.probing = false;
        if (this.closed) return;
        // Answered, or held but not answered in time (a live, busy node): send.
        if (seen !== 'nobody') return this.reached(lane);
        if (this.settled() && this.opts.bus.isConnected()) {
          this.opts.logger.warn({ node: lane.node, forMs: this.opts.deadNodeMs }, 'c2s node unreachable (no responders): its sessions count as gone');
          this.opts.deadNodes.announce(lane.node, this.opts.deadNodeMs);
        }
        lane.delay = Math.min(Math.max(lane.delay * 2, FIRST_PROBE_DELAY_MS), MAX_PROBE_DELAY_MS);
        this.resume(lane);
      })
      .catch((err: unknown) => this.opts.logger.error({ err, node: lane.node }, 'probe outcome not handled'));
  }

  private reached(lane: Lane): void {
    lane.probing = false;
    if (this.closed) return;
    this.prune(lane);
    if (!this.opts.bus.isConnected()) return this.resume(lane);
    const items = lane.held.splice(0);
    this.count(-items.length);
    lane.blocked = false;
    lane.delivered.clear();
    this.opts.logger.info({ node: lane.node, released: items.length, heldMs: Date.now() - lane.since }, 'deliveries to a c2s node released, in order');
    for (const item of items) this.fire(lane, item);
    this.resume(lane);
  }

  private settle(lane: Lane, items: Item[], outcome: DeliveryOutcome): void {
    this.count(-items.length);
    for (const item of items) item.resolve(outcome);
    if (items.length && outcome === 'unreachable') this.opts.logger.warn({ node: lane.node, dropped: items.length }, 'held deliveries to a c2s node given up');
  }

  private later(lane: Lane, ms: number, then: () => void): void {
    lane.timer = setTimeout(() => {
      lane.timer = null;
      then();
    }, Math.max(0, ms));
  }

  private clearTimer(lane: Lane): void {
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = null;
  }

  private settled(): boolean {
    return Date.now() - this.upSince >= this.opts.settleMs;
  }

  private count(delta: number): void {
    this.held += delta;
    this.depth.set(this.held);
  }
}
