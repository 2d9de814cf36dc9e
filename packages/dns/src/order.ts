/** SRV record ordering: RFC 2782 priority + weighted selection, XEP-0368 §3 interleaving. */

/** One SRV RR, as `node:dns` `resolveSrv` returns it (`name` is the target host). */
export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** A random source returning a number in [0, 1), like `Math.random`. Injectable for tests. */
export type RandomSource = () => number;

/** mulberry32: a tiny deterministic PRNG, for reproducible weight selection in tests. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * RFC 2782: "A Target of "." means that the service is decidedly not available
 * at this domain." — i.e. exactly one record whose target is the root.
 */
export function isServiceDecidedlyUnavailable(records: readonly SrvRecord[]): boolean {
  return records.length === 1 && isRootTarget(records[0]!.name);
}

export function isRootTarget(name: string): boolean {
  return name === '' || name === '.';
}

/**
 * RFC 2782 weighted selection within ONE priority group: zero-weight records
 * first, running sums, a uniform integer in [0, sum], take the first record
 * whose running sum is >= it, remove it, repeat until none are left.
 */
export function weightedOrder<T extends { weight: number }>(group: readonly T[], random: RandomSource): T[] {
  const remaining = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight !== 0)];
  const out: T[] = [];
  while (remaining.length > 0) {
    const sum = remaining.reduce((s, r) => s + r.weight, 0);
    const pick = Math.min(sum, Math.floor(random() * (sum + 1)));
    let running = 0;
    let index = remaining.length - 1;
    for (let i = 0; i < remaining.length; i++) {
      running += remaining[i]!.weight;
      if (running >= pick) {
        index = i;
        break;
      }
    }
    out.push(remaining.splice(index, 1)[0]!);
  }
  return out;
}

/** Sort by priority (lower first), weighted-random within each priority (RFC 2782). */
export function orderSrv(records: readonly SrvRecord[], random: RandomSource): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) {
    if (isRootTarget(r.name)) continue; // a "." among other records is meaningless: skip it
    const g = byPriority.get(r.priority);
    if (g) g.push(r);
    else byPriority.set(r.priority, [r]);
  }
  return [...byPriority.keys()]
    .sort((a, b) => a - b)
    .flatMap((p) => weightedOrder(byPriority.get(p)!, random));
}

export interface TaggedSrv extends SrvRecord {
  directTls: boolean;
}

/**
 * XEP-0368 §3: merge `_xmpps-server` (direct TLS) and `_xmpp-server` (STARTTLS)
 * records into one list ordered by priority. Within a priority, direct-TLS
 * records come first; each service's records of that priority are ordered by
 * the RFC 2782 weighted selection among themselves.
 */
export function interleave(directTls: readonly SrvRecord[], startTls: readonly SrvRecord[], random: RandomSource): TaggedSrv[] {
  const priorities = new Set<number>();
  const usable = (rs: readonly SrvRecord[]) => rs.filter((r) => !isRootTarget(r.name));
  const d = usable(directTls);
  const s = usable(startTls);
  for (const r of d) priorities.add(r.priority);
  for (const r of s) priorities.add(r.priority);
  const out: TaggedSrv[] = [];
  for (const p of [...priorities].sort((a, b) => a - b)) {
    for (const r of weightedOrder(d.filter((x) => x.priority === p), random)) out.push({ ...r, directTls: true });
    for (const r of weightedOrder(s.filter((x) => x.priority === p), random)) out.push({ ...r, directTls: false });
  }
  return out;
}
