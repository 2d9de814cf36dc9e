import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard } from './redis-scripts.js';
import type { CoordinationStore, StoreEpoch } from './types.js';
import { byCodePoint, checkKey, checkTtl } from './validate.js';

/** How many GETs holders() keeps in flight at once. */
const BATCH = 500;

/**
 * Service-instance coordination in Redis. Group members are a zset
 * member → expiresAt in the Redis server's clock (TIME), so node clock skew
 * never decides who is alive; members() prunes the expired. Leases are the
 * same `P:lease:{name}` strings as SessionStore.lease() (one namespace),
 * expiring by PX; acquire/renew and release check the holder in a script.
 * holders() reads each lease with its own GET (sent back to back on one
 * connection), never MGET: the names hash to different Cluster slots.
 *
 * The epoch (`P:epoch`, a hash: id, at, lost) is what a restarted-empty or
 * flushed Redis lacks: the first reader after the loss creates a new one,
 * and a reader that had seen the old id marks it `lost`.
 */
export class RedisCoordinationStore implements CoordinationStore {
  /** The epoch id this client saw last, so a loss is marked by whoever notices it first. */
  private seen = '';

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
    /** How long after a loss the live state counts as being re-recorded (StoreEpoch.recovering). */
    private readonly recoveryMs: number,
  ) {}

  /** The epoch id this client read last ('' before the first read). */
  get lastSeen(): string {
    return this.seen;
  }

  epoch(): Promise<StoreEpoch> {
    return this.guard('epoch', async () => {
      const [id, age, lost] = (await lua.run(this.redis, lua.epoch, [this.keys.epoch], [randomBytes(8).toString('hex'), this.seen])) as [string, number, number];
      this.seen = id;
      const ageMs = Math.max(0, Number(age));
      const afterLoss = lost === 1;
      return { id, ageMs, afterLoss, recovering: afterLoss && ageMs < this.recoveryMs };
    });
  }

  join(group: string, member: string, ttlMs: number): Promise<void> {
    return this.guard('join group', async () => {
      checkKey('group', group);
      checkKey('member', member);
      checkTtl(ttlMs);
      await lua.run(this.redis, lua.groupJoin, [this.keys.group(group)], [member, Math.round(ttlMs)]);
    });
  }

  leave(group: string, member: string): Promise<void> {
    return this.guard('leave group', async () => {
      await this.redis.zrem(this.keys.group(group), member);
    });
  }

  members(group: string): Promise<string[]> {
    return this.guard('group members', async () => {
      const v = (await lua.run(this.redis, lua.groupMembers, [this.keys.group(group)], [])) as string[];
      return v.sort(byCodePoint);
    });
  }

  acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.guard('acquire lease', async () => {
      checkKey('lease name', name);
      checkKey('lease holder', holder);
      checkTtl(ttlMs);
      return (await lua.run(this.redis, lua.lease, [this.keys.lease(name)], [holder, Math.max(1, Math.round(ttlMs))])) === 1;
    });
  }

  release(name: string, holder: string): Promise<boolean> {
    return this.guard('release lease', async () => (await lua.run(this.redis, lua.release, [this.keys.lease(name)], [holder])) === 1);
  }

  holders(names: string[]): Promise<Array<string | null>> {
    return this.guard('lease holders', async () => {
      const out: Array<string | null> = [];
      for (let i = 0; i < names.length; i += BATCH) {
        out.push(...(await Promise.all(names.slice(i, i + BATCH).map((n) => this.redis.get(this.keys.lease(n))))));
      }
      return out;
    });
  }
}
