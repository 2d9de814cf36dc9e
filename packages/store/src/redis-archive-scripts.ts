import { createHash } from 'node:crypto';
import type { Script } from './redis-scripts.js';

/**
 * The Lua scripts of the Redis archive (redis-archive.ts). KEYS are always
 * keys of one owner's archive, all tagged by the owner: one Cluster slot.
 *
 * An id is '%012x%04x' of (ms, sequence in that ms) — the same rule as
 * nextId() in module-storage-util.ts. A `with` index member is
 * `<byte length of W>:<W><id>`: the length prefix makes `<len>:<W>` a prefix
 * of exactly W's members, so a peer's items are one lex range.
 */
function script(name: string, keys: number, source: string): Script {
  return { name, keys, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** The with-index members of item `id` with peer `w`: W's, and its bare JID's when W is a full JID. */
const WITH_MEMBERS = `
local function members(w, id)
  local m = { #w .. ':' .. w .. id }
  local slash = string.find(w, '/', 1, true)
  if slash then
    local bare = string.sub(w, 1, slash - 1)
    m[2] = #bare .. ':' .. bare .. id
  end
  return m
end
`;

/**
 * KEYS: items zset, with-index zset, data hash, last id. ARGV: time in ms
 * ('' = the Redis server's clock), with, data. The id is at `time` unless
 * that would not be after the last id; then the last id's ms, next sequence.
 * → the id
 */
export const append = script('archiveAppend', 4, `${WITH_MEMBERS}
local t
if ARGV[1] == '' then
  local now = redis.call('TIME')
  t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
else
  t = tonumber(ARGV[1])
end
local ms, seq = t, 0
local last = redis.call('GET', KEYS[4])
if last and string.len(last) == 16 then
  local lms = tonumber(string.sub(last, 1, 12), 16)
  if t <= lms then
    local lseq = tonumber(string.sub(last, 13, 16), 16)
    if lseq < 65535 then ms = lms; seq = lseq + 1 else ms = lms + 1; seq = 0 end
  end
end
local id = string.format('%012x%04x', ms, seq)
redis.call('SET', KEYS[4], id)
redis.call('ZADD', KEYS[1], 0, id)
for _, m in ipairs(members(ARGV[2], id)) do redis.call('ZADD', KEYS[2], 0, m) end
redis.call('HSET', KEYS[3], id .. 'w', ARGV[2], id .. 'd', ARGV[3])
return id
`);

/**
 * KEYS: the zset to page (items, or the with-index), items zset, data hash.
 * ARGV: after id ('' = none), before id ('' = none), filter min, filter max,
 * page min, page max (lex bounds), limit, '1' = backward, member prefix length.
 * → { 0, missing id } when after/before names no item, else
 *   { 1, count of the filter range, id, with, data, … } (backward: newest first)
 */
export const query = script('archiveQuery', 3, `
for i = 1, 2 do
  if ARGV[i] ~= '' and not redis.call('ZSCORE', KEYS[2], ARGV[i]) then return { 0, ARGV[i] } end
end
local out = { 1, redis.call('ZLEXCOUNT', KEYS[1], ARGV[3], ARGV[4]) }
local limit = tonumber(ARGV[7])
if limit == 0 then return out end
local page
if ARGV[8] == '1' then
  page = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[6], ARGV[5], 'LIMIT', 0, limit)
else
  page = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[5], ARGV[6], 'LIMIT', 0, limit)
end
local skip = tonumber(ARGV[9])
for _, m in ipairs(page) do
  local id = string.sub(m, skip + 1)
  local v = redis.call('HMGET', KEYS[3], id .. 'w', id .. 'd')
  out[#out + 1] = id
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
end
return out
`);

/**
 * KEYS: items zset, with-index zset, data hash. ARGV: smallest id kept by
 * age ('' = no age rule), keep ('' = no count rule), batch. Deletes the
 * oldest items the rules name, at most `batch` (the caller loops: one
 * script never blocks Redis for long). → how many were deleted
 */
export const prune = script('archivePrune', 3, `${WITH_MEMBERS}
local n = 0
if ARGV[1] ~= '' then n = redis.call('ZLEXCOUNT', KEYS[1], '-', '(' .. ARGV[1]) end
if ARGV[2] ~= '' then
  local k = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
  if k > n then n = k end
end
if n > tonumber(ARGV[3]) then n = tonumber(ARGV[3]) end
if n <= 0 then return 0 end
local ids = redis.call('ZRANGE', KEYS[1], 0, n - 1)
for _, id in ipairs(ids) do
  local w = redis.call('HGET', KEYS[3], id .. 'w')
  if w then
    for _, m in ipairs(members(w, id)) do redis.call('ZREM', KEYS[2], m) end
  end
  redis.call('HDEL', KEYS[3], id .. 'w', id .. 'd')
  redis.call('ZREM', KEYS[1], id)
end
return #ids
`);
