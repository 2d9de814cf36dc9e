/**
 * The router's view of the session registry, cached (DESIGN.md "Fast path
 * for chat": the registry is cached, invalidated by events). In a cluster
 * every registry read is a Redis round trip; a chat between two online
 * users reads the same few bare JIDs over and over, and they change only
 * when a session binds, ends, or changes its presence.
 *
 * Invalidation: every write to the registry goes through
 * `announceSessionChanges`, which publishes the bare JID on
 * `xmpp.events.session.changed` once the write is done; each cache drops
 * that entry. A node's death (`xmpp.events.node.down`) drops everything.
 * A read that was in flight when an invalidation arrived is not cached
 * (a generation per entry), and entries expire after `ttlMs` anyway, so a
 * lost event (a bus reconnect) costs at most that long. The process's own
 * writes invalidate its caches at once, not when their event comes back
 * over the bus: a user actor that makes a session available and then
 * routes its presence must not read the cached "unavailable" (the initial
 * presence would never reach its sender, RFC 6121 §4.2.2).
 *
 * What a stale entry can do, and why it is safe: a message may go to a
 * session that has just ended — its node answers "gone" and the router
 * reads the registry again (`fresh`) before falling back; a decision that
 * no resource is available (offline storage, an error) is never taken on
 * cached data.
 *
 * Dead nodes (dead-nodes.ts): the sessions of a node known dead are left
 * out of every answer, cached or fresh, so its users count as offline at
 * once (RFC 6121 §8.5.2.2.1).
 */
import type { Bus, Subscription } from '@hyphae/bus';
import type { SessionEntry, SessionStore } from '@hyphae/store';
import { EVENTS, decodeEvent, encodeEvent } from './delivery.js';
import { DeadNodes } from './dead-nodes.js';

export interface SessionChange {
  bare: string;
  /** Set by a bind: the node that bound the session (so it is alive). */
  node?: string;
}

interface Entry {
  sessions: SessionEntry[];
  expires: number;
}

/** The registry as announceSessionChanges wraps it. */
export interface AnnouncedSessionStore extends SessionStore {
  /** Calls `fn` with the bare JID of each change this process writes, as soon as it is written; returns the remover. */
  onLocalChange(fn: (bare: string) => void): () => void;
}

export interface CacheCounters {
  hits: number;
  misses: number;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every invalidation of a bare JID (and all of them by `clear`). */
  private readonly generations = new Map<string, number>();
  private epoch = 0;
  private readonly subs: Subscription[] = [];
  private offLocal: (() => void) | null = null;
  readonly counters: CacheCounters = { hits: 0, misses: 0 };
  /** The nodes whose sessions this cache leaves out. */
  readonly deadNodes: DeadNodes;

  constructor(
    private readonly store: SessionStore,
    private readonly opts: { ttlMs: number; maxEntries: number; now?: () => number; onLookup?: (hit: boolean) => void; probeEveryMs?: number },
  ) {
    this.deadNodes = new DeadNodes({ ...(opts.now ? { now: opts.now } : {}), ...(opts.probeEveryMs !== undefined ? { probeEveryMs: opts.probeEveryMs } : {}) });
  }

  /** Listens for registry changes on the bus. */
  attach(bus: Bus): this {
    this.subs.push(
      bus.subscribe(EVENTS.sessionChanged, (msg) => this.invalidate(decodeEvent<SessionChange>(msg.data).bare)),
      bus.subscribe(EVENTS.nodeDown, () => this.clear()),
    );
    this.deadNodes.attach(bus);
    const local = (this.store as Partial<AnnouncedSessionStore>).onLocalChange;
    if (local) this.offLocal = local.call(this.store, (bare) => this.invalidate(bare));
    return this;
  }

  detach(): void {
    for (const s of this.subs.splice(0)) s.unsubscribe();
    this.offLocal?.();
    this.offLocal = null;
    this.deadNodes.detach();
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private alive(sessions: SessionEntry[]): SessionEntry[] {
    return this.deadNodes.filter(sessions);
  }

  /** The sessions of `bare`, from the cache when it holds them. */
  async list(bare: string): Promise<SessionEntry[]> {
    return this.cached(bare) ?? this.fresh(bare);
  }

  /** One session of `bare` (from the cached list; a resource not in it is looked up afresh). */
  async get(bare: string, resource: string): Promise<SessionEntry | null> {
    const hit = this.cached(bare)?.find((s) => s.resource === resource);
    if (hit) return hit;
    return (await this.fresh(bare)).find((s) => s.resource === resource) ?? null;
  }

  /** The cached sessions of `bare` when the cache holds a current answer (no registry read, not counted). */
  peek(bare: string): SessionEntry[] | undefined {
    const e = this.entries.get(bare);
    return e !== undefined && e.expires > this.now() ? this.alive(e.sessions) : undefined;
  }

  /** The cached sessions of `bare`, counting the lookup as a hit or a miss. */
  private cached(bare: string): SessionEntry[] | undefined {
    const e = this.entries.get(bare);
    const hit = e !== undefined && e.expires > this.now();
    if (hit) this.counters.hits++;
    else this.counters.misses++;
    this.opts.onLookup?.(hit);
    return hit ? this.alive(e.sessions) : undefined;
  }

  /** Reads the registry (bypassing the cache) and caches the answer. */
  async fresh(bare: string): Promise<SessionEntry[]> {
    const gen = this.generation(bare);
    const sessions = await this.store.list(bare);
    // An invalidation while the read was in flight: the answer may predate the change.
    if (this.generation(bare) === gen) {
      if (this.entries.size >= this.opts.maxEntries) this.evict();
      this.entries.set(bare, { sessions, expires: this.now() + this.opts.ttlMs });
    }
    return this.alive(sessions);
  }

  invalidate(bare: string): void {
    this.entries.delete(bare);
    this.generations.set(bare, (this.generations.get(bare) ?? 0) + 1);
    // Generations only need to outlive reads in flight; keep the map small.
    if (this.generations.size > this.opts.maxEntries) this.generations.clear();
  }

  clear(): void {
    this.entries.clear();
    this.generations.clear();
    this.epoch++;
  }

  get size(): number {
    return this.entries.size;
  }

  private generation(bare: string): string {
    return `${this.epoch}.${this.generations.get(bare) ?? 0}`;
  }

  /** Drops the oldest tenth (Map order is insertion order). */
  private evict(): void {
    let n = Math.max(1, Math.floor(this.opts.maxEntries / 10));
    for (const k of this.entries.keys()) {
      this.entries.delete(k);
      if (--n === 0) break;
    }
  }
}

/**
 * Wraps a session registry so that every successful write that changes
 * what routing reads announces the bare JID on the bus (after the write,
 * so a cache that drops the entry and reads again sees the change). The
 * presence a session broadcast is not among it: cached entries may hold
 * an older one, and nothing reads it from a cache (probes read the store).
 * Reads leave out the sessions of nodes known dead (dead-nodes.ts).
 */
export function announceSessionChanges(store: SessionStore, bus: Bus): AnnouncedSessionStore {
  // Every reader of the process's registry leaves dead nodes' sessions out (dead-nodes.ts).
  const dead = new DeadNodes().attach(bus);
  const local = new Set<(bare: string) => void>();
  const announce = (bare: string, node?: string): void => {
    for (const fn of local) fn(bare);
    bus.publish(EVENTS.sessionChanged, encodeEvent((node === undefined ? { bare } : { bare, node }) satisfies SessionChange));
  };
  return {
    onLocalChange(fn) {
      local.add(fn);
      return () => local.delete(fn);
    },
    async bind(bare, entry) {
      const replaced = await store.bind(bare, entry);
      // Only the node holding a session binds it: a bind shows that node alive.
      announce(bare, entry.node);
      return replaced;
    },
    async unbind(bare, resource, sessionId) {
      const removed = await store.unbind(bare, resource, sessionId);
      if (removed) announce(bare);
      return removed;
    },
    async update(bare, resource, sessionId, patch) {
      const changed = await store.update(bare, resource, sessionId, patch);
      // Routing reads availability, priority and module flags only: a new <show/>
      // or <status/> (the most frequent registry write) leaves every cache valid.
      if (changed && (patch.available !== undefined || patch.priority !== undefined || patch.flags !== undefined)) announce(bare);
      return changed;
    },
    async purgeNode(node) {
      const removed = await store.purgeNode(node);
      for (const bare of new Set(removed.map((s) => s.bare))) announce(bare);
      return removed;
    },
    async get(bare, resource) {
      const entry = await store.get(bare, resource);
      return entry && dead.isGone(entry.node) ? null : entry;
    },
    list: async (bare) => dead.filter(await store.list(bare)),
    heartbeat: (node, ttlMs) => store.heartbeat(node, ttlMs),
    nodes: () => store.nodes(),
    sessionsOf: (node) => store.sessionsOf(node),
    lease: (name, holder, ttlMs) => store.lease(name, holder, ttlMs),
    count: () => store.count(),
  };
}
