import type { Redis } from 'ioredis';
import type { ArchiveStore, KeyValStore, MapStore, ModuleStorage, StoredValue } from './module-storage.js';
import { checkName, checkOwner, checkString, decodeValue, encodeValue } from './module-storage-util.js';
import { RedisArchiveStore } from './redis-archive.js';
import type { RedisKeys } from './redis-keys.js';
import type { Guard } from './redis-scripts.js';
import { StoreError } from './types.js';
import { byCodePoint } from './validate.js';

/** keyval: one string key per (name, owner), P:kv:<name>:{owner} → value JSON. */
class RedisKeyValStore<T extends StoredValue> implements KeyValStore<T> {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
    private readonly name: string,
  ) {}

  get(owner: string): Promise<T | null> {
    return this.guard(`get ${this.name}`, async () => {
      checkOwner(owner);
      const v = await this.redis.get(this.keys.moduleKeyval(this.name, owner));
      return v === null ? null : decodeValue<T>(v);
    });
  }

  set(owner: string, value: T): Promise<void> {
    return this.guard(`set ${this.name}`, async () => {
      checkOwner(owner);
      await this.redis.set(this.keys.moduleKeyval(this.name, owner), encodeValue(value));
    });
  }

  delete(owner: string): Promise<boolean> {
    return this.guard(`delete ${this.name}`, async () => {
      checkOwner(owner);
      return (await this.redis.del(this.keys.moduleKeyval(this.name, owner))) === 1;
    });
  }
}

/**
 * map: one hash per (name, owner), P:map:<name>:{owner}, key → value JSON.
 * setMany is one HSET (atomic); all() sorts in code point order, as the
 * embedded store's range scan returns them.
 */
class RedisMapStore<T extends StoredValue> implements MapStore<T> {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
    private readonly name: string,
  ) {}

  get(owner: string, key: string): Promise<T | null> {
    return this.guard(`get ${this.name}`, async () => {
      checkOwner(owner);
      checkString('map key', key);
      const v = await this.redis.hget(this.keys.moduleMap(this.name, owner), key);
      return v === null ? null : decodeValue<T>(v);
    });
  }

  set(owner: string, key: string, value: T): Promise<void> {
    return this.setMany(owner, [[key, value]]);
  }

  setMany(owner: string, entries: ReadonlyArray<readonly [string, T]>): Promise<void> {
    return this.guard(`set ${this.name}`, async () => {
      checkOwner(owner);
      if (!Array.isArray(entries)) throw new StoreError('map entries must be an array');
      const flat: string[] = [];
      for (const [key, value] of entries) {
        checkString('map key', key);
        flat.push(key, encodeValue(value));
      }
      if (flat.length > 0) await this.redis.hset(this.keys.moduleMap(this.name, owner), ...flat);
    });
  }

  delete(owner: string, key: string): Promise<boolean> {
    return this.guard(`delete ${this.name}`, async () => {
      checkOwner(owner);
      checkString('map key', key);
      return (await this.redis.hdel(this.keys.moduleMap(this.name, owner), key)) === 1;
    });
  }

  all(owner: string): Promise<Array<[string, T]>> {
    return this.guard(`list ${this.name}`, async () => {
      checkOwner(owner);
      const h = await this.redis.hgetall(this.keys.moduleMap(this.name, owner));
      return Object.keys(h)
        .sort(byCodePoint)
        .map((k): [string, T] => [k, decodeValue<T>(h[k] as string)]);
    });
  }

  clear(owner: string): Promise<void> {
    return this.guard(`clear ${this.name}`, async () => {
      checkOwner(owner);
      await this.redis.del(this.keys.moduleMap(this.name, owner));
    });
  }
}

/** Module storage on Redis (key scheme at the top of redis.ts; archive in redis-archive.ts). */
export class RedisModuleStorage implements ModuleStorage {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
  ) {}

  keyval<T extends StoredValue = StoredValue>(name: string): KeyValStore<T> {
    checkName(name);
    return new RedisKeyValStore<T>(this.redis, this.keys, this.guard, name);
  }

  map<T extends StoredValue = StoredValue>(name: string): MapStore<T> {
    checkName(name);
    return new RedisMapStore<T>(this.redis, this.keys, this.guard, name);
  }

  archive(name: string): ArchiveStore {
    checkName(name);
    return new RedisArchiveStore(this.redis, this.keys, this.guard, name);
  }
}
