import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The Lua scripts behind every multi-step mutation that must be atomic.
 * Each touches only keys of one hash tag (one Cluster slot). A script runs
 * alone on the server, so its reads and writes cannot interleave with
 * another client's.
 */

/** Runs one store operation and turns any failure into a StoreError naming `op`. */
export type Guard = <T>(op: string, fn: () => Promise<T>) => Promise<T>;

export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
  /** How many KEYS the script takes; -1: as many as the caller passes. */
  readonly keys: number;
}

function script(name: string, keys: number, source: string): Script {
  return { name, keys, source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs a script by SHA and falls back to sending its source when the server
 * does not know it (first use, or a restarted Redis with an empty script cache).
 */
export async function run(redis: Redis, s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
  const numKeys = s.keys < 0 ? keys.length : s.keys;
  try {
    return await redis.evalsha(s.sha, numKeys, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(s.source, numKeys, ...keys, ...args);
  }
}

/** KEYS: account hash, domain's account zset. ARGV: username, domain, credentials JSON, createdAt. → 1 created / 0 existed */
export const createAccount = script('createAccount', 2, `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'username', ARGV[1], 'domain', ARGV[2], 'credentials', ARGV[3], 'createdAt', ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
`);

/** KEYS: account hash. ARGV: credentials JSON. → 1 updated / 0 no such account */
export const setCredentials = script('setCredentials', 1, `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'credentials', ARGV[1])
return 1
`);

/** KEYS: account hash, domain's account zset. ARGV: username. → 1 deleted / 0 no such account */
export const deleteAccount = script('deleteAccount', 2, `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`);

/** KEYS: bare's session hash. ARGV: resource, entry JSON. → the replaced entry JSON, or nil */
export const bind = script('bind', 1, `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old
`);

/**
 * KEYS: bare's session hash. ARGV: resource, sessionId, node ('' = any).
 * Removes the entry only if it still holds that session (and node).
 * → the removed entry JSON, or nil
 */
export const removeIf = script('removeIf', 1, `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
local e = cjson.decode(v)
if e.sessionId ~= ARGV[2] then return false end
if ARGV[3] ~= '' and e.node ~= ARGV[3] then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
return v
`);

/**
 * KEYS: bare's session hash. ARGV: resource, sessionId, priority ('' = keep),
 * available ('1' / '0' / '' = keep), presence mode ('1' = set / '' = keep),
 * presence ('' with mode '1' = clear), flags mode ('1' = set / '' = keep), flags
 * (a JSON array; '' with mode '1' = clear). → 1 patched / 0 not held by that session
 */
export const update = script('update', 1, `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local e = cjson.decode(v)
if e.sessionId ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' then e.priority = tonumber(ARGV[3]) end
if ARGV[4] ~= '' then e.available = (ARGV[4] == '1') end
if ARGV[5] == '1' then
  if ARGV[6] == '' then e.presence = nil else e.presence = ARGV[6] end
end
if ARGV[7] == '1' then
  if ARGV[8] == '' then e.flags = nil else e.flags = cjson.decode(ARGV[8]) end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(e))
return 1
`);

/**
 * KEYS: nodes zset. ARGV: node, ttlMs. Expiry is computed from the Redis
 * server's clock (TIME), so skew between our nodes' clocks does not matter.
 * → the server's now in ms
 */
export const heartbeat = script('heartbeat', 1, `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now
`);

/** KEYS: nodes zset. → { server now in ms, [node, expiresAt, …] } read at one instant */
export const nodes = script('nodes', 1, `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return { now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') }
`);

/**
 * KEYS: lease key. ARGV: holder, ttlMs. Acquires a free (or expired: Redis
 * dropped the key) lease or renews our own. → 1 held by us / 0 by another
 */
export const lease = script('lease', 1, `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`);

/**
 * KEYS: lease key. ARGV: holder. Releases the lease only if `holder` holds
 * it (an expired lease is already gone). → 1 released / 0 not ours
 */
export const release = script('release', 1, `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

/** KEYS: roster hash, roster version. ARGV: contact, item JSON. → the new version */
export const rosterSet = script('rosterSet', 2, `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
`);

/** KEYS: roster hash, roster version. ARGV: contact. → the new version, or nil when there was no such item */
export const rosterRemove = script('rosterRemove', 2, `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('INCR', KEYS[2])
`);

/** KEYS: roster hash, roster version. → { version, [contact, item JSON, …] } read at one instant */
export const rosterGet = script('rosterGet', 2, `
return { tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HGETALL', KEYS[1]) }
`);

/** KEYS: offline list. ARGV: cap, stanza. → 1 appended / 0 full */
export const offlinePush = script('offlinePush', 1, `
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
`);

/** KEYS: offline list. → every stanza, oldest first; the list is gone */
export const offlineTake = script('offlineTake', 1, `
local v = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return v
`);

/** KEYS: full JID's directed set, bare's directed index. ARGV: target, full JID. */
export const directedAdd = script('directedAdd', 2, `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
`);

/** KEYS: full JID's directed set, bare's directed index. ARGV: target, full JID. Drops the index member with the last target. */
export const directedRemove = script('directedRemove', 2, `
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
`);

/** KEYS: full JID's directed set, bare's directed index. ARGV: full JID. → the targets; set and index member gone */
export const directedTake = script('directedTake', 2, `
local v = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return v
`);

/**
 * KEYS: pending-in hash, directed index, then the directed set of each full
 * JID in ARGV (same order). Deletes them and removes exactly those index
 * members: a resource that added directed presence since the caller read the
 * index keeps it (account deletion closes its streams anyway).
 */
export const presenceDeleteAll = script('presenceDeleteAll', -1, `
redis.call('DEL', KEYS[1])
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
for i = 1, #ARGV do redis.call('SREM', KEYS[2], ARGV[i]) end
return 1
`);

/**
 * KEYS: group zset. ARGV: member, ttlMs. Expiry in the Redis server's clock
 * (TIME); expired members are pruned on the way. → the server's now in ms
 */
export const groupJoin = script('groupJoin', 1, `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now
`);

/** KEYS: group zset. Prunes members whose expiry (server clock) has passed. → the live members */
export const groupMembers = script('groupMembers', 1, `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`);

/**
 * KEYS: epoch hash. ARGV: a fresh id, the id this client saw last ('' =
 * none). Creates the epoch when absent (a new Redis, or one that lost its
 * data); marks it `lost` when the client had seen another one, so every
 * process learns that the live state is being re-recorded. Times in the
 * server's clock. → { id, age in ms, lost 1/0 }
 */
export const epoch = script('epoch', 1, `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  id = ARGV[1]
  redis.call('HSET', KEYS[1], 'id', id, 'at', now)
end
if ARGV[2] ~= '' and ARGV[2] ~= id then redis.call('HSET', KEYS[1], 'lost', '1') end
local at = tonumber(redis.call('HGET', KEYS[1], 'at')) or now
local lost = redis.call('HGET', KEYS[1], 'lost')
return { id, now - at, lost and 1 or 0 }
`);
