import type { Database, Transaction } from 'lmdb';
import { moduleKey, moduleRange, partAfter, type LmdbGuard, type LmdbModuleDatabases } from './lmdb-module-keys.js';
import { ArchiveIdNotFoundError, type ArchiveItem, type ArchivePage, type ArchiveQuery, type ArchiveStore } from './module-storage.js';
import {
  checkAppend, checkOwner, checkOwnersOptions, checkPrune, ID, nextId, pageOf, planMatches, planQuery, pruneBound, timeOfId, withKeys,
} from './module-storage-util.js';
import { StoreError } from './types.js';

const NUL = Buffer.from([0]);
const ID_LEN = 16;
const idOf = (key: Buffer | Uint8Array): string => Buffer.from(key).subarray(key.length - ID_LEN).toString('latin1');
const at = (prefix: Buffer, id: string): Buffer => Buffer.concat([prefix, Buffer.from(id, 'latin1')]);

function parseItem(id: string, json: string): ArchiveItem {
  const v: unknown = JSON.parse(json);
  if (!Array.isArray(v) || typeof v[0] !== 'string' || typeof v[1] !== 'string') throw new StoreError('corrupt archive item');
  return { id, time: timeOfId(id), with: v[0], data: v[1] };
}

/**
 * An archive in LMDB: `archive` holds `name NUL owner NUL id` → [with, data],
 * so an owner's archive is one key range in id order; `archiveWith` indexes
 * each item under its `with` (and that JID's bare JID), so a query by peer
 * is a range too; `archiveLast` keeps the owner's last id, so ids never go
 * back even when prune empties the archive. An append reads the last id
 * and writes the item, its index entries and the new last id in one write
 * transaction (single writer: ids strictly increase). A query runs in one
 * read transaction: items are a bounded range walk (the last page walks
 * backward from the end), `count` a key count over the filter range (LMDB
 * keeps no order statistics). owners() seeks from owner to owner.
 */
export class LmdbArchiveStore implements ArchiveStore {
  private readonly items: Database<string, Buffer>;

  constructor(
    private readonly dbs: LmdbModuleDatabases,
    private readonly guard: LmdbGuard,
    private readonly name: string,
  ) {
    this.items = dbs.archive;
  }

  append(owner: string, item: { with: string; data: string; time?: number }): Promise<ArchiveItem> {
    return this.guard(`append to ${this.name}`, () => {
      checkOwner(owner);
      checkAppend(item);
      const { with: w, data } = item;
      const t = item.time ?? Date.now();
      const lastKey = moduleKey(this.name, owner);
      // Every key is as long as with this probe id: too long fails here, before the transaction.
      const probe = '0'.repeat(ID_LEN);
      moduleKey(this.name, owner, probe);
      for (const k of withKeys(w)) moduleKey(this.name, owner, k, probe);
      const value = JSON.stringify([w, data]);
      return this.items.transaction(() => {
        const id = nextId(this.dbs.archiveLast.get(lastKey), t);
        void this.items.put(moduleKey(this.name, owner, id), value);
        for (const k of withKeys(w)) void this.dbs.archiveWith.put(moduleKey(this.name, owner, k, id), '');
        void this.dbs.archiveLast.put(lastKey, id);
        return { id, time: timeOfId(id), with: w, data };
      });
    });
  }

  query(owner: string, q: ArchiveQuery): Promise<ArchivePage> {
    return this.guard(`query ${this.name}`, () => {
      checkOwner(owner);
      const p = planQuery(q);
      const transaction = this.items.useReadTransaction();
      try {
        const must = (id: string): ArchiveItem => {
          const i = this.read(owner, id, transaction);
          if (i === null) throw new ArchiveIdNotFoundError(id);
          return i;
        };
        if (p.after !== undefined) must(p.after);
        if (p.before !== undefined) must(p.before);
        if (p.ids !== undefined) {
          const matching = p.ids.map(must).filter((i) => planMatches(p, i));
          return { ...pageOf(p, matching), count: matching.length };
        }
        if (p.empty) return { items: [], complete: true, count: 0 };
        const db = p.with === undefined ? this.items : this.dbs.archiveWith;
        const prefix = p.with === undefined ? moduleRange(this.name, owner).start : moduleRange(this.name, owner, p.with).start;
        const count = db.getCount({ start: at(prefix, p.lo), end: Buffer.concat([at(prefix, p.hi), NUL]), transaction });
        // The page's bounds: the filter's, narrowed by after/before (exclusive).
        const lowEx = p.after !== undefined && p.after >= p.lo;
        const low = lowEx ? (p.after as string) : p.lo;
        const highEx = p.before !== undefined && p.before <= p.hi;
        const high = highEx ? (p.before as string) : p.hi;
        // One more than a page tells whether the page is complete.
        const ids: string[] = [];
        if (!p.backward) {
          for (const key of db.getKeys({ start: at(prefix, low), end: Buffer.concat([at(prefix, high), NUL]), transaction })) {
            const id = idOf(key);
            if (lowEx && id === low) continue;
            if (highEx && id === high) break;
            if (ids.push(id) > p.max) break;
          }
        } else {
          // Reverse: start is inclusive, end (the prefix itself, never a key) exclusive.
          for (const key of db.getKeys({ start: at(prefix, high), end: prefix, reverse: true, transaction })) {
            const id = idOf(key);
            if (highEx && id === high) continue;
            if (id < low || (lowEx && id === low)) break;
            if (ids.push(id) > p.max) break;
          }
          ids.reverse();
        }
        const complete = ids.length <= p.max;
        const pageIds = complete ? ids : p.backward ? ids.slice(1) : ids.slice(0, p.max);
        const items = pageIds.map((id) => {
          const i = this.read(owner, id, transaction);
          if (i === null) throw new StoreError(`archive index names a missing item ${id}`);
          return i;
        });
        return { items, complete, count };
      } finally {
        transaction.done();
      }
    });
  }

  get(owner: string, id: string): Promise<ArchiveItem | null> {
    return this.guard(`get from ${this.name}`, () => {
      checkOwner(owner);
      return typeof id === 'string' && ID.test(id) ? this.read(owner, id) : null;
    });
  }

  prune(owner: string, opts: { before?: number; keep?: number }): Promise<number> {
    return this.guard(`prune ${this.name}`, () => {
      checkOwner(owner);
      checkPrune(opts);
      const range = moduleRange(this.name, owner);
      const bound = pruneBound(opts.before);
      return this.items.transaction(() => {
        // Both rules delete a prefix of the archive (the oldest items): the longer one wins.
        let n = bound === undefined ? 0 : this.items.getCount({ start: range.start, end: at(range.start, bound) });
        // (A fresh options object each time: lmdb-js getCount marks the one it is given as count-only.)
        if (opts.keep !== undefined) n = Math.max(n, this.items.getCount({ ...range }) - opts.keep);
        if (n <= 0) return 0;
        const doomed = [...this.items.getRange({ ...range, limit: n })];
        for (const { key, value } of doomed) {
          const item = parseItem(idOf(key), value);
          for (const k of withKeys(item.with)) void this.dbs.archiveWith.remove(moduleKey(this.name, owner, k, item.id));
          void this.items.remove(key);
        }
        return doomed.length;
      });
    });
  }

  owners(opts: { after?: string; max: number }): Promise<string[]> {
    return this.guard(`list owners of ${this.name}`, () => {
      checkOwnersOptions(opts);
      const all = moduleRange(this.name);
      let start = opts.after === undefined ? all.start : moduleRange(this.name, opts.after).end;
      const out: string[] = [];
      const transaction = this.items.useReadTransaction();
      try {
        // Seek to the first key of the next owner, then past all of its keys.
        while (out.length < opts.max) {
          let next: string | undefined;
          for (const key of this.items.getKeys({ start, end: all.end, limit: 1, transaction })) next = partAfter(key, all.start, true);
          if (next === undefined) break;
          out.push(next);
          start = moduleRange(this.name, next).end;
        }
        return out;
      } finally {
        transaction.done();
      }
    });
  }

  clear(owner: string): Promise<void> {
    return this.guard(`clear ${this.name}`, async () => {
      checkOwner(owner);
      const range = moduleRange(this.name, owner);
      await this.items.transaction(() => {
        for (const k of [...this.items.getKeys(range)]) void this.items.remove(k);
        for (const k of [...this.dbs.archiveWith.getKeys(range)]) void this.dbs.archiveWith.remove(k);
        void this.dbs.archiveLast.remove(moduleKey(this.name, owner));
      });
    });
  }

  private read(owner: string, id: string, transaction?: Transaction): ArchiveItem | null {
    const v = this.items.get(moduleKey(this.name, owner, id), transaction ? { transaction } : undefined);
    return v === undefined ? null : parseItem(id, v);
  }
}
