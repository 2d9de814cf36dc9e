import type { Bus, BusMessage, Subscription } from '@hyphae/bus';
import { EpochWatch, type CoordinationStore, type StoreEpoch } from '@hyphae/store';
import { KeyedMailbox } from './mailbox.js';
import { BUSY_VALUE, MOVED_HEADER, MOVED_VALUE, TIMEOUT_HEADER } from './protocol.js';
import { DEFAULT_SHARDS, shardOf } from './shard.js';

/** Handles one message of actor `key`; messages of one key never overlap. */
export type ActorHandler = (msg: BusMessage, key: string) => Promise<void>;

export interface ShardedServiceOptions {
  /** Actor kind, e.g. 'roster': names the group and its leases. */
  group: string;
  /** Unique per live process (a restarted process should use a new one, e.g. with a random suffix). */
  instanceId: string;
  bus: Bus;
  coordination: CoordinationStore;
  /** e.g. 'xmpp.user': shard n is served on `${subjectPrefix}.${n}.>`. */
  subjectPrefix: string;
  /** Default DEFAULT_SHARDS (64); must be the same for every instance and sender. */
  shardCount?: number;
  /** Default 5000 ms; also the TTL of the group membership. */
  leaseTtlMs?: number;
  /** Default 1000 ms. */
  renewIntervalMs?: number;
  /**
   * A shard is dropped locally this long before its lease would expire in
   * the store, counted from when the renewal was sent: room for clock-rate
   * differences and for a handler already running to finish before another
   * instance may take the shard. Default max(100, leaseTtlMs / 5).
   */
  leaseMarginMs?: number;
  /** The actor key of a message (usually the bare JID from the subject). */
  keyOf: (msg: BusMessage) => string;
  handler: ActorHandler;
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void };
  /**
   * Called in every coordination round once the store's epoch is read,
   * before any lease is renewed or taken: `reset` when the store lost its
   * live state since the last round (Redis restarted empty or flushed) — the
   * service writes back there what it keeps in memory; `owned`, the shards
   * served now. While `epoch.afterLoss` and `epoch.ageMs` < the lease TTL
   * no instance takes a free shard. Bounded by the round's call timeout.
   */
  onEpoch?: (round: { reset: boolean; epoch: StoreEpoch; owned: number[] }) => Promise<void>;
  /**
   * Messages queued or running in this instance's mailboxes, all shards
   * together, past which a request is refused at once (reply `hy-actor:
   * busy`; requestWithRetry backs off and resends): overload makes senders
   * wait or fail, not this process's memory grow without end. Default: no
   * bound.
   */
  maxQueued?: number;
  /**
   * Called for each message not run because of overload: 'busy' (refused,
   * the mailboxes were full), 'expired' (its sender had stopped waiting
   * before its turn came: `hy-timeout`, protocol.ts). For a counter.
   */
  onShed?: (reason: 'busy' | 'expired', subject: string) => void;
}

export interface ShardedService {
  /** Shards this instance serves now (subscribed), ascending. */
  owned(): number[];
  /** Called with owned() whenever it changes; returns a function that removes the listener. */
  onChange(cb: (owned: number[]) => void): () => void;
  /**
   * Runs `fn` in the mailbox of `key` on shard `shard` — after the messages
   * of that key already accepted, before later ones — if this instance
   * serves the shard; false (fn not run) when it does not.
   */
  runInMailbox(shard: number, key: string, fn: () => Promise<void>): Promise<boolean>;
  /** Messages from the bus queued or running in this instance's mailboxes (a queue-depth gauge). */
  queued(): number;
  /** Graceful: stops acquiring, unsubscribes, drains mailboxes, releases leases, leaves the group. */
  stop(): Promise<void>;
}

interface Shard {
  readonly n: number;
  readonly lease: string;
  /** 'active': subscribed and handling; 'draining': unsubscribed, finishing its mailboxes before release. */
  phase: 'active' | 'draining';
  sub: Subscription | null;
  readonly mailbox: KeyedMailbox;
  /** Local monotonic time (performance.now()) after which we must not handle this shard. */
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  /** Dropped without a handover (lease lost or expired): nothing queued may run any more. */
  lost: boolean;
  /** Set once a release was started: no renewal may follow it. */
  released: boolean;
  /** Coordination calls of this shard, chained so a renewal can never land after its release. */
  ops: Promise<unknown>;
}

const EMPTY = new Uint8Array(0);
const MOVED = { [MOVED_HEADER]: MOVED_VALUE };
const BUSY = { [MOVED_HEADER]: BUSY_VALUE };
/** Overload is logged at most this often, with the counts since the last line (a line per refusal would add to it). */
const SHED_LOG_MS = 10_000;
const now = (): number => performance.now();

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Test hooks, kept off the public type: see simulateCrash(). */
const crashers = new WeakMap<ShardedService, () => void>();

/**
 * For tests: the instance stops dead, as if its process was killed — timers
 * stop, subscriptions go (a dead process's NATS connection drops them), and
 * neither leases nor the group membership are released: the others must wait
 * for them to expire.
 */
export function simulateCrash(svc: ShardedService): void {
  crashers.get(svc)?.();
}

/**
 * Runs one sharded actor kind on this instance (DESIGN.md "Messages on the
 * bus"). Resolves after the first coordination round, so a lone instance
 * already owns every shard when this returns.
 *
 * Every renewIntervalMs: renew the membership and every held lease
 * (`${group}:shard:${n}`), compute the fair share ceil(shardCount / live
 * members), hand over the excess gracefully (unsubscribe → drain the shard's
 * mailboxes → release the lease) and acquire free shards up to the fair share,
 * in an order starting at shardOf(instanceId) so instances do not all race for
 * the same shards.
 *
 * The store may lose everything (DESIGN.md: Redis "may be lost at any
 * moment"): each round reads its epoch first. After a loss, held leases are
 * written back by the round's renewals, and no free shard is taken while the
 * new epoch is younger than a lease TTL — a lease that looks free may still
 * be served by a holder about to write it back — nor kept if the epoch
 * changed while it was being taken.
 */
export async function startShardedService(opts: ShardedServiceOptions): Promise<ShardedService> {
  const { group, instanceId: me, bus, coordination: coord, subjectPrefix, keyOf, handler, logger } = opts;
  const S = opts.shardCount ?? DEFAULT_SHARDS;
  const ttl = opts.leaseTtlMs ?? 5000;
  const interval = opts.renewIntervalMs ?? 1000;
  const margin = opts.leaseMarginMs ?? Math.max(100, Math.floor(ttl / 5));
  if (!Number.isInteger(S) || S < 1) throw new RangeError(`shardCount must be a positive integer, got ${S}`);
  // At least one renewal must fit between a successful renewal and the local deadline.
  if (!(interval > 0 && margin >= 0 && interval < ttl - margin)) {
    throw new RangeError(`need 0 < renewIntervalMs (${interval}) < leaseTtlMs (${ttl}) - leaseMarginMs (${margin})`);
  }
  // A hung store call must not hold the tick forever; what it did is unknown,
  // which every caller below treats conservatively.
  const callTimeout = Math.max(interval, Math.floor(ttl / 2));
  const leaseName = (n: number): string => `${group}:shard:${n}`;
  const allLeases = Array.from({ length: S }, (_, n) => leaseName(n));
  const start = shardOf(me, S);
  /** Shard numbers in this instance's preference order. */
  const preference = Array.from({ length: S }, (_, i) => (start + i) % S);
  const rank = new Map(preference.map((n, i) => [n, i]));

  const shards = new Map<number, Shard>();
  const epochs = new EpochWatch(coord);
  const listeners = new Set<(owned: number[]) => void>();
  const handovers = new Set<Promise<void>>();
  let stopping = false;
  let crashed = false;
  let tickRunning: Promise<void> | null = null;
  let lastOwned = '';
  const maxQueued = opts.maxQueued ?? Infinity;
  /** Messages from the bus queued or running in the mailboxes. */
  let queued = 0;
  const shedCounts = { busy: 0, expired: 0 };
  let shedLoggedAt = -Infinity;

  function shed(reason: 'busy' | 'expired', msg: BusMessage): void {
    shedCounts[reason]++;
    opts.onShed?.(reason, msg.subject);
    const t = now();
    if (t - shedLoggedAt < SHED_LOG_MS) return;
    shedLoggedAt = t;
    logger.warn(
      { group, refusedBusy: shedCounts.busy, skippedExpired: shedCounts.expired, queued, maxQueued: Number.isFinite(maxQueued) ? maxQueued : null },
      'actor: overloaded — requests refused (mailboxes full) or not run (their senders had stopped waiting); counts since the last such line',
    );
    shedCounts.busy = 0;
    shedCounts.expired = 0;
  }

  const owned = (): number[] => [...shards.values()].filter((s) => s.phase === 'active').map((s) => s.n).sort((a, b) => a - b);

  let notifyQueued = false;
  /** Tells listeners about owned() once per burst of changes (64 deadline timers may fire together). */
  function notify(): void {
    if (notifyQueued) return;
    notifyQueued = true;
    queueMicrotask(() => {
      notifyQueued = false;
      const o = owned();
      const sig = o.join(',');
      if (sig === lastOwned) return;
      lastOwned = sig;
      for (const cb of [...listeners]) {
        try {
          cb(o.slice());
        } catch (err) {
          logger.warn({ err, group }, 'actor: onChange listener failed');
        }
      }
    });
  }

  function chain<T>(s: Shard, op: () => Promise<T>): Promise<T> {
    const p = s.ops.then(op);
    s.ops = p.catch(() => undefined);
    return p;
  }

  function armDeadline(s: Shard, deadline: number): void {
    s.deadline = deadline;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => drop(s, 'lease deadline passed without a renewal'), Math.max(0, deadline - now()));
    s.timer.unref();
  }

  /** Still ours to handle right now? Also checks the clock: timers can fire late on a busy loop. */
  function live(s: Shard): boolean {
    if (s.lost) return false;
    if (now() >= s.deadline) {
      drop(s, 'lease deadline passed without a renewal');
      return false;
    }
    return true;
  }

  /**
   * Unsafe loss (renewal refused, or deadline passed): stop at once. Messages
   * still queued are answered "moved" (requestWithRetry resends them); once
   * the one possibly running has finished, the lease is released if we still
   * happen to hold it, so a transient fault does not leave the shard unserved
   * for a whole TTL. release() only frees a lease we hold, so this cannot
   * take a shard from its new owner.
   */
  function drop(s: Shard, reason: string): void {
    if (s.lost || crashed) return;
    s.lost = true;
    s.sub?.unsubscribe();
    s.sub = null;
    clearTimeout(s.timer);
    if (shards.get(s.n) === s) shards.delete(s.n);
    logger.warn({ group, shard: s.n, reason }, 'actor: shard dropped');
    notify();
    if (!s.released) {
      s.released = true;
      void s.mailbox
        .drain()
        .then(() => chain(s, () => withTimeout(coord.release(s.lease, me), callTimeout, 'release')))
        .catch(() => undefined);
    }
  }

  function dispatch(s: Shard, msg: BusMessage): void {
    // No await: the subscription's queue moves on at once, so the keys of one
    // shard proceed concurrently; the mailbox keeps each key's order.
    if (s.lost) {
      msg.respond(EMPTY, MOVED);
      return;
    }
    let key: string;
    try {
      key = keyOf(msg);
    } catch (err) {
      logger.warn({ err, group, shard: s.n, subject: msg.subject }, 'actor: keyOf failed; message dropped');
      return;
    }
    // Bounded: past maxQueued a request is refused before it costs anything
    // more (a message that is not a request cannot be told, so it queues).
    if (queued >= maxQueued && msg.respond(EMPTY, BUSY)) {
      shed('busy', msg);
      return;
    }
    const arrived = now();
    const waited = Number(msg.headers[TIMEOUT_HEADER]);
    queued++;
    s.mailbox
      .run(key, async () => {
        if (!live(s)) {
          msg.respond(EMPTY, MOVED);
          return;
        }
        // Its sender stopped waiting before its turn: it has resent it (a new
        // message, behind this one) or answered its own sender already.
        if (waited > 0 && now() - arrived >= waited) {
          shed('expired', msg);
          return;
        }
        await handler(msg, key);
      })
      .catch((err: unknown) => logger.warn({ err, group, shard: s.n, key, subject: msg.subject }, 'actor: handler failed'))
      .then(() => {
        queued--;
      });
  }

  /** Starts serving shard n (lease just acquired); the caller flushes the bus and notifies once for a batch. */
  function own(n: number, deadline: number): void {
    const s: Shard = {
      n,
      lease: leaseName(n),
      phase: 'active',
      sub: null,
      mailbox: new KeyedMailbox(),
      deadline,
      timer: undefined,
      lost: false,
      released: false,
      ops: Promise.resolve(),
    };
    shards.set(n, s);
    armDeadline(s, deadline);
    try {
      s.sub = bus.subscribe(`${subjectPrefix}.${n}.>`, (msg) => dispatch(s, msg));
    } catch (err) {
      logger.warn({ err, group, shard: n }, 'actor: cannot subscribe; giving the shard back');
      void handOver(s);
    }
  }

  /** Graceful handover: stop taking messages, finish those taken, then free the lease. */
  function handOver(s: Shard): Promise<void> {
    s.phase = 'draining';
    const sub = s.sub;
    s.sub = null;
    const p = (async () => {
      if (sub !== null) await stopTaking(sub, s.n);
      await s.mailbox.drain();
      if (s.lost) return; // dropped meanwhile: drop() releases
      s.released = true;
      clearTimeout(s.timer);
      if (shards.get(s.n) === s) shards.delete(s.n);
      try {
        const ok = await chain(s, () => withTimeout(coord.release(s.lease, me), callTimeout, 'release'));
        if (!ok) logger.warn({ group, shard: s.n }, 'actor: released a lease we no longer held');
      } catch (err) {
        logger.warn({ err, group, shard: s.n }, 'actor: lease release failed; it will expire');
      }
    })();
    handovers.add(p);
    void p.finally(() => handovers.delete(p));
    return p;
  }

  /**
   * Ends a shard subscription for a handover. drain() (NATS: UNSUB, then
   * everything routed before it is still handled) makes the handover
   * lossless, where unsubscribe() would drop requests already routed to us.
   */
  async function stopTaking(sub: Subscription, n: number): Promise<void> {
    try {
      await withTimeout(sub.drain(), callTimeout, 'subscription drain');
    } catch (err) {
      logger.warn({ err, group, shard: n }, 'actor: subscription drain failed; unsubscribing');
      sub.unsubscribe();
    }
  }

  async function renew(s: Shard): Promise<'ok' | 'lost' | 'error'> {
    if (s.released || s.lost) return 'ok';
    const t0 = now();
    try {
      const ok = await chain(s, () => (s.released ? Promise.resolve(true) : withTimeout(coord.acquire(s.lease, me, ttl), callTimeout, 'lease renewal')));
      if (s.released || s.lost || crashed) return 'ok';
      if (!ok) {
        drop(s, 'lease renewal refused: another instance holds it');
        return 'lost';
      }
      armDeadline(s, t0 + ttl - margin);
      return 'ok';
    } catch (err) {
      // Store unreachable: keep the shard until its local deadline (armed timer).
      return 'error';
    }
  }

  /**
   * The store's epoch, and what a loss means here: after a new epoch our
   * leases are gone from the store while we still serve their shards. The
   * renewals that follow in this round write them again (acquire creates a
   * missing lease); onEpoch lets the service write back its own state.
   * Null when the epoch cannot be read.
   */
  async function readEpoch(): Promise<StoreEpoch | null> {
    let epoch: StoreEpoch;
    try {
      epoch = await withTimeout(coord.epoch(), callTimeout, 'epoch read');
    } catch (err) {
      logger.warn({ err, group }, 'actor: cannot read the store epoch');
      return null;
    }
    // Observed here, not inside the timed read: one we gave up on may still
    // complete once the store is back, and must not swallow the change.
    const reset = epochs.observe(epoch);
    if (reset) {
      logger.warn(
        { group, epoch: epoch.id, epochAgeMs: epoch.ageMs, shards: owned().length, holdMs: Math.max(0, ttl - epoch.ageMs) },
        'actor: the store lost its live state (new epoch); re-recording the leases of our shards, taking no free shard until every holder has had a lease TTL to do the same',
      );
    }
    if (opts.onEpoch) {
      try {
        await withTimeout(opts.onEpoch({ reset, epoch, owned: owned() }), callTimeout, 'onEpoch');
      } catch (err) {
        logger.warn({ err, group, reset }, 'actor: onEpoch failed');
      }
    }
    return epoch;
  }

  async function tick(): Promise<void> {
    try {
      await withTimeout(coord.join(group, me, ttl), callTimeout, 'group join');
    } catch (err) {
      logger.warn({ err, group }, 'actor: group membership renewal failed');
    }
    const epoch = await readEpoch();
    const results = await Promise.all([...shards.values()].map(renew));
    const errors = results.filter((r) => r === 'error').length;
    if (errors > 0) logger.warn({ group, shards: errors }, 'actor: lease renewals failed; keeping shards until their deadline');
    if (stopping || crashed) return;

    let members: string[];
    try {
      members = await withTimeout(coord.members(group), callTimeout, 'members');
    } catch (err) {
      logger.warn({ err, group }, 'actor: cannot list members; not rebalancing');
      return;
    }
    if (stopping || crashed) return;
    const count = members.includes(me) ? members.length : members.length + 1;
    const fair = Math.ceil(S / count);

    const active = [...shards.values()].filter((s) => s.phase === 'active');
    if (active.length > fair) {
      // Give back the shards furthest from our starting position: those we keep
      // are then the ones we would pick again, so ownership stays stable.
      active.sort((a, b) => (rank.get(b.n) ?? 0) - (rank.get(a.n) ?? 0));
      const give = active.slice(0, active.length - fair);
      logger.info({ group, shards: give.map((s) => s.n), fair, members: count }, 'actor: handing shards over');
      for (const s of give) void handOver(s);
      notify();
      return;
    }

    // Draining shards count as held: taking new ones before they are gone would overshoot.
    const want = fair - shards.size;
    if (want <= 0) return;
    // A lease free in a store that lost everything may still be served by
    // its holder, which writes it back on its next renewal (before its local
    // deadline, itself within a lease TTL of the loss). Until the new epoch
    // is that old, "free" proves nothing: take nothing (two owners otherwise).
    if (epoch === null || (epoch.afterLoss && epoch.ageMs < ttl)) return;
    let holders: Array<string | null>;
    try {
      holders = await withTimeout(coord.holders(allLeases), callTimeout, 'holders');
    } catch (err) {
      logger.warn({ err, group }, 'actor: cannot read lease holders; not acquiring');
      return;
    }
    if (stopping || crashed) return;
    // A lease already in our name but not served here is from an earlier life
    // of this instanceId (see the option's doc): ours to take back.
    const candidates = preference.filter((n) => !shards.has(n) && (holders[n] === null || holders[n] === me)).slice(0, want);
    if (candidates.length === 0) return;
    const t0 = now();
    const got = await Promise.all(
      candidates.map(async (n) => {
        try {
          return (await withTimeout(coord.acquire(leaseName(n), me, ttl), callTimeout, 'lease acquire')) ? n : -1;
        } catch (err) {
          logger.warn({ err, group, shard: n }, 'actor: lease acquire failed');
          return -1;
        }
      }),
    );
    const mine = got.filter((n) => n >= 0);
    if (mine.length === 0) return;
    if (stopping || crashed) {
      // Stopped while acquiring: give them straight back.
      await Promise.all(mine.map((n) => coord.release(leaseName(n), me).catch(() => false)));
      return;
    }
    const deadline = t0 + ttl - margin;
    if (now() >= deadline) {
      // Acquired too slowly to trust the lease; never served, so freeing it is safe.
      await Promise.all(mine.map((n) => coord.release(leaseName(n), me).catch(() => false)));
      return;
    }
    // The store may have lost everything between the epoch read and the
    // holders read: then "free" was the loss, not the truth. Never served,
    // so giving them back is safe; the next round sees the new epoch.
    let unchanged = false;
    try {
      unchanged = (await withTimeout(coord.epoch(), callTimeout, 'epoch read')).id === epoch.id;
    } catch (err) {
      logger.warn({ err, group }, 'actor: cannot confirm the store epoch after acquiring; giving the shards back');
    }
    if (!unchanged || stopping || crashed) {
      await Promise.all(mine.map((n) => coord.release(leaseName(n), me).catch(() => false)));
      return;
    }
    for (const n of mine) own(n, deadline);
    // Senders rely on a shard once it is reported owned; with NATS the
    // subscriptions are live only once the server has seen them.
    await bus.flush().catch((err: unknown) => logger.warn({ err, group }, 'actor: bus flush failed'));
    notify();
    logger.info({ group, shards: mine, fair, members: count }, 'actor: acquired shards');
  }

  function runTick(): Promise<void> {
    if (tickRunning !== null || stopping || crashed) return tickRunning ?? Promise.resolve();
    tickRunning = tick()
      .catch((err: unknown) => logger.warn({ err, group }, 'actor: coordination round failed'))
      .finally(() => {
        tickRunning = null;
      });
    return tickRunning;
  }

  await runTick();
  const timer = setInterval(() => void runTick(), interval);
  timer.unref();

  let stopped: Promise<void> | undefined;
  async function doStop(): Promise<void> {
    stopping = true;
    clearInterval(timer);
    if (tickRunning !== null) await tickRunning;
    for (const s of [...shards.values()]) if (s.phase === 'active') void handOver(s);
    notify();
    // Leases of draining shards are renewed while they drain (a long handler
    // must not lose its lease halfway through the shutdown).
    const keepAlive = setInterval(() => {
      for (const s of shards.values()) void renew(s);
    }, interval);
    keepAlive.unref();
    try {
      while (handovers.size > 0) await Promise.all([...handovers]);
    } finally {
      clearInterval(keepAlive);
    }
    try {
      await withTimeout(coord.leave(group, me), callTimeout, 'group leave');
    } catch (err) {
      logger.warn({ err, group }, 'actor: leaving the group failed; membership will expire');
    }
    logger.info({ group, instanceId: me }, 'actor: stopped');
  }

  const svc: ShardedService = {
    owned,
    onChange(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    async runInMailbox(n, key, fn) {
      const s = shards.get(n);
      if (!s || s.phase !== 'active' || !live(s)) return false;
      return s.mailbox.run(key, async () => {
        if (!live(s)) return false;
        await fn();
        return true;
      });
    },
    queued: () => queued,
    stop() {
      if (crashed) return Promise.resolve(); // a dead process does nothing more
      stopped ??= doStop();
      return stopped;
    },
  };
  crashers.set(svc, () => {
    crashed = true;
    stopping = true;
    clearInterval(timer);
    for (const s of shards.values()) {
      s.lost = true;
      s.sub?.unsubscribe();
      s.sub = null;
      clearTimeout(s.timer);
    }
    shards.clear();
    notify();
  });
  return svc;
}
