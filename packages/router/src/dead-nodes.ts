/**
 * Which c2s nodes are known dead, so that their sessions count as absent
 * (RFC 6121 §8.5.2.2.1: messages go to offline storage) before sm reaps
 * them from the registry, up to `sm.nodeTtlMs` after their last heartbeat.
 *
 * A router that finds nobody holding a node's subject (router.ts) marks
 * the node here and announces it on `xmpp.events.node.unreachable`, so every
 * process hides the node's sessions at once: its routers, and the readers of
 * the registry behind `announceSessionChanges` (the offline module's check
 * for a resource that became available, for one).
 *
 * A mark ends when sm reports the node down (its sessions have left the
 * registry), when a session binds on the node (it restarted with the same
 * id), when the node answers a probe (its bus connection came back: a probe
 * every `probeEveryMs` while marked), or after the time it was given.
 */
import { NoRespondersError, type Bus, type Subscription } from '@hyphae/bus';
import type { SessionEntry } from '@hyphae/store';
import { EVENTS, c2sSubject, decodeEvent, encodeEvent } from './delivery.js';

/** The payload of EVENTS.nodeUnreachable. */
export interface NodeUnreachable {
  node: string;
  /** How long the sender hides the node's sessions (ms). */
  forMs: number;
}

const EMPTY = new Uint8Array(0);

export class DeadNodes {
  /** node → until when it counts as dead */
  private readonly until = new Map<string, number>();
  private readonly probes = new Map<string, NodeJS.Timeout>();
  private readonly subs: Subscription[] = [];
  private bus: Bus | null = null;

  constructor(private readonly opts: { now?: () => number; probeEveryMs?: number } = {}) {}

  /** Follows the marks other processes announce, and what ends a mark. */
  attach(bus: Bus): this {
    this.bus = bus;
    this.subs.push(
      bus.subscribe(EVENTS.nodeUnreachable, (msg) => {
        const ev = decodeEvent<Partial<NodeUnreachable>>(msg.data);
        if (typeof ev.node === 'string' && typeof ev.forMs === 'number') this.mark(ev.node, ev.forMs);
      }),
      bus.subscribe(EVENTS.nodeDown, (msg) => {
        const node = decodeEvent<{ node?: unknown }>(msg.data).node;
        if (typeof node === 'string') this.revive(node);
      }),
      bus.subscribe(EVENTS.sessionChanged, (msg) => {
        // Set by a bind only, and only the node holding a session binds it.
        const node = decodeEvent<{ node?: unknown }>(msg.data).node;
        if (typeof node === 'string') this.revive(node);
      }),
    );
    return this;
  }

  detach(): void {
    for (const s of this.subs.splice(0)) s.unsubscribe();
    for (const node of [...this.until.keys()]) this.revive(node);
    this.bus = null;
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** Marks `node` dead for `forMs` here and in every process. */
  announce(node: string, forMs: number): void {
    this.mark(node, forMs);
    this.bus?.publish(EVENTS.nodeUnreachable, encodeEvent({ node, forMs } satisfies NodeUnreachable));
  }

  /** Marks `node` dead for `forMs` here. */
  mark(node: string, forMs: number): void {
    this.until.set(node, Math.max(this.until.get(node) ?? 0, this.now() + forMs));
    this.probe(node);
  }

  revive(node: string): void {
    this.until.delete(node);
    clearTimeout(this.probes.get(node));
    this.probes.delete(node);
  }

  isGone(node: string): boolean {
    const until = this.until.get(node);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.revive(node);
    return false;
  }

  /** `sessions` without those of dead nodes (the same array when none is on one). */
  filter<T extends Pick<SessionEntry, 'node'>>(sessions: T[]): T[] {
    if (this.until.size === 0) return sessions;
    return sessions.some((s) => this.isGone(s.node)) ? sessions.filter((s) => !this.isGone(s.node)) : sessions;
  }

  get size(): number {
    return this.until.size;
  }

  /** Asks the node's subject, while the node is marked, whether anyone holds it again. */
  private probe(node: string): void {
    const every = this.opts.probeEveryMs ?? 500;
    const bus = this.bus;
    if (!bus || every <= 0 || this.probes.has(node)) return;
    const timer = setTimeout(() => {
      this.probes.delete(node);
      if (!this.isGone(node)) return;
      // A request naming no session: a live node answers it 'gone' (delivery.ts).
      bus.request(c2sSubject(node), EMPTY, { timeoutMs: every }).then(
        () => this.revive(node),
        (err: unknown) => {
          if (err instanceof NoRespondersError) this.probe(node);
          else this.revive(node); // someone holds the subject (a timeout), or the bus is closing
        },
      );
    }, every);
    timer.unref();
    this.probes.set(node, timer);
  }
}
