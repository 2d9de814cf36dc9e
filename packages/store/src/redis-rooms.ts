import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import {
  checkHistoryEntry,
  checkHistoryMax,
  checkListOptions,
  checkRoomAffiliation,
  checkRoomMeta,
  copyRoomAffiliation,
  copyRoomMeta,
  roomDomain,
  sortedMap,
} from './lmdb-rooms.js';
import type { RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard, Script } from './redis-scripts.js';
import { StoreError, type RoomAffiliation, type RoomListing, type RoomMeta, type RoomStore, type StoredRoom } from './types.js';
import { byCodePoint, checkKey } from './validate.js';

function script(name: string, keys: number, source: string): Script {
  return { name, keys, source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * KEYS: the domain's room zset (all or public), the domain's name hash.
 * ARGV: lex min ('-' or '(' .. after), max. → { total, [room, …], [name or nil, …] }
 * read at one instant. HMGET in chunks: Lua's unpack() has a stack limit
 * (~8000) and max is the caller's page size.
 */
const roomList = script('roomList', 2, `
local n = tonumber(ARGV[2])
local rooms = {}
if n > 0 then rooms = redis.call('ZRANGE', KEYS[1], ARGV[1], '+', 'BYLEX', 'LIMIT', 0, n) end
local names = {}
for i = 1, #rooms, 1000 do
  local chunk = {}
  for j = i, math.min(i + 999, #rooms) do chunk[#chunk + 1] = rooms[j] end
  local got = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j = 1, #chunk do names[#names + 1] = got[j] end
end
return { redis.call('ZCARD', KEYS[1]), rooms, names }
`);

/** Runs a MULTI (or pipeline) and returns its replies, throwing the first command error. */
async function execAll(c: ChainableCommander): Promise<unknown[]> {
  const res = await c.exec();
  if (res === null) throw new StoreError('redis transaction aborted');
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

/** HGETALL reply as an object (ioredis converts it, also inside MULTI). */
function asHash(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StoreError('unexpected HGETALL reply from Redis');
  return v as Record<string, string>;
}

function parseMeta(json: string): RoomMeta {
  const v: unknown = JSON.parse(json);
  try {
    checkRoomMeta(v as RoomMeta);
  } catch (err) {
    throw new StoreError(`corrupt room meta in Redis: ${(err as Error).message}`, { cause: err });
  }
  return copyRoomMeta(v as RoomMeta);
}

function parseAffiliation(json: string): RoomAffiliation {
  const v: unknown = JSON.parse(json);
  try {
    checkRoomAffiliation(v as RoomAffiliation);
  } catch (err) {
    throw new StoreError(`corrupt room affiliation in Redis: ${(err as Error).message}`, { cause: err });
  }
  return copyRoomAffiliation(v as RoomAffiliation);
}

/** true when an affiliation record says owner (tolerant: a corrupt record is not an owner). */
function isOwnerRecord(json: string | null): boolean {
  if (json === null) return false;
  try {
    const v: unknown = JSON.parse(json);
    return typeof v === 'object' && v !== null && (v as { affiliation?: unknown }).affiliation === 'owner';
  } catch {
    return false;
  }
}

/**
 * Rooms (XEP-0045) in Redis. A room's keys share its bare JID as hash tag:
 * `P:room:{room}` (hash: `meta` JSON, `subject`), `P:roomaff:{room}`
 * (jid → affiliation JSON), `P:roomocc:{room}` (nick → occupant JSON) and
 * `P:roomhist:{room}` (list, oldest first), so load, destroy and a history
 * push + trim are each one MULTI on one slot. Occupants live here (not in
 * the actor's memory) so another instance can take the room over.
 *
 * Indexes live in other slots and are written by separate commands:
 * - the service domain's listing, `P:rooms:{domain}` / `P:pubrooms:{domain}`
 *   (zsets, score 0: ZRANGE BYLEX is byte order = code point order) and
 *   `P:roomnames:{domain}` (room → name), changed together in one MULTI.
 *   putMeta writes the room first and the listing second; destroy removes
 *   the room first and the listing last. A crash in between leaves either a
 *   room not (yet) listed, fixed by its next putMeta, or a listing of a room
 *   that is gone, fixed by destroying it again (destroy always clears the
 *   listing). Never a listed room whose meta was not yet written.
 * - the owner index `P:owned:{bare}` (set of rooms). Here the order is the
 *   other way round: a grant adds the index entry before the affiliation,
 *   a revocation or destroy removes the affiliation before the entry. So the
 *   index is always a superset of the true owners, and ownedBy() keeps only
 *   entries that the room's affiliation hash confirms. A crash can then
 *   leave a stale entry (filtered out), never an owner that ownedBy() misses
 *   (which would let a user slip past the max-rooms-per-user limit).
 */
export class RedisRoomStore implements RoomStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
  ) {}

  load(room: string): Promise<StoredRoom | null> {
    return this.guard('load room', async () => {
      roomDomain(room);
      // One round trip, one snapshot: MULTI over the room's slot.
      const [h, affs, occs, hist] = await execAll(
        this.redis
          .multi()
          .hgetall(this.keys.room(room))
          .hgetall(this.keys.roomAffiliations(room))
          .hgetall(this.keys.roomOccupants(room))
          .lrange(this.keys.roomHistory(room), 0, -1),
      );
      const hash = asHash(h);
      const meta = hash['meta'];
      if (meta === undefined) return null;
      return {
        meta: parseMeta(meta),
        affiliations: sortedMap(Object.entries(asHash(affs)).map(([jid, json]): [string, RoomAffiliation] => [jid, parseAffiliation(json)])),
        subject: hash['subject'] ?? null,
        occupants: sortedMap(Object.entries(asHash(occs))),
        history: hist as string[],
      };
    });
  }

  putMeta(room: string, meta: RoomMeta): Promise<void> {
    return this.guard('put room meta', async () => {
      const domain = roomDomain(room);
      checkRoomMeta(meta);
      const m = copyRoomMeta(meta);
      // The room first, its listing second (see the class comment).
      await this.redis.hset(this.keys.room(room), 'meta', JSON.stringify(m));
      const listing = this.redis
        .multi()
        .zadd(this.keys.roomsOf(domain), 0, room)
        .hset(this.keys.roomNamesOf(domain), room, m.name);
      if (m.public) listing.zadd(this.keys.publicRoomsOf(domain), 0, room);
      else listing.zrem(this.keys.publicRoomsOf(domain), room);
      await execAll(listing);
    });
  }

  setAffiliation(room: string, jid: string, aff: RoomAffiliation | null): Promise<void> {
    return this.guard('set room affiliation', async () => {
      roomDomain(room);
      checkKey('affiliated JID', jid);
      if (aff !== null) checkRoomAffiliation(aff);
      const affKey = this.keys.roomAffiliations(room);
      const owned = this.keys.ownedRooms(jid);
      // Owner index before a grant, after a revocation (see the class comment).
      if (aff?.affiliation === 'owner') {
        await this.redis.sadd(owned, room);
        await this.redis.hset(affKey, jid, JSON.stringify(copyRoomAffiliation(aff)));
        return;
      }
      if (aff === null) await this.redis.hdel(affKey, jid);
      else await this.redis.hset(affKey, jid, JSON.stringify(copyRoomAffiliation(aff)));
      await this.redis.srem(owned, room);
    });
  }

  setSubject(room: string, subject: string | null): Promise<void> {
    return this.guard('set room subject', async () => {
      roomDomain(room);
      if (subject !== null && typeof subject !== 'string') throw new StoreError('room subject must be a string or null');
      if (subject === null) await this.redis.hdel(this.keys.room(room), 'subject');
      else await this.redis.hset(this.keys.room(room), 'subject', subject);
    });
  }

  putOccupant(room: string, nick: string, occupant: string): Promise<void> {
    return this.guard('put room occupant', async () => {
      roomDomain(room);
      checkKey('occupant nick', nick);
      if (typeof occupant !== 'string') throw new StoreError('occupant must be a string');
      await this.redis.hset(this.keys.roomOccupants(room), nick, occupant);
    });
  }

  removeOccupant(room: string, nick: string): Promise<void> {
    return this.guard('remove room occupant', async () => {
      roomDomain(room);
      checkKey('occupant nick', nick);
      await this.redis.hdel(this.keys.roomOccupants(room), nick);
    });
  }

  pushHistory(room: string, entry: string, max: number): Promise<void> {
    return this.guard('push room history', async () => {
      roomDomain(room);
      checkHistoryEntry(entry);
      checkHistoryMax(max);
      const key = this.keys.roomHistory(room);
      // max 0: history disabled (XEP-0045 §7.2.13, historylength 0). Not LTRIM
      // -0 -1, which is LTRIM 0 -1 and would keep everything.
      if (max === 0) {
        await this.redis.del(key);
        return;
      }
      // One MULTI: the list never holds more than max entries between the two.
      await execAll(this.redis.multi().rpush(key, entry).ltrim(key, -max, -1));
    });
  }

  trimHistory(room: string, max: number): Promise<void> {
    return this.guard('trim room history', async () => {
      roomDomain(room);
      checkHistoryMax(max);
      const key = this.keys.roomHistory(room);
      if (max === 0) await this.redis.del(key);
      else await this.redis.ltrim(key, -max, -1);
    });
  }

  destroy(room: string): Promise<void> {
    return this.guard('destroy room', async () => {
      const domain = roomDomain(room);
      // 1. The room itself, atomically (one slot), reading the affiliations it drops.
      const [affs] = await execAll(
        this.redis
          .multi()
          .hgetall(this.keys.roomAffiliations(room))
          .del(this.keys.room(room), this.keys.roomAffiliations(room), this.keys.roomOccupants(room), this.keys.roomHistory(room)),
      );
      // 2. The owner index entries (each in its owner's slot; no atomicity needed, see the class comment).
      const owners = Object.entries(asHash(affs))
        .filter(([, json]) => isOwnerRecord(json))
        .map(([jid]) => jid);
      if (owners.length > 0) {
        const p = this.redis.pipeline();
        for (const jid of owners) p.srem(this.keys.ownedRooms(jid), room);
        await execAll(p);
      }
      // 3. The listing last: done unconditionally, so destroying again clears a listing a crash left behind.
      await execAll(
        this.redis
          .multi()
          .zrem(this.keys.roomsOf(domain), room)
          .zrem(this.keys.publicRoomsOf(domain), room)
          .hdel(this.keys.roomNamesOf(domain), room),
      );
    });
  }

  list(domain: string, opts: { after?: string; max: number; publicOnly: boolean }): Promise<{ items: RoomListing[]; count: number }> {
    return this.guard('list rooms', async () => {
      checkListOptions(domain, opts);
      const index = opts.publicOnly ? this.keys.publicRoomsOf(domain) : this.keys.roomsOf(domain);
      // '(' makes the lex bound exclusive (XEP-0059 §2.2: the items after the cursor).
      const min = opts.after ? `(${opts.after}` : '-';
      const [count, rooms, names] = (await lua.run(this.redis, roomList, [index, this.keys.roomNamesOf(domain)], [min, opts.max])) as [
        number,
        string[],
        Array<string | null>,
      ];
      return { items: rooms.map((room, i) => ({ room, name: names[i] ?? '' })), count: Number(count) };
    });
  }

  ownedBy(jid: string): Promise<string[]> {
    return this.guard('list owned rooms', async () => {
      checkKey('owner JID', jid);
      const rooms = await this.redis.smembers(this.keys.ownedRooms(jid));
      if (rooms.length === 0) return [];
      // The index may hold stale entries (see the class comment): keep the
      // rooms whose affiliation hash still says owner. Cross-slot, so a pipeline.
      const p = this.redis.pipeline();
      for (const room of rooms) p.hget(this.keys.roomAffiliations(room), jid);
      const affs = (await execAll(p)) as Array<string | null>;
      return rooms.filter((_, i) => isOwnerRecord(affs[i] ?? null)).sort(byCodePoint);
    });
  }
}
