import type { Database } from 'lmdb';
import { compositeKey, guard, prefixRange } from './lmdb-util.js';
import type { Roster, RosterItem, RosterStore } from './types.js';
import { checkKey, checkRosterItem, copyRosterItem } from './validate.js';

/**
 * Rosters in LMDB: database `rosters` holds `bare NUL contact` → item (JSON),
 * so a roster is one range scan in contact code point order; database
 * `rosterver` holds bare → version. An item and the version bump are written
 * in one LMDB write transaction (single writer: no lost updates).
 */
export class LmdbRosterStore implements RosterStore {
  constructor(
    private readonly items: Database<RosterItem, Buffer>,
    private readonly versions: Database<number, string>,
  ) {}

  get(bare: string): Promise<Roster> {
    return guard('get roster', () => {
      checkKey('bare JID', bare);
      // One read transaction, so version and items are one snapshot.
      const transaction = this.items.useReadTransaction();
      try {
        return {
          version: this.versions.get(bare, { transaction }) ?? 0,
          items: [...this.items.getRange({ ...prefixRange(bare), transaction })].map((e) => copyRosterItem(e.value)),
        };
      } finally {
        transaction.done();
      }
    });
  }

  getItem(bare: string, contact: string): Promise<RosterItem | null> {
    return guard('get roster item', () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      const i = this.items.get(compositeKey('roster', bare, contact));
      return i ? copyRosterItem(i) : null;
    });
  }

  setItem(bare: string, item: RosterItem): Promise<number> {
    return guard('set roster item', () => {
      checkKey('bare JID', bare);
      checkRosterItem(item);
      const key = compositeKey('roster', bare, item.jid);
      const value = copyRosterItem(item);
      return this.items.transaction(() => {
        const version = (this.versions.get(bare) ?? 0) + 1;
        void this.items.put(key, value);
        void this.versions.put(bare, version);
        return version;
      });
    });
  }

  removeItem(bare: string, contact: string): Promise<number | null> {
    return guard('remove roster item', () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      const key = compositeKey('roster', bare, contact);
      return this.items.transaction(() => {
        if (this.items.get(key) === undefined) return null;
        const version = (this.versions.get(bare) ?? 0) + 1;
        void this.items.remove(key);
        void this.versions.put(bare, version);
        return version;
      });
    });
  }

  count(bare: string): Promise<number> {
    return guard('count roster', () => {
      checkKey('bare JID', bare);
      return this.items.getCount(prefixRange(bare));
    });
  }

  deleteAll(bare: string): Promise<void> {
    return guard('delete roster', async () => {
      checkKey('bare JID', bare);
      const range = prefixRange(bare);
      await this.items.transaction(() => {
        for (const k of [...this.items.getKeys(range)]) void this.items.remove(k);
        void this.versions.remove(bare);
      });
    });
  }
}
