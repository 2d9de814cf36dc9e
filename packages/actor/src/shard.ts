import { encodeToken } from '@hyphae/jid';

/**
 * Shards per actor kind. Changing it moves almost every key to another shard,
 * so it is a cluster-wide setting: every instance of a kind and every sender
 * must use the same value (a mismatch sends messages to shards nobody serves
 * for that key, or to the wrong owner).
 */
export const DEFAULT_SHARDS = 64;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/**
 * The shard of a key: FNV-1a, 32 bit, over the key's UTF-8 bytes, modulo
 * shardCount. Senders and owners in different processes (and versions) must
 * agree on it, so this function must NEVER change: the pinned values in
 * shard.test.ts guard it. FNV-1a was chosen over a cryptographic hash because
 * it is cheap (it runs for every message sent to an actor) and trivial to
 * reimplement in another language; keys are server-prepared JIDs, so nobody
 * gains from steering keys onto one shard beyond what they could do anyway.
 */
export function shardOf(key: string, shardCount: number): number {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError(`shardCount must be a positive integer, got ${shardCount}`);
  const bytes = encoder.encode(key);
  let h = FNV_OFFSET;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    // Math.imul keeps the multiplication in 32 bits, as the reference FNV does.
    h = Math.imul(h, FNV_PRIME);
  }
  return (h >>> 0) % shardCount;
}

/**
 * The subject of the actor for bare JID local@domain:
 * `${prefix}.${shard}.${domain}.${local}`, JID parts escaped into single
 * tokens by encodeToken. The key hashed is the bare JID string services use
 * as actor keys: `local@domain`, or just `domain` when local is empty (a
 * domain JID; encodeToken turns the empty part into the token `_`).
 */
export function actorSubject(prefix: string, shardCount: number, domain: string, local: string): string {
  const key = local === '' ? domain : `${local}@${domain}`;
  return `${prefix}.${shardOf(key, shardCount)}.${encodeToken(domain)}.${encodeToken(local)}`;
}
