/**
 * Stores on Redis (cluster mode).
 *
 * Key scheme (P = prefix, default "hy"; {…} is the Redis Cluster hash tag,
 * its content escaped by tag(): % { } → %25 %7B %7D):
 *
 * | key                   | type   | content                                              |
 * |-----------------------|--------|------------------------------------------------------|
 * | P:acct:{domain}:user  | hash   | username, domain, credentials (JSON), createdAt (ms) |
 * | P:accts:{domain}      | zset   | usernames of the domain, all score 0 (lex order)     |
 * | P:sess:{bare}         | hash   | resource → SessionEntry JSON                         |
 * | P:node:{node}:sess    | set    | JSON [bare, resource, sessionId] per session on node |
 * | P:sessnodes           | set    | nodes that may have a session index (for count())    |
 * | P:nodes               | zset   | node → expiresAt, ms in the Redis server's clock      |
 * | P:lease:{name}        | string | holder, with PX = lease TTL                          |
 * | P:roster:{bare}       | hash   | contact bare JID → RosterItem JSON                   |
 * | P:rosterver:{bare}    | string | roster version (INCR with every change; absent = 0)  |
 * | P:offline:{bare}      | list   | offline stanzas, oldest first (RPUSH, capped)        |
 * | P:pendin:{bare}       | hash   | contact bare JID → pending-in subscribe stanza       |
 * | P:dir:{bare}:resource | set    | directed presence targets of full JID bare/resource  |
 * | P:dirs:{bare}         | set    | full JIDs of bare that have a P:dir set (deleteAll)  |
 * | P:group:{group}       | zset   | member → expiresAt, ms in the Redis server's clock   |
 * | P:epoch               | hash   | id, at (server ms), lost: the live state's generation |
 * | P:room:{room}         | hash   | meta (RoomMeta JSON), subject                        |
 * | P:roomaff:{room}      | hash   | bare JID → RoomAffiliation JSON                      |
 * | P:roomocc:{room}      | hash   | nick → occupant JSON                                 |
 * | P:roomhist:{room}     | list   | history entries, oldest first (RPUSH+LTRIM, MULTI)   |
 * | P:rooms:{domain}      | zset   | room JIDs of the service domain, score 0 (lex order) |
 * | P:pubrooms:{domain}   | zset   | the public ones among them, score 0                  |
 * | P:roomnames:{domain}  | hash   | room JID → room name                                 |
 * | P:owned:{bare}        | set    | rooms where bare may be owner (checked on read)      |
 * | P:kv:N:{owner}        | string | module keyval N (module-storage.ts): value JSON      |
 * | P:map:N:{owner}       | hash   | module map N: key → value JSON                       |
 * | P:arch:N:{owner}      | zset   | archive N: item ids, score 0 (lex order = id order)  |
 * | P:archw:N:{owner}     | zset   | archive N by peer: `<len>:<with><id>`, score 0       |
 * | P:archd:N:{owner}     | hash   | archive N: `<id>w` → with, `<id>d` → data            |
 * | P:archlast:N:{owner}  | string | archive N: the last id assigned                      |
 * | P:archowners:{N}      | zset   | owners with an archive N, score 0 (see redis-archive)|
 *
 * Atomicity: every multi-key write touches keys of one hash tag in one Lua
 * script or MULTI (account + its domain's zset; a bare JID's hash; a roster
 * and its version; a directed set and its index; a room's keys; a domain's
 * room listing). A room's listing and its owners' index entries are in
 * other slots, kept right by write ordering (see RedisRoomStore). Leases
 * (P:lease) are shared by SessionStore.lease() and
 * CoordinationStore.acquire(). The node index is in another slot and is
 * kept right by write ordering (see RedisSessionStore). Time: heartbeats
 * use the server's TIME and leases its PX expiry, so node clocks never
 * decide who is dead.
 *
 * Failure behaviour: ioredis reconnects forever and queues commands while
 * disconnected; each command fails with a StoreError after
 * commandTimeoutMs instead of hanging. A StoreError means "outcome
 * unknown": a command queued while disconnected may still run once Redis is
 * back (the queue keeps it), and one in flight at the drop may have run. So
 * a caller that got a StoreError from bind should unbind that session
 * (queued behind it on the same connection, so it runs after).
 */
import { Redis } from 'ioredis';
import { redisKeys } from './redis-keys.js';
import { RedisAccountStore } from './redis-accounts.js';
import { RedisCoordinationStore } from './redis-coordination.js';
import { RedisModuleStorage } from './redis-module-storage.js';
import { RedisOfflineStore } from './redis-offline.js';
import { RedisPresenceStore } from './redis-presence.js';
import { RedisRoomStore } from './redis-rooms.js';
import { RedisRosterStore } from './redis-rosters.js';
import { RedisSessionStore } from './redis-sessions.js';
import type { Guard } from './redis-scripts.js';
import { StoreError, type Stores } from './types.js';

export interface RedisStoreOptions {
  /** e.g. redis://:password@redis:6379/0 (rediss:// for TLS) */
  url: string;
  /** Key prefix; lets several deployments (or test runs) share one Redis. Default 'hy'. */
  prefix?: string;
  logger?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** A command not answered within this fails with a StoreError. Default 5000. */
  commandTimeoutMs?: number;
  /** How long openRedisStores waits for the first connection. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * How long after a loss of the live state (Redis restarted empty or
   * flushed) it counts as being re-recorded (StoreEpoch.recovering): every
   * live c2s node re-records its sessions on its next heartbeat, so
   * sm.nodeTtlMs bounds it. Default 5000 (sm.nodeTtlMs's default).
   */
  recoveryMs?: number;
}

/**
 * Reconnect backoff: quick first retries (a Redis restart or failover takes
 * a moment), capped at 500 ms so a Redis that is back is noticed within
 * half a second (readiness flips back quickly), at the cost of two cheap
 * connect attempts per second per connection during an outage.
 */
function retryDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt - 1, 4), 500);
}

/**
 * Connects to Redis (waiting up to connectTimeoutMs for the first
 * connection, else a StoreError: a misconfigured URL should fail the boot,
 * not a readiness probe minutes later) and returns the stores on it.
 */
export async function openRedisStores(opts: RedisStoreOptions): Promise<Stores> {
  const prefix = opts.prefix ?? 'hy';
  if (!prefix || /[{}]/.test(prefix)) throw new StoreError(`invalid Redis key prefix ${JSON.stringify(prefix)}: must be non-empty, without braces`);
  const commandTimeout = opts.commandTimeoutMs ?? 5_000;
  const connectTimeout = opts.connectTimeoutMs ?? 10_000;
  const logger = opts.logger;
  const where = redactUrl(opts.url);

  const redis = new Redis(opts.url, {
    lazyConnect: true,
    enableOfflineQueue: true,
    commandTimeout,
    // null: queued commands are not flushed after N reconnect attempts;
    // commandTimeout alone bounds how long a caller waits.
    maxRetriesPerRequest: null,
    // A command already sent when the connection dropped may or may not have
    // run. Resending it could run it twice: a create would then report
    // "exists" for the account it just made, a bind would report itself as
    // the session it replaced. So it fails (after commandTimeout) with a
    // StoreError meaning "outcome unknown"; never-sent queued commands still
    // run after the reconnect.
    autoResendUnfulfilledCommands: false,
    retryStrategy: retryDelay,
    connectTimeout: Math.min(connectTimeout, 10_000),
    keepAlive: 10_000,
  });

  // Log an outage once, not once per reconnect attempt.
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger?.warn({ err, redis: where }, 'redis store: connection lost, reconnecting (commands queue and time out)');
  });
  // Set once the stores exist: read the epoch as soon as the connection is back,
  // so a Redis that came back empty is marked as such before anyone relies on it.
  let onRestored: () => void = () => undefined;
  // A quick restart may bring the connection back without any 'error'.
  let dropped = false;
  redis.on('close', () => {
    dropped = true;
  });
  redis.on('ready', () => {
    if (dropped) {
      dropped = false;
      onRestored();
    }
    if (!down) return;
    down = false;
    logger?.info?.({ redis: where }, 'redis store: connection restored');
  });

  try {
    await withTimeout(redis.connect(), connectTimeout, `no connection within ${connectTimeout} ms`);
  } catch (err) {
    redis.disconnect();
    throw new StoreError(`cannot connect to Redis at ${where}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }

  const guard: Guard = async (op, fn) => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`redis store: ${op} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  };
  const keys = redisKeys(prefix);
  const warn = (obj: object, msg: string): void => logger?.warn(obj, msg);
  let closed = false;
  const coordination = new RedisCoordinationStore(redis, keys, guard, opts.recoveryMs ?? 5_000);
  await coordination.epoch().catch(() => undefined);
  onRestored = () => {
    const before = coordination.lastSeen;
    coordination.epoch().then(
      (e) => {
        if (before !== '' && e.id !== before) logger?.warn({ redis: where, epoch: e.id, ageMs: e.ageMs }, 'redis store: Redis came back without its live state (a new epoch); its owners re-record it');
      },
      () => undefined,
    );
  };

  return {
    kind: 'redis',
    accounts: new RedisAccountStore(redis, keys, guard),
    sessions: new RedisSessionStore(redis, keys, guard, warn),
    rosters: new RedisRosterStore(redis, keys, guard),
    offline: new RedisOfflineStore(redis, keys, guard),
    presence: new RedisPresenceStore(redis, keys, guard),
    rooms: new RedisRoomStore(redis, keys, guard),
    coordination,
    storage: new RedisModuleStorage(redis, keys, guard),
    isReady: () => !closed && redis.status === 'ready',
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      // QUIT lets queued replies arrive; if Redis is unreachable it would
      // wait out the command timeout, so just drop the socket instead.
      if (redis.status === 'ready') {
        try {
          await redis.quit();
          return;
        } catch {
          // fall through
        }
      }
      redis.disconnect();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, msg: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(msg)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The URL without its password, for logs and error messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable Redis URL)';
  }
}
