import type { Redis } from 'ioredis';
import { ArchiveIdNotFoundError, type ArchiveItem, type ArchivePage, type ArchiveQuery, type ArchiveStore } from './module-storage.js';
import {
  checkAppend, checkOwner, checkOwnersOptions, checkPrune, ID, pageOf, planMatches, planQuery, pruneBound, timeOfId,
} from './module-storage-util.js';
import * as lua from './redis-archive-scripts.js';
import type { RedisKeys } from './redis-keys.js';
import { run, type Guard } from './redis-scripts.js';
import { StoreError } from './types.js';

/** Items one prune script deletes at most (the caller loops). */
const PRUNE_BATCH = 1_000;
/** Owners index entries owners() reads per round trip. */
const OWNERS_BATCH = 200;

/**
 * An archive per owner on Redis, all keys tagged by the owner:
 * - P:arch:<name>:{owner} zset, every score 0, members the ids: lex order =
 *   id order, so time bounds, after and before are lex ranges, ZLEXCOUNT
 *   counts in O(log n) and the last page is a ZREVRANGEBYLEX … LIMIT: no scan;
 * - P:archw:<name>:{owner} zset, score 0, `<len>:<with><id>` for the item's
 *   `with` and (full JID) its bare JID: the same ranges for one peer;
 * - P:archd:<name>:{owner} hash, `<id>w` → with, `<id>d` → data;
 * - P:archlast:<name>:{owner} string, the last id assigned (ids never go
 *   back, even after a prune empties the archive).
 * Append, query and prune are one script each, so a query is one snapshot.
 *
 * P:archowners:{<name>} zset (score 0, lex order) lists owners for
 * owners(); it is in another slot, so it is kept by write ordering: append
 * adds the owner after its script; clear and prune remove it only when the
 * archive is empty and re-add it if an append slipped in (unindex()). An
 * owner with items is therefore always listed; owners() skips (and
 * unindexes) any entry whose archive turned out empty.
 */
export class RedisArchiveStore implements ArchiveStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
    private readonly name: string,
  ) {}

  append(owner: string, item: { with: string; data: string; time?: number }): Promise<ArchiveItem> {
    return this.guard(`append to ${this.name}`, async () => {
      checkOwner(owner);
      checkAppend(item);
      const k = this.ownerKeys(owner);
      const id = (await run(this.redis, lua.append, [k.items, k.with, k.data, k.last], [item.time === undefined ? '' : item.time, item.with, item.data])) as string;
      await this.redis.zadd(this.keys.archiveOwners(this.name), 0, owner);
      return { id, time: timeOfId(id), with: item.with, data: item.data };
    });
  }

  query(owner: string, q: ArchiveQuery): Promise<ArchivePage> {
    return this.guard(`query ${this.name}`, async () => {
      checkOwner(owner);
      const p = planQuery(q);
      const k = this.ownerKeys(owner);
      if (p.ids !== undefined) {
        // One HMGET: the named items and the paging ids, read at one instant.
        const wanted = [...p.ids, ...(p.after === undefined ? [] : [p.after]), ...(p.before === undefined ? [] : [p.before])];
        const found = new Map<string, ArchiveItem>();
        if (wanted.length > 0) {
          const flat = await this.redis.hmget(k.data, ...wanted.flatMap((id) => [`${id}w`, `${id}d`]));
          wanted.forEach((id, i) => {
            const w = flat[2 * i];
            const d = flat[2 * i + 1];
            if (w == null || d == null) throw new ArchiveIdNotFoundError(id);
            found.set(id, { id, time: timeOfId(id), with: w, data: d });
          });
        }
        const matching = p.ids.map((id) => found.get(id) as ArchiveItem).filter((i) => planMatches(p, i));
        return { ...pageOf(p, matching), count: matching.length };
      }
      const prefix = p.with === undefined ? '' : `${Buffer.byteLength(p.with, 'utf8')}:${p.with}`;
      const lowEx = p.after !== undefined && p.after >= p.lo;
      const highEx = p.before !== undefined && p.before <= p.hi;
      const reply = (await run(this.redis, lua.query, [p.with === undefined ? k.items : k.with, k.items, k.data], [
        p.after ?? '',
        p.before ?? '',
        `[${prefix}${p.lo}`,
        `[${prefix}${p.hi}`,
        lowEx ? `(${prefix}${p.after}` : `[${prefix}${p.lo}`,
        highEx ? `(${prefix}${p.before}` : `[${prefix}${p.hi}`,
        p.max + 1, // one more than a page tells whether the page is complete
        p.backward ? '1' : '',
        Buffer.byteLength(prefix, 'utf8'),
      ])) as unknown[];
      if (reply[0] === 0) throw new ArchiveIdNotFoundError(String(reply[1]));
      const items: ArchiveItem[] = [];
      for (let i = 2; i + 2 < reply.length; i += 3) {
        const [id, w, d] = [reply[i], reply[i + 1], reply[i + 2]];
        if (typeof id !== 'string' || typeof w !== 'string' || typeof d !== 'string') throw new StoreError('corrupt archive item in Redis');
        items.push({ id, time: timeOfId(id), with: w, data: d });
      }
      const complete = items.length <= p.max;
      if (!complete) items.pop(); // the extra one: after the page forward, before it backward
      if (p.backward) items.reverse();
      return { items, complete, count: Number(reply[1]) };
    });
  }

  get(owner: string, id: string): Promise<ArchiveItem | null> {
    return this.guard(`get from ${this.name}`, async () => {
      checkOwner(owner);
      if (typeof id !== 'string' || !ID.test(id)) return null;
      const [w, d] = await this.redis.hmget(this.ownerKeys(owner).data, `${id}w`, `${id}d`);
      return w == null || d == null ? null : { id, time: timeOfId(id), with: w, data: d };
    });
  }

  prune(owner: string, opts: { before?: number; keep?: number }): Promise<number> {
    return this.guard(`prune ${this.name}`, async () => {
      checkOwner(owner);
      checkPrune(opts);
      const k = this.ownerKeys(owner);
      const bound = pruneBound(opts.before) ?? '';
      if (bound === '' && opts.keep === undefined) return 0;
      let total = 0;
      for (;;) {
        const n = Number(await run(this.redis, lua.prune, [k.items, k.with, k.data], [bound, opts.keep ?? '', PRUNE_BATCH]));
        total += n;
        if (n < PRUNE_BATCH) break;
      }
      if (total > 0) await this.unindexIfEmpty(owner);
      return total;
    });
  }

  owners(opts: { after?: string; max: number }): Promise<string[]> {
    return this.guard(`list owners of ${this.name}`, async () => {
      checkOwnersOptions(opts);
      const out: string[] = [];
      let from = opts.after === undefined ? '-' : `(${opts.after}`;
      while (out.length < opts.max) {
        const batch = await this.redis.zrangebylex(this.keys.archiveOwners(this.name), from, '+', 'LIMIT', 0, OWNERS_BATCH);
        if (batch.length === 0) break;
        // Single-key commands (each owner in its own slot), all in flight at once.
        const exists = await Promise.all(batch.map((o) => this.redis.exists(this.ownerKeys(o).items)));
        for (let i = 0; i < batch.length && out.length < opts.max; i++) {
          if (exists[i] === 1) out.push(batch[i] as string);
          else await this.unindexIfEmpty(batch[i] as string);
        }
        if (batch.length < OWNERS_BATCH) break;
        from = `(${batch[batch.length - 1] as string}`;
      }
      return out;
    });
  }

  clear(owner: string): Promise<void> {
    return this.guard(`clear ${this.name}`, async () => {
      checkOwner(owner);
      const k = this.ownerKeys(owner);
      // One DEL of keys of one slot: atomic.
      await this.redis.del(k.items, k.with, k.data, k.last);
      await this.unindexIfEmpty(owner);
    });
  }

  /** Drops the owner from the owners index unless it has items (again): see the class comment. */
  private async unindexIfEmpty(owner: string): Promise<void> {
    const ownersKey = this.keys.archiveOwners(this.name);
    const items = this.ownerKeys(owner).items;
    if ((await this.redis.exists(items)) === 1) return;
    await this.redis.zrem(ownersKey, owner);
    if ((await this.redis.exists(items)) === 1) await this.redis.zadd(ownersKey, 0, owner);
  }

  private ownerKeys(owner: string): { items: string; with: string; data: string; last: string } {
    return {
      items: this.keys.archive(this.name, owner),
      with: this.keys.archiveWith(this.name, owner),
      data: this.keys.archiveData(this.name, owner),
      last: this.keys.archiveLast(this.name, owner),
    };
  }
}
