/**
 * Generic module storage (Prosody's storage manager model): a feature module
 * (a XEP) opens its stores by name — `stores.storage.keyval('vcard')`,
 * `stores.storage.map('private')`, `stores.storage.archive('mam')` — instead
 * of adding a typed store interface of its own. The same name gives the same
 * data in every process (embedded: the LMDB environment; cluster: Redis).
 *
 * Three kinds:
 * - **keyval**: one JSON document per owner (an account's bare JID, or a
 *   domain): get / set / delete. For a vCard, a settings blob.
 * - **map**: per owner, a map of keys to JSON values, read one key at a time
 *   or all at once (keys in code point order); setMany is atomic. For private
 *   XML storage by namespace, a blocklist by JID.
 * - **archive**: append-only items ({id, time, with, data}) per owner, with
 *   store-assigned ids that increase in append order, queried by peer
 *   (`with`; a bare JID also matches its full JIDs), time range and ids, with
 *   paging forward (`after`) and backward (`before`, `''` = the last page);
 *   prune by age or count; `owners()` for retention jobs. For XEP-0313.
 *
 * Rules common to both backends (module-storage-util.ts checks them):
 * - a store name matches /^[a-z0-9_-]+$/, else keyval()/map()/archive()
 *   throw a TypeError;
 * - owners are non-empty strings, map keys and `with` any strings (':' '|'
 *   '/' NUL… are all fine: keys are encoded, never spliced); values are
 *   JSON values (finite numbers, plain objects, arrays, strings, booleans,
 *   null), stored as JSON, returned as fresh copies; anything else is a
 *   StoreError, as is every backend failure;
 * - a keyval or map value that is `null` reads back as `null`, like a
 *   missing one (delete() tells them apart);
 * - archive order is id order, and `time` never decreases along it: an item
 *   appended with a time before the newest item's gets the newest item's
 *   time (clock skew between nodes must not reorder an archive), and `time`
 *   must be an integer number of ms in [0, 2^47). Without `time` the store's
 *   clock is used (embedded: this process; Redis: the Redis server's TIME).
 */
import { StoreError } from './types.js';

/** JSON-serializable value kept by a module. */
export type StoredValue = null | boolean | number | string | StoredValue[] | { [key: string]: StoredValue };

/** One document per owner (an account's bare JID, or a domain) — Prosody's "keyval". */
export interface KeyValStore<T extends StoredValue = StoredValue> {
  get(owner: string): Promise<T | null>;
  set(owner: string, value: T): Promise<void>;
  /** true when there was one. */
  delete(owner: string): Promise<boolean>;
}

/** Per owner, a map of keys to values — Prosody's "map" (e.g. private XML storage by namespace, a blocklist by JID). */
export interface MapStore<T extends StoredValue = StoredValue> {
  get(owner: string, key: string): Promise<T | null>;
  set(owner: string, key: string, value: T): Promise<void>;
  /** Sets several keys at once, atomically. */
  setMany(owner: string, entries: ReadonlyArray<readonly [string, T]>): Promise<void>;
  /** true when it existed. */
  delete(owner: string, key: string): Promise<boolean>;
  /** Every key and value of the owner, keys in code point order. */
  all(owner: string): Promise<Array<[string, T]>>;
  /** Forgets every key of the owner (account deleted). */
  clear(owner: string): Promise<void>;
}

export interface ArchiveItem {
  /** Unique within the owner's archive, assigned by the store on append (sortable: later items have greater ids), opaque to callers. */
  id: string;
  /** ms since epoch */
  time: number;
  /** The peer this item is with (a bare or full JID string); queries filter on it. */
  with: string;
  /** The payload (e.g. a serialized stanza). */
  data: string;
}

export interface ArchiveQuery {
  /** Only items whose `with` equals this; when it is a bare JID, items whose `with` is a full JID of that bare JID match too. */
  with?: string;
  /** ms since epoch, inclusive */
  start?: number;
  /** ms since epoch, inclusive */
  end?: number;
  /** Only these ids (in archive order). */
  ids?: string[];
  /** Items strictly after this id (paging forward). */
  after?: string;
  /** Items strictly before this id (paging backward); with `before: ''` (empty string) it means "the last page". */
  before?: string;
  /** Page size; at most this many items. */
  max: number;
}

export interface ArchivePage {
  /** Always in archive (chronological) order, also when paging backward. */
  items: ArchiveItem[];
  /** True when no further item matches in the paging direction (forward: nothing after the last item; backward: nothing before the first). */
  complete: boolean;
  /** Total number of items matching the filters (with/start/end/ids), ignoring after/before/max. */
  count: number;
}

/** Append-only archive per owner (messages), queried by time, peer and id, with paging. */
export interface ArchiveStore {
  /** Appends and returns the item with its assigned id. `time` defaults to now. */
  append(owner: string, item: { with: string; data: string; time?: number }): Promise<ArchiveItem>;
  /** Throws ArchiveIdNotFoundError (exported from this file, extends StoreError) when after/before/an id in ids names no item of the owner. */
  query(owner: string, q: ArchiveQuery): Promise<ArchivePage>;
  get(owner: string, id: string): Promise<ArchiveItem | null>;
  /** Deletes items older than `before` (ms) and/or all but the newest `keep`; returns how many were deleted. */
  prune(owner: string, opts: { before?: number; keep?: number }): Promise<number>;
  /** Owners that have any item (for background retention jobs), in code point order, after `after`, at most `max`. */
  owners(opts: { after?: string; max: number }): Promise<string[]>;
  clear(owner: string): Promise<void>;
}

/** Opens stores by name: `name` is the module's store name (e.g. 'private', 'blocklist', 'vcard'). Same name → same data, in every process. */
export interface ModuleStorage {
  keyval<T extends StoredValue = StoredValue>(name: string): KeyValStore<T>;
  map<T extends StoredValue = StoredValue>(name: string): MapStore<T>;
  archive(name: string): ArchiveStore;
}

/** An `after`, `before` or `ids` entry of an ArchiveQuery names no item of the owner (XEP-0059 §2.6 item-not-found). */
export class ArchiveIdNotFoundError extends StoreError {
  constructor(readonly id: string) {
    super(`archive item ${JSON.stringify(id)} not found`);
    this.name = 'ArchiveIdNotFoundError';
  }
}
