import { StoreError } from './types.js';

/**
 * LMDB refuses keys longer than this (its compile-time MDB_MAXKEYSIZE as
 * built by lmdb-js). RFC 7622 allows 1023 bytes per JID part, so a pathological
 * key can exceed it; we say so instead of failing obscurely.
 */
export const MAX_KEY_BYTES = 1978;
const SEP = 0x00;

/**
 * Composite key: UTF-8(first) NUL UTF-8(second) [NUL …]. NUL cannot occur in
 * a prepared JID part, so everything under `first` is exactly the keys in
 * [first NUL, first \x01): one range scan, in UTF-8 byte order (= Unicode
 * code point order, the order the Redis backend sorts to as well). A Buffer
 * part is appended raw (e.g. a big-endian sequence number).
 */
export function compositeKey(what: string, first: string, ...rest: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(first, 'utf8')];
  for (const p of [first, ...rest]) if (typeof p === 'string' && p.includes('\u0000')) throw new StoreError('NUL in a JID part');
  for (const p of rest) parts.push(Buffer.from([SEP]), typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
  const key = Buffer.concat(parts);
  if (key.length > MAX_KEY_BYTES) throw new StoreError(`${what} key too long for the embedded store (${key.length} > ${MAX_KEY_BYTES} bytes)`);
  return key;
}

/** All keys compositeKey(…, first, …) builds, as an LMDB range. */
export function prefixRange(first: string): { start: Buffer; end: Buffer } {
  const d = Buffer.from(first, 'utf8');
  return { start: Buffer.concat([d, Buffer.from([SEP])]), end: Buffer.concat([d, Buffer.from([SEP + 1])]) };
}

/** The key's part after `first NUL` (keys from compositeKey with one string after `first`). */
export function keySuffix(key: Buffer | Uint8Array, first: string): string {
  return Buffer.from(key).subarray(Buffer.byteLength(first, 'utf8') + 1).toString('utf8');
}

export async function guard<T>(op: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(`embedded store: ${op} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
