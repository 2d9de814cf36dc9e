import type { Bus, BusMessage } from '@hyphae/bus';
import { decodeToken } from '@hyphae/jid';
import { actorSubject, shardOf } from './shard.js';
import { requestWithRetry } from './retry.js';
import { simulateCrash, startShardedService, type ShardedService, type ShardedServiceOptions } from './service.js';
import type { CoordinationStore, StoreEpoch } from '@hyphae/store';

/**
 * An in-memory CoordinationStore for this package's tests (not exported from
 * the package): the semantics of the interface on Date.now(), plus switches to
 * simulate an unreachable store and one that lost everything.
 */
export class FakeCoordination implements CoordinationStore {
  private readonly groups = new Map<string, Map<string, number>>();
  private readonly leases = new Map<string, { holder: string; expires: number }>();
  private generation = { id: 'e0', at: Date.now(), afterLoss: false };
  /** When true every call rejects, as a store that cannot be reached. */
  down = false;
  calls = 0;

  constructor(private readonly recoveryMs = 1000) {}

  /** The store lost every membership and lease (Redis restarted empty): a new epoch, after a loss. */
  wipe(): void {
    this.groups.clear();
    this.leases.clear();
    this.generation = { id: `e${Number(this.generation.id.slice(1)) + 1}`, at: Date.now(), afterLoss: true };
  }

  async epoch(): Promise<StoreEpoch> {
    await this.gate();
    const { id, at, afterLoss } = this.generation;
    const ageMs = Date.now() - at;
    return { id, ageMs, afterLoss, recovering: afterLoss && ageMs < this.recoveryMs };
  }

  private async gate(): Promise<void> {
    this.calls++;
    await Promise.resolve();
    if (this.down) throw new Error('coordination store unreachable');
  }

  async join(group: string, member: string, ttlMs: number): Promise<void> {
    await this.gate();
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = new Map()));
    g.set(member, Date.now() + ttlMs);
  }

  async leave(group: string, member: string): Promise<void> {
    await this.gate();
    this.groups.get(group)?.delete(member);
  }

  async members(group: string): Promise<string[]> {
    await this.gate();
    const t = Date.now();
    return [...(this.groups.get(group) ?? new Map<string, number>())].filter(([, exp]) => exp > t).map(([m]) => m).sort();
  }

  private current(name: string): string | null {
    const l = this.leases.get(name);
    if (!l) return null;
    if (l.expires <= Date.now()) {
      this.leases.delete(name);
      return null;
    }
    return l.holder;
  }

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    await this.gate();
    const h = this.current(name);
    if (h !== null && h !== holder) return false;
    this.leases.set(name, { holder, expires: Date.now() + ttlMs });
    return true;
  }

  async release(name: string, holder: string): Promise<boolean> {
    await this.gate();
    if (this.current(name) !== holder) return false;
    this.leases.delete(name);
    return true;
  }

  async holders(names: string[]): Promise<Array<string | null>> {
    await this.gate();
    return names.map((n) => this.current(n));
  }
}

/**
 * One process's connection to a shared FakeCoordination: down on its own
 * (its Redis connection is slow to come back), and a hook run once after
 * its next holders() read (to lose the store at that precise moment).
 */
export class CoordinationView implements CoordinationStore {
  down = false;
  /** While set, calls wait for it (a store whose commands queue until it is back), then go through. */
  stalled: Promise<void> | null = null;
  afterHolders: (() => void) | null = null;

  constructor(private readonly inner: FakeCoordination) {}

  private async gate(): Promise<void> {
    await Promise.resolve();
    if (this.stalled) await this.stalled;
    if (this.down) throw new Error('coordination store unreachable from this process');
  }

  async epoch(): Promise<StoreEpoch> {
    await this.gate();
    return this.inner.epoch();
  }
  async join(group: string, member: string, ttlMs: number): Promise<void> {
    await this.gate();
    return this.inner.join(group, member, ttlMs);
  }
  async leave(group: string, member: string): Promise<void> {
    await this.gate();
    return this.inner.leave(group, member);
  }
  async members(group: string): Promise<string[]> {
    await this.gate();
    return this.inner.members(group);
  }
  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    await this.gate();
    return this.inner.acquire(name, holder, ttlMs);
  }
  async release(name: string, holder: string): Promise<boolean> {
    await this.gate();
    return this.inner.release(name, holder);
  }
  async holders(names: string[]): Promise<Array<string | null>> {
    await this.gate();
    const h = await this.inner.holders(names);
    const hook = this.afterHolders;
    this.afterHolders = null;
    hook?.();
    return h;
  }
}

export const quietLogger = { info(): void {}, warn(): void {} };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 10 ms until it holds (returns the elapsed ms) or `ms` pass (throws). */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - t0;
}

// ---- Scenarios shared by the memory and real-backend tests ----


export const PREFIX = 'xmpp.user';
export const SHARDS = 64;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The bare JID from `xmpp.user.<shard>.<domain>.<local>`. */
export function keyFromSubject(msg: BusMessage): string {
  const t = msg.subject.split('.');
  return `${decodeToken(t[4] ?? '')}@${decodeToken(t[3] ?? '')}`;
}

export function subjectOf(key: string): string {
  const [local = '', domain = ''] = key.split('@');
  return actorSubject(PREFIX, SHARDS, domain, local);
}

/** What every instance of a test saw: handled messages, and per-key overlap across instances. */
export class Ledger {
  readonly byKey = new Map<string, Array<{ seq: number; by: string }>>();
  readonly running = new Set<string>();
  overlaps = 0;

  handlerFor(id: string, delay: () => number = () => 0): (msg: BusMessage, key: string) => Promise<void> {
    return async (msg, key) => {
      // Two handlers of one key at once, in any instance, would mean two owners.
      if (this.running.has(key)) this.overlaps++;
      this.running.add(key);
      try {
        const d = delay();
        if (d > 0) await sleep(d);
        const seq = Number(dec.decode(msg.data));
        let l = this.byKey.get(key);
        if (!l) this.byKey.set(key, (l = []));
        l.push({ seq, by: id });
      } finally {
        this.running.delete(key);
      }
      msg.respond(enc.encode(id));
    };
  }
}

export interface Timing {
  leaseTtlMs: number;
  renewIntervalMs: number;
}

export function start(
  id: string,
  bus: Bus,
  coordination: CoordinationStore,
  ledger: Ledger,
  timing: Timing,
  delay?: () => number,
  extra: Pick<ShardedServiceOptions, 'onEpoch' | 'maxQueued' | 'onShed'> = {},
): Promise<ShardedService> {
  return startShardedService({
    ...extra,
    group: 'roster',
    instanceId: id,
    bus,
    coordination,
    subjectPrefix: PREFIX,
    shardCount: SHARDS,
    ...timing,
    keyOf: keyFromSubject,
    handler: ledger.handlerFor(id, delay),
    logger: quietLogger,
  });
}

export interface FailoverResult {
  /** From the crash until the survivor owned every shard. */
  failoverMs: number;
  /** From the crash until a request to one of the dead instance's keys was answered. */
  requestMs: number;
  answeredBy: string;
}

/**
 * Two instances split the shards; `b` dies without releasing anything; a
 * request to one of b's keys is sent at once with requestWithRetry and must be
 * answered by `a` after it takes over.
 */
export async function failover(
  a: ShardedService,
  b: ShardedService,
  afterCrash: () => Promise<void>,
  sender: Bus,
  timing: Timing,
): Promise<FailoverResult> {
  await waitFor(() => a.owned().length === SHARDS / 2 && b.owned().length === SHARDS / 2, 20 * timing.renewIntervalMs + 5000, 'a 32/32 split');
  const bShards = new Set(b.owned());
  let key = '';
  for (let i = 0; ; i++) {
    key = `victim${i}@example.com`;
    if (bShards.has(shardOf(key, SHARDS))) break;
  }
  const t0 = Date.now();
  simulateCrash(b);
  await afterCrash();
  const req = requestWithRetry(sender, subjectOf(key), enc.encode('0'), { retryForMs: timing.leaseTtlMs * 5 + 5000, timeoutMs: 2000 }).then((r) => ({
    at: Date.now(),
    by: dec.decode(r.data),
  }));
  const failoverMs = await waitFor(() => a.owned().length === SHARDS, timing.leaseTtlMs * 3 + 5000, 'the takeover');
  const r = await req;
  return { failoverMs, requestMs: r.at - t0, answeredBy: r.by };
}
