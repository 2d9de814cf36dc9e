import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard } from './redis-scripts.js';
import type { PresenceStore } from './types.js';
import { byCodePoint, checkKey, checkStanza, splitFull } from './validate.js';

/**
 * Presence state in Redis, all under the user's bare JID hash tag:
 * pending-in is a hash contact → stanza; directed presence is a set of
 * targets per full JID (`P:dir:{bare}:resource`) plus an index set of the
 * bare JID's full JIDs that have one (`P:dirs:{bare}`), so deleteAll(bare)
 * finds every resource's set without SCAN. Set and index change together
 * in one script.
 */
export class RedisPresenceStore implements PresenceStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
  ) {}

  setPendingIn(bare: string, contact: string, stanza: string): Promise<void> {
    return this.guard('set pending-in', async () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      checkStanza(stanza);
      await this.redis.hset(this.keys.pendingIn(bare), contact, stanza);
    });
  }

  removePendingIn(bare: string, contact: string): Promise<boolean> {
    return this.guard('remove pending-in', async () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      return (await this.redis.hdel(this.keys.pendingIn(bare), contact)) === 1;
    });
  }

  hasPendingIn(bare: string, contact: string): Promise<boolean> {
    return this.guard('has pending-in', async () => {
      checkKey('bare JID', bare);
      checkKey('contact', contact);
      return (await this.redis.hexists(this.keys.pendingIn(bare), contact)) === 1;
    });
  }

  listPendingIn(bare: string): Promise<Array<{ contact: string; stanza: string }>> {
    return this.guard('list pending-in', async () => {
      checkKey('bare JID', bare);
      const h = await this.redis.hgetall(this.keys.pendingIn(bare));
      return Object.keys(h)
        .sort(byCodePoint)
        .map((contact) => ({ contact, stanza: h[contact] as string }));
    });
  }

  addDirected(fullFrom: string, to: string): Promise<void> {
    return this.guard('add directed presence', async () => {
      checkKey('directed presence target', to);
      await lua.run(this.redis, lua.directedAdd, this.directedKeys(fullFrom), [to, fullFrom]);
    });
  }

  removeDirected(fullFrom: string, to: string): Promise<void> {
    return this.guard('remove directed presence', async () => {
      await lua.run(this.redis, lua.directedRemove, this.directedKeys(fullFrom), [to, fullFrom]);
    });
  }

  takeDirected(fullFrom: string): Promise<string[]> {
    return this.guard('take directed presence', async () => {
      const v = (await lua.run(this.redis, lua.directedTake, this.directedKeys(fullFrom), [fullFrom])) as string[];
      return v.sort(byCodePoint);
    });
  }

  deleteAll(bare: string): Promise<void> {
    return this.guard('delete presence state', async () => {
      checkKey('bare JID', bare);
      const index = this.keys.directedIndex(bare);
      // Index members are full JIDs written by addDirected; one that does not
      // split (foreign data) is still removed from the index, its set skipped.
      const fulls = await this.redis.smembers(index);
      const sets: string[] = [];
      for (const f of fulls) {
        const slash = f.indexOf('/');
        if (slash > 0 && f.slice(0, slash) === bare) sets.push(this.keys.directed(bare, f.slice(slash + 1)));
      }
      await lua.run(this.redis, lua.presenceDeleteAll, [this.keys.pendingIn(bare), index, ...sets], fulls);
    });
  }

  private directedKeys(fullFrom: string): [string, string] {
    const { bare, resource } = splitFull(fullFrom);
    return [this.keys.directed(bare, resource), this.keys.directedIndex(bare)];
  }
}
