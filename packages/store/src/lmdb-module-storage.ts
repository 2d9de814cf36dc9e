import type { Database } from 'lmdb';
import { LmdbArchiveStore } from './lmdb-archive.js';
import { moduleKey, moduleRange, partAfter, openGuard, type LmdbGuard, type LmdbModuleDatabases } from './lmdb-module-keys.js';
import type { ArchiveStore, KeyValStore, MapStore, ModuleStorage, StoredValue } from './module-storage.js';
import { checkName, checkOwner, checkString, decodeValue, encodeValue } from './module-storage-util.js';
import { StoreError } from './types.js';

class LmdbKeyValStore<T extends StoredValue> implements KeyValStore<T> {
  constructor(
    private readonly db: Database<string, Buffer>,
    private readonly guard: LmdbGuard,
    private readonly name: string,
  ) {}

  get(owner: string): Promise<T | null> {
    return this.guard(`get ${this.name}`, () => {
      checkOwner(owner);
      const v = this.db.get(moduleKey(this.name, owner));
      return v === undefined ? null : decodeValue<T>(v);
    });
  }

  set(owner: string, value: T): Promise<void> {
    return this.guard(`set ${this.name}`, async () => {
      checkOwner(owner);
      await this.db.put(moduleKey(this.name, owner), encodeValue(value));
    });
  }

  delete(owner: string): Promise<boolean> {
    return this.guard(`delete ${this.name}`, () => {
      checkOwner(owner);
      const key = moduleKey(this.name, owner);
      return this.db.transaction(() => {
        if (this.db.get(key) === undefined) return false;
        void this.db.remove(key);
        return true;
      });
    });
  }
}

class LmdbMapStore<T extends StoredValue> implements MapStore<T> {
  constructor(
    private readonly db: Database<string, Buffer>,
    private readonly guard: LmdbGuard,
    private readonly name: string,
  ) {}

  get(owner: string, key: string): Promise<T | null> {
    return this.guard(`get ${this.name}`, () => {
      checkOwner(owner);
      checkString('map key', key);
      const v = this.db.get(moduleKey(this.name, owner, key));
      return v === undefined ? null : decodeValue<T>(v);
    });
  }

  set(owner: string, key: string, value: T): Promise<void> {
    return this.setMany(owner, [[key, value]]);
  }

  setMany(owner: string, entries: ReadonlyArray<readonly [string, T]>): Promise<void> {
    return this.guard(`set ${this.name}`, async () => {
      checkOwner(owner);
      if (!Array.isArray(entries)) throw new StoreError('map entries must be an array');
      // Everything is checked and encoded before the transaction: all or nothing.
      const puts = entries.map(([key, value]) => {
        checkString('map key', key);
        return [moduleKey(this.name, owner, key), encodeValue(value)] as const;
      });
      if (puts.length === 0) return;
      await this.db.transaction(() => {
        for (const [k, v] of puts) void this.db.put(k, v);
      });
    });
  }

  delete(owner: string, key: string): Promise<boolean> {
    return this.guard(`delete ${this.name}`, () => {
      checkOwner(owner);
      checkString('map key', key);
      const k = moduleKey(this.name, owner, key);
      return this.db.transaction(() => {
        if (this.db.get(k) === undefined) return false;
        void this.db.remove(k);
        return true;
      });
    });
  }

  all(owner: string): Promise<Array<[string, T]>> {
    return this.guard(`list ${this.name}`, () => {
      checkOwner(owner);
      const range = moduleRange(this.name, owner);
      // One range scan, in key byte order = code point order.
      return [...this.db.getRange(range)].map((e): [string, T] => [partAfter(e.key, range.start), decodeValue<T>(e.value)]);
    });
  }

  clear(owner: string): Promise<void> {
    return this.guard(`clear ${this.name}`, async () => {
      checkOwner(owner);
      const range = moduleRange(this.name, owner);
      await this.db.transaction(() => {
        for (const k of [...this.db.getKeys(range)]) void this.db.remove(k);
      });
    });
  }
}

/** Module storage in the embedded LMDB environment (databases in LmdbModuleDatabases). */
export class LmdbModuleStorage implements ModuleStorage {
  private readonly guard: LmdbGuard;

  /** `isOpen`: false once the environment is closed (operations then fail with a StoreError). */
  constructor(
    private readonly dbs: LmdbModuleDatabases,
    isOpen: () => boolean,
  ) {
    this.guard = openGuard(isOpen);
  }

  keyval<T extends StoredValue = StoredValue>(name: string): KeyValStore<T> {
    checkName(name);
    return new LmdbKeyValStore<T>(this.dbs.keyval, this.guard, name);
  }

  map<T extends StoredValue = StoredValue>(name: string): MapStore<T> {
    checkName(name);
    return new LmdbMapStore<T>(this.dbs.map, this.guard, name);
  }

  archive(name: string): ArchiveStore {
    checkName(name);
    return new LmdbArchiveStore(this.dbs, this.guard, name);
  }
}
