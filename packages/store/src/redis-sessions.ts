import type { Redis } from 'ioredis';
import { indexMember, parseIndexMember, type RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard } from './redis-scripts.js';
import type { BoundSession, NodeInfo, SessionEntry, SessionPatch, SessionStore } from './types.js';
import { checkEntry, checkPresencePatch, checkPriority, copyEntry, normalizeFlags } from './validate.js';

/** How many commands a bulk read (sessionsOf, purgeNode, count) keeps in flight at once. */
const BATCH = 500;

type Warn = (obj: object, msg: string) => void;

/**
 * The session registry in Redis. The per-bare-JID hash is the truth and is
 * only changed by Lua scripts on that one key. The per-node index lives in
 * another slot, so it cannot join those scripts under Redis Cluster; it is
 * kept correct by ordering instead:
 *  - bind adds the index member BEFORE writing the session, so every live
 *    session is always findable from its node (a crash in between leaves a
 *    stale member, never an unindexed session);
 *  - unbind/replace/purge remove the member AFTER the session;
 *  - readers (sessionsOf, purgeNode) check each member against the hash by
 *    sessionId, so stale members are ignored, and purgeNode deletes them.
 */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
    private readonly warn: Warn,
  ) {}

  bind(bare: string, entry: SessionEntry): Promise<SessionEntry | null> {
    return this.guard('bind', async () => {
      checkEntry(entry);
      const e = copyEntry(entry);
      await Promise.all([
        this.redis.sadd(this.keys.nodeSessions(e.node), indexMember(bare, e.resource, e.sessionId)),
        this.redis.sadd(this.keys.sessionNodes, e.node),
      ]);
      const old = await lua.run(this.redis, lua.bind, [this.keys.sessions(bare)], [e.resource, JSON.stringify(e)]);
      if (typeof old !== 'string') return null;
      const prev = parseEntry(old);
      // Session ids are never reused, so finding our own id means this bind
      // already ran (a retry): nothing was replaced by this call.
      if (prev.sessionId === e.sessionId) return null;
      await this.unindex(bare, prev);
      return prev;
    });
  }

  unbind(bare: string, resource: string, sessionId: string): Promise<boolean> {
    return this.guard('unbind', async () => {
      const removed = await this.removeIf(bare, resource, sessionId, '');
      if (removed) await this.unindex(bare, removed);
      return removed !== null;
    });
  }

  update(
    bare: string,
    resource: string,
    sessionId: string,
    patch: SessionPatch,
  ): Promise<boolean> {
    return this.guard('update', async () => {
      if (patch.priority !== undefined) checkPriority(patch.priority);
      checkPresencePatch(patch.presence);
      const priority = patch.priority === undefined ? '' : String(patch.priority);
      const available = patch.available === undefined ? '' : patch.available ? '1' : '0';
      // presence: undefined keeps, '' clears, anything else replaces.
      const presenceMode = patch.presence === undefined ? '' : '1';
      // flags: sorted, deduplicated; an empty set is stored as none (cjson would write {} for []).
      const flags = patch.flags === undefined ? [] : normalizeFlags(patch.flags);
      const done = await lua.run(
        this.redis,
        lua.update,
        [this.keys.sessions(bare)],
        [resource, sessionId, priority, available, presenceMode, patch.presence ?? '',
          patch.flags === undefined ? '' : '1', flags.length === 0 ? '' : JSON.stringify(flags)],
      );
      return done === 1;
    });
  }

  get(bare: string, resource: string): Promise<SessionEntry | null> {
    return this.guard('get session', async () => {
      const v = await this.redis.hget(this.keys.sessions(bare), resource);
      return v === null ? null : parseEntry(v);
    });
  }

  list(bare: string): Promise<SessionEntry[]> {
    return this.guard('list sessions', async () => (await this.redis.hvals(this.keys.sessions(bare))).map(parseEntry));
  }

  heartbeat(node: string, ttlMs: number): Promise<void> {
    return this.guard('heartbeat', async () => {
      await lua.run(this.redis, lua.heartbeat, [this.keys.nodes], [node, Math.max(0, Math.round(ttlMs))]);
    });
  }

  /**
   * Expiry times are kept in the Redis clock; we return them shifted into this
   * process's clock (using Redis's "now" read in the same script), so a caller
   * comparing expiresAt with Date.now() is right whatever the skew. The
   * shift errs by at most the reply's one-way latency, towards "still alive".
   */
  nodes(): Promise<NodeInfo[]> {
    return this.guard('nodes', async () => {
      const [serverNow, flat] = (await lua.run(this.redis, lua.nodes, [this.keys.nodes], [])) as [number, string[]];
      const shift = Date.now() - Number(serverNow);
      const out: NodeInfo[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        out.push({ node: flat[i] as string, expiresAt: Number(flat[i + 1]) + shift });
      }
      return out;
    });
  }

  sessionsOf(node: string): Promise<BoundSession[]> {
    return this.guard('sessionsOf', async () => {
      const refs = (await this.redis.smembers(this.keys.nodeSessions(node))).map(parseIndexMember);
      const found = await inBatches(refs, async (ref) => {
        if (!ref) return null;
        const v = await this.redis.hget(this.keys.sessions(ref.bare), ref.resource);
        const e = v === null ? null : parseEntry(v);
        return e && e.sessionId === ref.sessionId && e.node === node ? { bare: ref.bare, ...e } : null;
      });
      return found.filter((s): s is BoundSession => s !== null);
    });
  }

  purgeNode(node: string): Promise<BoundSession[]> {
    return this.guard('purgeNode', async () => {
      const indexKey = this.keys.nodeSessions(node);
      const members = await this.redis.smembers(indexKey);
      const removed = await inBatches(members, async (m) => {
        const ref = parseIndexMember(m);
        if (!ref) return null;
        // Only if the slot still holds this node's session: one re-bound
        // elsewhere meanwhile has another sessionId and stays.
        const e = await this.removeIf(ref.bare, ref.resource, ref.sessionId, node);
        return e ? { bare: ref.bare, ...e } : null;
      });
      // SREM exactly what we processed (not DEL): a member added meanwhile
      // belongs to a bind we have not seen and must survive.
      for (let i = 0; i < members.length; i += BATCH) await this.redis.srem(indexKey, ...members.slice(i, i + BATCH));
      await this.redis.zrem(this.keys.nodes, node);
      if ((await this.redis.scard(indexKey)) === 0) await this.redis.srem(this.keys.sessionNodes, node);
      return removed.filter((s): s is BoundSession => s !== null);
    });
  }

  lease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.guard('lease', async () => {
      const held = await lua.run(this.redis, lua.lease, [this.keys.lease(name)], [holder, Math.max(1, Math.round(ttlMs))]);
      return held === 1;
    });
  }

  /**
   * Sum of the node indexes' sizes: O(nodes), not O(sessions). Exact in
   * normal operation; a process dying mid-bind/unbind can leave a stale
   * member counted until that node is purged. It is a metric, not a lock.
   */
  count(): Promise<number> {
    return this.guard('count', async () => {
      const nodes = await this.redis.smembers(this.keys.sessionNodes);
      const sizes = await inBatches(nodes, (n) => this.redis.scard(this.keys.nodeSessions(n)));
      return sizes.reduce((a, b) => a + b, 0);
    });
  }

  private async removeIf(bare: string, resource: string, sessionId: string, node: string): Promise<SessionEntry | null> {
    const v = await lua.run(this.redis, lua.removeIf, [this.keys.sessions(bare)], [resource, sessionId, node]);
    return typeof v === 'string' ? parseEntry(v) : null;
  }

  /**
   * Drops a replaced or removed session's index member. Best effort: the
   * session itself is already gone, so a failure here only leaves a stale
   * member that readers ignore and purgeNode cleans.
   */
  private async unindex(bare: string, e: SessionEntry): Promise<void> {
    try {
      await this.redis.srem(this.keys.nodeSessions(e.node), indexMember(bare, e.resource, e.sessionId));
    } catch (err) {
      this.warn({ err, bare, node: e.node }, 'redis store: could not drop a session index member (harmless, purge cleans it)');
    }
  }
}

/** Entries are written by us as JSON; Lua's cjson may reorder keys, so pick fields. */
function parseEntry(json: string): SessionEntry {
  return copyEntry(JSON.parse(json) as SessionEntry);
}

async function inBatches<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(...(await Promise.all(items.slice(i, i + BATCH).map(fn))));
  return out;
}
