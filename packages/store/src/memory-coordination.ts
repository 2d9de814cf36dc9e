import { randomBytes } from 'node:crypto';
import type { CoordinationStore, StoreEpoch } from './types.js';
import { byCodePoint, checkKey, checkTtl } from './validate.js';

/**
 * Named leases in memory (one process): a lease is held until its expiry in
 * the store clock. Shared by MemorySessionStore.lease() and
 * MemoryCoordinationStore, like `P:lease:{name}` is in Redis.
 */
export class MemoryLeases {
  private readonly leases = new Map<string, { holder: string; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  acquire(name: string, holder: string, ttlMs: number): boolean {
    const now = this.now();
    const cur = this.leases.get(name);
    if (cur && cur.holder !== holder && cur.expiresAt > now) return false;
    this.leases.set(name, { holder, expiresAt: now + ttlMs });
    return true;
  }

  release(name: string, holder: string): boolean {
    const cur = this.leases.get(name);
    if (!cur || cur.holder !== holder || cur.expiresAt <= this.now()) return false;
    this.leases.delete(name);
    return true;
  }

  holder(name: string): string | null {
    const cur = this.leases.get(name);
    if (!cur) return null;
    if (cur.expiresAt <= this.now()) {
      this.leases.delete(name);
      return null;
    }
    return cur.holder;
  }
}

/**
 * Coordination for the embedded (one-process) mode: group memberships and
 * leases in memory, store clock = Date.now(). There is one instance of each
 * service, so nothing here needs to outlive the process. Each method runs to
 * completion in one event-loop turn, hence atomic.
 */
export class MemoryCoordinationStore implements CoordinationStore {
  /** group → member → expiresAt */
  private readonly groups = new Map<string, Map<string, number>>();
  /** The live state is this process's memory: one epoch for the store's whole life. */
  private readonly epochId = randomBytes(8).toString('hex');
  private readonly createdAt: number;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly leases: MemoryLeases = new MemoryLeases(now),
  ) {
    this.createdAt = now();
  }

  async epoch(): Promise<StoreEpoch> {
    return { id: this.epochId, ageMs: Math.max(0, this.now() - this.createdAt), afterLoss: false, recovering: false };
  }

  async join(group: string, member: string, ttlMs: number): Promise<void> {
    checkKey('group', group);
    checkKey('member', member);
    checkTtl(ttlMs);
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = new Map()));
    g.set(member, this.now() + Math.round(ttlMs));
  }

  async leave(group: string, member: string): Promise<void> {
    const g = this.groups.get(group);
    if (!g) return;
    g.delete(member);
    if (g.size === 0) this.groups.delete(group);
  }

  async members(group: string): Promise<string[]> {
    const g = this.groups.get(group);
    if (!g) return [];
    const now = this.now();
    for (const [m, expiresAt] of g) if (expiresAt <= now) g.delete(m);
    if (g.size === 0) this.groups.delete(group);
    return [...g.keys()].sort(byCodePoint);
  }

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    checkKey('lease name', name);
    checkKey('lease holder', holder);
    checkTtl(ttlMs);
    return this.leases.acquire(name, holder, Math.max(1, Math.round(ttlMs)));
  }

  async release(name: string, holder: string): Promise<boolean> {
    return this.leases.release(name, holder);
  }

  async holders(names: string[]): Promise<Array<string | null>> {
    return names.map((n) => this.leases.holder(n));
  }
}
