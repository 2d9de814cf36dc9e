import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard } from './redis-scripts.js';
import { StoreError, type Roster, type RosterItem, type RosterStore } from './types.js';
import { byCodePoint, checkKey, checkRosterItem, copyRosterItem } from './validate.js';

/**
 * Rosters as a hash contact → item JSON plus a version counter, both under
 * the bare JID's hash tag, so a change and its version bump are one script
 * (no lost updates, no version without its change). Items are sorted by
 * contact in code point order here, as the embedded store's range scan does.
 */
export class RedisRosterStore implements RosterStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
  ) {}

  get(bare: string): Promise<Roster> {
    return this.guard('get roster', async () => {
      checkKey('bare JID', bare);
      const [version, flat] = (await lua.run(this.redis, lua.rosterGet, this.rosterKeys(bare), [])) as [number, string[]];
      const items: RosterItem[] = [];
      for (let i = 1; i < flat.length; i += 2) items.push(parseItem(flat[i] as string));
      items.sort((a, b) => byCodePoint(a.jid, b.jid));
      return { version: Number(version), items };
    });
  }

  getItem(bare: string, contact: string): Promise<RosterItem | null> {
    return this.guard('get roster item', async () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      const v = await this.redis.hget(this.keys.roster(bare), contact);
      return v === null ? null : parseItem(v);
    });
  }

  setItem(bare: string, item: RosterItem): Promise<number> {
    return this.guard('set roster item', async () => {
      checkKey('bare JID', bare);
      checkRosterItem(item);
      const v = await lua.run(this.redis, lua.rosterSet, this.rosterKeys(bare), [item.jid, JSON.stringify(copyRosterItem(item))]);
      return Number(v);
    });
  }

  removeItem(bare: string, contact: string): Promise<number | null> {
    return this.guard('remove roster item', async () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      const v = await lua.run(this.redis, lua.rosterRemove, this.rosterKeys(bare), [contact]);
      return v === null ? null : Number(v);
    });
  }

  count(bare: string): Promise<number> {
    return this.guard('count roster', async () => {
      checkKey('bare JID', bare);
      return this.redis.hlen(this.keys.roster(bare));
    });
  }

  deleteAll(bare: string): Promise<void> {
    return this.guard('delete roster', async () => {
      checkKey('bare JID', bare);
      // One DEL of two keys of one slot: atomic, Cluster-safe.
      await this.redis.del(...this.rosterKeys(bare));
    });
  }

  private rosterKeys(bare: string): [string, string] {
    return [this.keys.roster(bare), this.keys.rosterVersion(bare)];
  }
}

function parseItem(json: string): RosterItem {
  const v: unknown = JSON.parse(json);
  if (typeof v !== 'object' || v === null) throw new StoreError('corrupt roster item in Redis');
  return copyRosterItem(v as RosterItem);
}
