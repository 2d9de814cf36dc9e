import type { Database } from 'lmdb';
import { compositeKey, guard, keySuffix, prefixRange } from './lmdb-util.js';
import type { PresenceStore } from './types.js';
import { byCodePoint, checkKey, checkStanza, splitFull } from './validate.js';

/**
 * Presence state of the embedded mode.
 * - pending-in is durable (a subscription request must survive a restart):
 *   LMDB database `pendingin`, `bare NUL contact` → stanza, so a user's list is
 *   one range scan in contact code point order;
 * - directed presence is about live sessions, which die with the process, so
 *   it is kept in memory: bare → full JID → targets.
 */
export class LmdbPresenceStore implements PresenceStore {
  private readonly directed = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly pending: Database<string, Buffer>) {}

  setPendingIn(bare: string, contact: string, stanza: string): Promise<void> {
    return guard('set pending-in', async () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      checkStanza(stanza);
      await this.pending.put(compositeKey('pending-in', bare, contact), stanza);
    });
  }

  removePendingIn(bare: string, contact: string): Promise<boolean> {
    return guard('remove pending-in', () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      const key = compositeKey('pending-in', bare, contact);
      return this.pending.transaction(() => {
        if (this.pending.get(key) === undefined) return false;
        void this.pending.remove(key);
        return true;
      });
    });
  }

  hasPendingIn(bare: string, contact: string): Promise<boolean> {
    return guard('has pending-in', () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      return this.pending.get(compositeKey('pending-in', bare, contact)) !== undefined;
    });
  }

  listPendingIn(bare: string): Promise<Array<{ contact: string; stanza: string }>> {
    return guard('list pending-in', () => {
      checkKey('bare JID', bare);
      return [...this.pending.getRange(prefixRange(bare))].map((e) => ({ contact: keySuffix(e.key, bare), stanza: e.value }));
    });
  }

  async addDirected(fullFrom: string, to: string): Promise<void> {
    const { bare } = splitFull(fullFrom);
    checkKey('directed presence target', to);
    let fulls = this.directed.get(bare);
    if (!fulls) this.directed.set(bare, (fulls = new Map()));
    let targets = fulls.get(fullFrom);
    if (!targets) fulls.set(fullFrom, (targets = new Set()));
    targets.add(to);
  }

  async removeDirected(fullFrom: string, to: string): Promise<void> {
    const { bare } = splitFull(fullFrom);
    const fulls = this.directed.get(bare);
    const targets = fulls?.get(fullFrom);
    if (!fulls || !targets) return;
    targets.delete(to);
    if (targets.size === 0) fulls.delete(fullFrom);
    if (fulls.size === 0) this.directed.delete(bare);
  }

  async takeDirected(fullFrom: string): Promise<string[]> {
    const { bare } = splitFull(fullFrom);
    const fulls = this.directed.get(bare);
    const targets = fulls?.get(fullFrom);
    if (!fulls || !targets) return [];
    fulls.delete(fullFrom);
    if (fulls.size === 0) this.directed.delete(bare);
    return [...targets].sort(byCodePoint);
  }

  deleteAll(bare: string): Promise<void> {
    return guard('delete presence state', async () => {
      checkKey('bare JID', bare);
      this.directed.delete(bare);
      const range = prefixRange(bare);
      await this.pending.transaction(() => {
        for (const k of [...this.pending.getKeys(range)]) void this.pending.remove(k);
      });
    });
  }
}
