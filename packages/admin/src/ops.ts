/**
 * The administration operations themselves. They need only the bus, the
 * stores and the configuration, so any process can run them — `hyphae all`,
 * a c2s node (XEP-0133 commands), or sm/roster/muc (the admin HTTP API).
 */
import type { HyphaeConfig } from '@hyphae/config';
import type { Bus, Headers } from '@hyphae/bus';
import type { Stores, BoundSession } from '@hyphae/store';
import type { Logger } from '@hyphae/observability';
import { JidError, parseJid, prepDomain, type JID } from '@hyphae/jid';
import { deriveCredentials, SaslPrepError } from '@hyphae/sasl';
import { H, c2sSubject, UserActors } from '@hyphae/router';
import { AdminError } from './errors.js';

export interface AdminDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger?: Logger;
  /** The process's user-actor client, if it has one (default: a new one on `bus`). */
  actors?: UserActors;
  now?: () => number;
}

/** One user with at least one bound session. */
export interface OnlineUser {
  /** Bare JID. */
  jid: string;
  /** Bound resources, sorted. */
  resources: string[];
}

/** One c2s node as its heartbeat shows it. */
export interface NodeStatus {
  node: string;
  /** ms since epoch (this process's clock) after which the node counts as dead. */
  expiresAt: number;
  alive: boolean;
}

/** Who owns the shards of one sharded service (roster or muc). */
export interface ShardGroupStatus {
  group: 'roster' | 'muc';
  /** Configured shard count. */
  shards: number;
  /** Instances announced alive in the group, sorted. */
  members: string[];
  /** Lease holders (`<group>:shard:<n>`) with how many shards each holds, sorted by holder. */
  owners: Array<{ holder: string; shards: number }>;
  /** Shards whose lease nobody holds right now (during a failover, or no instance running). */
  unowned: number;
}

export interface ServiceStatus {
  /** Node id of the process that answered. */
  answeredBy: string;
  /** ms since epoch when the status was taken. */
  time: number;
  store: Stores['kind'];
  bus: string;
  /** c2s nodes that heartbeat (not yet purged by sm), sorted by node id. */
  nodes: NodeStatus[];
  /** Bound sessions in the registry. */
  sessions: number;
  shards: { roster: ShardGroupStatus; muc: ShardGroupStatus | null };
  /** Registered accounts per served domain, in configuration order. */
  users: Array<{ domain: string; registered: number }>;
}

export interface DeleteResult {
  jid: string;
  /** Sessions that were told to close (stream error `<not-authorized/>`). */
  sessionsClosed: number;
}

export interface Admin {
  /** The served domains (prepared), in configuration order. */
  readonly domains: readonly string[];
  /** Creates an account; returns its prepared bare JID. @throws AdminError invalid-jid, unknown-domain, invalid-password, conflict */
  addUser(jid: string, password: string): Promise<string>;
  /** Replaces the account's credentials; returns its bare JID. @throws AdminError invalid-jid, unknown-domain, invalid-password, not-found */
  setPassword(jid: string, password: string): Promise<string>;
  /**
   * Deletes an account the way XEP-0077 cancellation does: the account goes,
   * the user's actor sends unavailable to contacts and forgets the roster,
   * offline messages and pending requests, then every session is closed
   * with `<not-authorized/>`. @throws AdminError invalid-jid, unknown-domain, not-found
   */
  deleteUser(jid: string): Promise<DeleteResult>;
  /** Bare JIDs of the domain's accounts, sorted. @throws AdminError unknown-domain */
  listUsers(domain: string): Promise<string[]>;
  /** Users with at least one bound session, of one domain or of all, sorted by JID. */
  onlineUsers(domain?: string): Promise<OnlineUser[]>;
  onlineUsersCount(domain?: string): Promise<number>;
  registeredUsersCount(domain?: string): Promise<number>;
  status(): Promise<ServiceStatus>;
  /** Validates and prepares a bare account JID of a served domain. @throws AdminError invalid-jid, unknown-domain */
  accountJid(jid: string): JID;
}

const EMPTY = new Uint8Array(0);

export function createAdmin(deps: AdminDeps): Admin {
  const { config, bus, stores } = deps;
  const log = deps.logger?.child({ component: 'admin' });
  const now = deps.now ?? Date.now;
  const actors = deps.actors ?? new UserActors(bus, config.roster.shards);
  const domains: readonly string[] = [...config.domains];
  const served = new Set(domains);

  const domainOf = (raw: string): string => {
    let d: string;
    try {
      d = prepDomain(raw.trim());
    } catch {
      throw new AdminError('unknown-domain', `'${raw}' is not a domain served here`);
    }
    if (!served.has(d)) throw new AdminError('unknown-domain', `'${d}' is not a domain served here (served: ${domains.join(', ')})`);
    return d;
  };

  const accountJid = (raw: string): JID => {
    let j: JID;
    try {
      j = parseJid(String(raw).trim());
    } catch (e) {
      if (e instanceof JidError) throw new AdminError('invalid-jid', `'${raw}' is not a valid JID: ${e.message}`, { cause: e });
      throw e;
    }
    if (j.local === '' || j.resource !== '') throw new AdminError('invalid-jid', `'${raw}' is not a bare account JID (user@domain)`);
    if (!served.has(j.domain)) throw new AdminError('unknown-domain', `'${j.domain}' is not a domain served here (served: ${domains.join(', ')})`);
    return j;
  };

  const credentials = async (password: string) => {
    try {
      return await deriveCredentials(password, { iterations: config.c2s.scramIterations });
    } catch (e) {
      if (e instanceof SaslPrepError) throw new AdminError('invalid-password', `that password is not allowed: ${e.message}`, { cause: e });
      throw e;
    }
  };

  /** Every bound session, read node by node from the registry. */
  const allSessions = async (): Promise<BoundSession[]> => {
    const out: BoundSession[] = [];
    for (const n of await stores.sessions.nodes()) out.push(...(await stores.sessions.sessionsOf(n.node)));
    return out;
  };

  const onlineUsers = async (domain?: string): Promise<OnlineUser[]> => {
    const d = domain === undefined ? null : domainOf(domain);
    const byBare = new Map<string, Set<string>>();
    for (const s of await allSessions()) {
      if (d !== null && s.bare.slice(s.bare.lastIndexOf('@') + 1) !== d) continue;
      let set = byBare.get(s.bare);
      if (!set) byBare.set(s.bare, (set = new Set()));
      set.add(s.resource);
    }
    return [...byBare].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([jid, r]) => ({ jid, resources: [...r].sort() }));
  };

  const listUsers = async (domain: string): Promise<string[]> => {
    const d = domainOf(domain);
    return (await stores.accounts.list(d)).map((u) => `${u}@${d}`);
  };

  const shardGroup = async (group: 'roster' | 'muc', shards: number): Promise<ShardGroupStatus> => {
    const [members, holders] = await Promise.all([
      stores.coordination.members(group),
      stores.coordination.holders(Array.from({ length: shards }, (_, n) => `${group}:shard:${n}`)),
    ]);
    const counts = new Map<string, number>();
    let unowned = 0;
    for (const h of holders) {
      if (h === null) unowned++;
      else counts.set(h, (counts.get(h) ?? 0) + 1);
    }
    const owners = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([holder, n]) => ({ holder, shards: n }));
    return { group, shards, members: [...members].sort(), owners, unowned };
  };

  return {
    domains,
    accountJid,

    async addUser(raw, password) {
      const j = accountJid(raw);
      const creds = await credentials(password);
      const created = await stores.accounts.create({ username: j.local, domain: j.domain, credentials: creds, createdAt: now() });
      if (!created) throw new AdminError('conflict', `${j.toBareString()} exists already`);
      log?.info({ jid: j.toBareString() }, 'account created by an administrator');
      return j.toBareString();
    },

    async setPassword(raw, password) {
      const j = accountJid(raw);
      const creds = await credentials(password);
      if (!(await stores.accounts.setCredentials(j.domain, j.local, creds))) throw new AdminError('not-found', `${j.toBareString()} does not exist`);
      log?.info({ jid: j.toBareString() }, 'password changed by an administrator');
      return j.toBareString();
    },

    async deleteUser(raw) {
      const j = accountJid(raw);
      const bare = j.toBareString();
      // The order of XEP-0077 cancellation (router's register module, c2s):
      // the account goes first (no new login can start), then the user's
      // actor tells contacts and forgets the user's data — before the
      // sessions close, so their session-end finds nothing left to do.
      if (!(await stores.accounts.delete(j.domain, j.local))) throw new AdminError('not-found', `${bare} does not exist`);
      try {
        await actors.send(j, 'account-deleted', EMPTY);
      } catch (err) {
        log?.warn({ err, bare }, 'could not clean up a deleted account');
      }
      // What Router.closeSessions does: a control message to each session's c2s node.
      const sessions = await stores.sessions.list(bare);
      for (const s of sessions) {
        const headers: Headers = { [H.sid]: s.sessionId, [H.kind]: 'control', [H.ctl]: 'close', [H.cond]: 'not-authorized', [H.text]: 'Account deleted' };
        bus.publish(c2sSubject(s.node), EMPTY, headers);
      }
      log?.info({ jid: bare, sessions: sessions.length }, 'account deleted by an administrator');
      return { jid: bare, sessionsClosed: sessions.length };
    },

    listUsers,
    onlineUsers,

    async onlineUsersCount(domain) {
      return (await onlineUsers(domain)).length;
    },

    async registeredUsersCount(domain) {
      const ds = domain === undefined ? domains : [domainOf(domain)];
      let n = 0;
      for (const d of ds) n += (await stores.accounts.list(d)).length;
      return n;
    },

    async status() {
      const t = now();
      const [nodes, sessions, roster, muc, users] = await Promise.all([
        stores.sessions.nodes(),
        stores.sessions.count(),
        shardGroup('roster', config.roster.shards),
        config.muc.enabled ? shardGroup('muc', config.muc.shards) : Promise.resolve(null),
        Promise.all(domains.map(async (d) => ({ domain: d, registered: (await stores.accounts.list(d)).length }))),
      ]);
      return {
        answeredBy: config.nodeId,
        time: t,
        store: stores.kind,
        bus: bus.kind,
        nodes: nodes
          .map((n) => ({ node: n.node, expiresAt: n.expiresAt, alive: n.expiresAt > t }))
          .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
        sessions,
        shards: { roster, muc },
        users,
      };
    },
  };
}
