import type { Database } from 'lmdb';
import { compositeKey, guard, prefixRange } from './lmdb-util.js';
import type { OfflineStore } from './types.js';
import { checkCap, checkKey, checkStanza } from './validate.js';

/** Sequence numbers are 6 bytes big-endian: byte order = numeric order, 2^48 pushes per queue. */
const SEQ_BYTES = 6;

/**
 * Offline queues in LMDB (database `offline`): `bare NUL seq` → stanza,
 * seq a big-endian counter, so a queue is one range scan, oldest first.
 * push counts and appends in one write transaction (single writer), so the
 * cap holds under concurrency; take reads and deletes in one, so a stanza is
 * delivered once. The next seq is the last key's + 1 (1 for an empty queue).
 */
export class LmdbOfflineStore implements OfflineStore {
  constructor(private readonly db: Database<string, Buffer>) {}

  push(bare: string, stanza: string, cap: number): Promise<boolean> {
    return guard('push offline', () => {
      checkKey('bare JID', bare);
      checkStanza(stanza);
      checkCap(cap);
      const range = prefixRange(bare);
      return this.db.transaction(() => {
        if (this.db.getCount(range) >= cap) return false;
        let seq = 1;
        for (const last of this.db.getKeys({ start: range.end, end: range.start, reverse: true, limit: 1 })) {
          const k = Buffer.from(last);
          seq = k.readUIntBE(k.length - SEQ_BYTES, SEQ_BYTES) + 1;
        }
        const s = Buffer.alloc(SEQ_BYTES);
        s.writeUIntBE(seq, 0, SEQ_BYTES);
        void this.db.put(compositeKey('offline', bare, s), stanza);
        return true;
      });
    });
  }

  take(bare: string): Promise<string[]> {
    return guard('take offline', () => {
      checkKey('bare JID', bare);
      const range = prefixRange(bare);
      return this.db.transaction(() => {
        const entries = [...this.db.getRange(range)];
        for (const { key } of entries) void this.db.remove(key);
        return entries.map((e) => e.value);
      });
    });
  }

  count(bare: string): Promise<number> {
    return guard('count offline', () => {
      checkKey('bare JID', bare);
      return this.db.getCount(prefixRange(bare));
    });
  }

  deleteAll(bare: string): Promise<void> {
    return guard('delete offline', async () => {
      checkKey('bare JID', bare);
      const range = prefixRange(bare);
      await this.db.transaction(() => {
        for (const k of [...this.db.getKeys(range)]) void this.db.remove(k);
      });
    });
  }
}
