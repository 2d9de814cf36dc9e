import type { Database, RootDatabase } from 'lmdb';
import { guard, MAX_KEY_BYTES } from './lmdb-util.js';
import { StoreError } from './types.js';

/**
 * Keys of the module databases: parts joined by NUL, each part's UTF-8 with
 * NUL → 01 01 and 01 → 01 02. The escape keeps byte order (= code point
 * order) within a part and keeps NUL out of it, so `parts… NUL` is a prefix
 * of exactly the keys below those parts, and any string can be an owner, a
 * map key or a `with` (unlike compositeKey, which refuses NUL).
 */
function escapePart(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (!b.includes(0) && !b.includes(1)) return b;
  const out: number[] = [];
  for (const x of b) {
    if (x === 0) out.push(1, 1);
    else if (x === 1) out.push(1, 2);
    else out.push(x);
  }
  return Buffer.from(out);
}

function unescapePart(b: Buffer): string {
  if (!b.includes(1)) return b.toString('utf8');
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const x = b[i] as number;
    if (x === 1) out.push((b[++i] as number) - 1);
    else out.push(x);
  }
  return Buffer.from(out).toString('utf8');
}

const NUL = Buffer.from([0]);

export function moduleKey(...parts: string[]): Buffer {
  const bufs: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) bufs.push(NUL);
    bufs.push(escapePart(p));
  });
  const key = Buffer.concat(bufs);
  if (key.length > MAX_KEY_BYTES) throw new StoreError(`module store key too long for the embedded store (${key.length} > ${MAX_KEY_BYTES} bytes)`);
  return key;
}

/** Every key below `parts`: [parts NUL, parts 01). */
export function moduleRange(...parts: string[]): { start: Buffer; end: Buffer } {
  const k = moduleKey(...parts);
  return { start: Buffer.concat([k, NUL]), end: Buffer.concat([k, Buffer.from([1])]) };
}

/** The last part of a key below `prefix` (a moduleRange start) — or, with `upToNul`, the part right after it. */
export function partAfter(key: Buffer | Uint8Array, prefix: Buffer, upToNul = false): string {
  let rest = Buffer.from(key).subarray(prefix.length);
  if (upToNul) {
    const nul = rest.indexOf(0);
    if (nul >= 0) rest = rest.subarray(0, nul);
  }
  return unescapePart(rest);
}

export interface LmdbModuleDatabases {
  /** name NUL owner → value JSON */
  keyval: Database<string, Buffer>;
  /** name NUL owner NUL key → value JSON */
  map: Database<string, Buffer>;
  /** name NUL owner NUL id → JSON [with, data] */
  archive: Database<string, Buffer>;
  /** name NUL owner NUL with-key NUL id → '' (with-key: the item's with, and its bare JID when full) */
  archiveWith: Database<string, Buffer>;
  /** name NUL owner → last id assigned (ids never go back, even after a prune) */
  archiveLast: Database<string, Buffer>;
}

export function openLmdbModuleDatabases(root: RootDatabase): LmdbModuleDatabases {
  const db = (name: string): Database<string, Buffer> => root.openDB<string, Buffer>({ name, keyEncoding: 'binary', encoding: 'string' });
  return { keyval: db('modkv'), map: db('modmap'), archive: db('modarch'), archiveWith: db('modarchwith'), archiveLast: db('modarchlast') };
}

export type LmdbGuard = <T>(op: string, fn: () => T | Promise<T>) => Promise<T>;

/**
 * guard() (every failure a StoreError) that also refuses to touch a closed
 * environment: lmdb-js would throw a write on a closed one from a
 * setImmediate, where no caller can catch it.
 */
export function openGuard(isOpen: () => boolean): LmdbGuard {
  return (op, fn) =>
    guard(op, () => {
      if (!isOpen()) throw new StoreError(`embedded store: ${op} failed: the store is closed`);
      return fn();
    });
}
