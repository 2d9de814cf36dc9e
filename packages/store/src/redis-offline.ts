import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard } from './redis-scripts.js';
import type { OfflineStore } from './types.js';
import { checkCap, checkKey, checkStanza } from './validate.js';

/**
 * Offline queues as one list per bare JID. push checks the length and
 * appends in one script (the cap holds under concurrent pushes from any
 * number of nodes); take reads and deletes in one (each stanza is taken once).
 */
export class RedisOfflineStore implements OfflineStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
  ) {}

  push(bare: string, stanza: string, cap: number): Promise<boolean> {
    return this.guard('push offline', async () => {
      checkKey('bare JID', bare);
      checkStanza(stanza);
      checkCap(cap);
      return (await lua.run(this.redis, lua.offlinePush, [this.keys.offline(bare)], [cap, stanza])) === 1;
    });
  }

  take(bare: string): Promise<string[]> {
    return this.guard('take offline', async () => {
      checkKey('bare JID', bare);
      return (await lua.run(this.redis, lua.offlineTake, [this.keys.offline(bare)], [])) as string[];
    });
  }

  count(bare: string): Promise<number> {
    return this.guard('count offline', async () => {
      checkKey('bare JID', bare);
      return this.redis.llen(this.keys.offline(bare));
    });
  }

  deleteAll(bare: string): Promise<void> {
    return this.guard('delete offline', async () => {
      checkKey('bare JID', bare);
      await this.redis.del(this.keys.offline(bare));
    });
  }
}
