/**
 * Checks, value encoding and archive id / query planning shared by both
 * module storage backends, so they accept, refuse and order alike.
 */
import { ArchiveIdNotFoundError, type ArchiveItem, type ArchiveQuery, type StoredValue } from './module-storage.js';
import { StoreError } from './types.js';

const NAME = /^[a-z0-9_-]+$/;

/** A module's store name: [a-z0-9_-]+, else a TypeError (a programming error, not a backend one). */
export function checkName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) throw new TypeError(`invalid module store name ${JSON.stringify(name)}: only [a-z0-9_-]+`);
}

/** Owners are non-empty (an empty Redis hash tag would scatter an owner's keys over slots). */
export function checkOwner(owner: string): void {
  if (typeof owner !== 'string' || owner === '') throw new StoreError('owner must be a non-empty string');
}

export function checkString(what: string, v: unknown): asserts v is string {
  if (typeof v !== 'string') throw new StoreError(`${what} must be a string`);
}

const MAX_DEPTH = 256;

function checkValue(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new StoreError('value nested too deeply (or cyclic)');
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new StoreError(`value holds a non-finite number (${v})`);
    return;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) checkValue(v[i], depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw new StoreError('value holds an object that is not a plain object');
    for (const k of Object.keys(v)) checkValue((v as Record<string, unknown>)[k], depth + 1);
    return;
  }
  throw new StoreError(`value holds a ${typeof v}, not a JSON value`);
}

/** The value as JSON, after checking it is exactly a StoredValue (JSON.stringify alone would drop or mangle what is not). */
export function encodeValue(v: unknown): string {
  checkValue(v, 0);
  return JSON.stringify(v);
}

export function decodeValue<T extends StoredValue>(json: string): T {
  try {
    return JSON.parse(json) as T;
  } catch (err) {
    throw new StoreError('corrupt module store value', { cause: err });
  }
}

// --- archive ids -------------------------------------------------------------

/**
 * An id is 12 hex digits of ms (the item's time) and 4 of a sequence within
 * that ms: fixed width, so string order = numeric order = archive order.
 * Both backends compute ids alike (redis-archive.ts does it in Lua).
 */
export const ID = /^[0-9a-f]{16}$/;
/** Exclusive upper bound of an item time (leaves headroom in the 12 hex digits). */
export const MAX_TIME = 2 ** 47;
const MAX_ID_MS = 16 ** 12 - 1;

const hex12 = (ms: number): string => ms.toString(16).padStart(12, '0');
export const idLo = (ms: number): string => `${hex12(ms)}0000`;
export const idHi = (ms: number): string => `${hex12(ms)}ffff`;
export const timeOfId = (id: string): number => parseInt(id.slice(0, 12), 16);

/** The id after `last` (the owner's last assigned id) for an item at time `t`: later than `last`, and at `t` unless that would go back. */
export function nextId(last: string | undefined, t: number): string {
  if (last === undefined || !ID.test(last)) return idLo(t);
  const lastMs = timeOfId(last);
  if (t > lastMs) return idLo(t);
  const seq = parseInt(last.slice(12), 16);
  return seq < 0xffff ? hex12(lastMs) + (seq + 1).toString(16).padStart(4, '0') : idLo(lastMs + 1);
}

export function checkAppend(item: { with: string; data: string; time?: number }): void {
  if (typeof item !== 'object' || item === null) throw new StoreError('archive item must be an object');
  checkString('archive item with', item.with);
  checkString('archive item data', item.data);
  if (item.time !== undefined && (!Number.isInteger(item.time) || item.time < 0 || item.time >= MAX_TIME)) {
    throw new StoreError(`archive item time must be an integer number of ms in [0, 2^47), got ${item.time}`);
  }
}

/** The bare JID of a bare or full JID string (everything before the first '/'). */
export const bareOf = (jid: string): string => {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
};

/** The `with` index entries of an item: its own `with`, and its bare JID when that is a full JID. */
export const withKeys = (w: string): string[] => (w.includes('/') ? [w, bareOf(w)] : [w]);

export const withMatches = (q: string, w: string): boolean => w === q || (!q.includes('/') && bareOf(w) === q);

/** A query, checked and turned into id bounds. */
export interface ArchivePlan {
  with?: string;
  /** Inclusive id bounds of start/end (lo > hi when `empty`). */
  lo: string;
  hi: string;
  empty: boolean;
  ids?: string[];
  after?: string;
  /** Non-empty `before` ('' only sets backward). */
  before?: string;
  backward: boolean;
  max: number;
}

function checkTime(what: string, v: unknown): asserts v is number | undefined {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw new StoreError(`archive query ${what} must be a finite number of ms`);
}

function checkId(id: unknown): string {
  checkString('archive id', id);
  if (!ID.test(id)) throw new ArchiveIdNotFoundError(id);
  return id;
}

export function planQuery(q: ArchiveQuery): ArchivePlan {
  if (typeof q !== 'object' || q === null) throw new StoreError('archive query must be an object');
  if (!Number.isInteger(q.max) || q.max < 0) throw new StoreError(`archive query max must be a non-negative integer, got ${q.max}`);
  if (q.with !== undefined) checkString('archive query with', q.with);
  checkTime('start', q.start);
  checkTime('end', q.end);
  if (q.ids !== undefined && !Array.isArray(q.ids)) throw new StoreError('archive query ids must be an array');
  const loMs = q.start === undefined ? 0 : Math.max(0, Math.ceil(q.start));
  const hiMs = q.end === undefined ? MAX_ID_MS : Math.min(MAX_ID_MS, Math.floor(q.end));
  const empty = loMs > hiMs;
  const plan: ArchivePlan = {
    // An empty filter range has lo > hi, so every backend's range over it is empty.
    lo: empty ? 'ffffffffffffffff' : idLo(loMs),
    hi: empty ? '0000000000000000' : idHi(hiMs),
    empty,
    backward: q.before !== undefined,
    max: q.max,
  };
  if (q.with !== undefined) plan.with = q.with;
  if (q.after !== undefined) plan.after = checkId(q.after);
  if (q.before !== undefined && q.before !== '') plan.before = checkId(q.before);
  if (q.ids !== undefined) plan.ids = [...new Set(q.ids.map(checkId))].sort();
  return plan;
}

/** Does an item pass the filters (with, start/end) of the plan? */
export function planMatches(p: ArchivePlan, item: ArchiveItem): boolean {
  return !p.empty && item.id >= p.lo && item.id <= p.hi && (p.with === undefined || withMatches(p.with, item.with));
}

/** One page of `matching` (sorted, filtered) by the plan's after/before/max. */
export function pageOf(p: ArchivePlan, matching: ArchiveItem[]): { items: ArchiveItem[]; complete: boolean } {
  const inRange = matching.filter((i) => (p.after === undefined || i.id > p.after) && (p.before === undefined || i.id < p.before));
  const items = p.backward ? inRange.slice(Math.max(0, inRange.length - p.max)) : inRange.slice(0, p.max);
  return { items, complete: inRange.length <= p.max };
}

export function checkPrune(opts: { before?: number; keep?: number }): void {
  if (typeof opts !== 'object' || opts === null) throw new StoreError('prune options must be an object');
  if (opts.before !== undefined && (typeof opts.before !== 'number' || Number.isNaN(opts.before))) throw new StoreError('prune before must be a number of ms');
  if (opts.keep !== undefined && (!Number.isInteger(opts.keep) || opts.keep < 0)) throw new StoreError(`prune keep must be a non-negative integer, got ${opts.keep}`);
}

/** The smallest id NOT pruned by age (`time < before` goes), or undefined when `before` prunes nothing. */
export function pruneBound(before: number | undefined): string | undefined {
  if (before === undefined || before <= 0) return undefined;
  return idLo(Math.min(Math.ceil(before), MAX_ID_MS));
}

export function checkOwnersOptions(opts: { after?: string; max: number }): void {
  if (typeof opts !== 'object' || opts === null) throw new StoreError('owners options must be an object');
  if (!Number.isInteger(opts.max) || opts.max < 0) throw new StoreError(`owners max must be a non-negative integer, got ${opts.max}`);
  if (opts.after !== undefined) checkString('owners after', opts.after);
}
