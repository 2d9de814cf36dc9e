import type { ModuleStorage } from './module-storage.js';

/** Per-mechanism salted SCRAM keys, as produced by @hyphae/sasl (opaque here). */
export type StoredCredentials = Record<string, { salt: string; iterations: number; storedKey: string; serverKey: string }>;

export interface Account {
  /** Prepared localpart (RFC 7622). */
  username: string;
  /** Prepared domainpart. */
  domain: string;
  credentials: StoredCredentials;
  /** ms since epoch */
  createdAt: number;
}

export interface AccountStore {
  get(domain: string, username: string): Promise<Account | null>;
  /** Atomic: false (and nothing written) when the account exists already. */
  create(account: Account): Promise<boolean>;
  /** false when there is no such account. */
  setCredentials(domain: string, username: string, credentials: StoredCredentials): Promise<boolean>;
  /** false when there was no such account. */
  delete(domain: string, username: string): Promise<boolean>;
  /** Usernames of the domain, sorted. */
  list(domain: string): Promise<string[]>;
}

/** One bound resource of a bare JID. */
export interface SessionEntry {
  resource: string;
  /** Unique per stream, never reused (e.g. random 16 bytes hex). */
  sessionId: string;
  /** The c2s node holding the stream. */
  node: string;
  /** RFC 6121 presence priority, -128..127; 0 before any presence. */
  priority: number;
  /** Has sent available presence (initial presence done and not since unavailable). */
  available: boolean;
  /** ms since epoch */
  boundAt: number;
  /** The session's last broadcast available presence, serialized (for probes, RFC 6121 §4.3.2). */
  presence?: string;
  /**
   * Flags modules set on the session for every router to see (e.g.
   * 'carbons': XEP-0280 copies wanted), sorted; absent when none.
   */
  flags?: string[];
}

/**
 * What a session may change in its registry entry: its presence, and its
 * module flags (`flags` replaces the whole set; [] clears it).
 */
export type SessionPatch = Partial<Pick<SessionEntry, 'priority' | 'available' | 'presence' | 'flags'>>;

export interface BoundSession extends SessionEntry {
  /** Bare JID string (prepared). */
  bare: string;
}

export interface NodeInfo {
  node: string;
  /** ms since epoch after which the node counts as dead unless it heartbeats again. */
  expiresAt: number;
}

/**
 * The session registry. Keys are prepared bare JID strings and resources.
 * Every mutation is atomic per bare JID.
 */
export interface SessionStore {
  /**
   * Records `entry` for (bare, entry.resource) and indexes it under entry.node.
   * Returns the entry it replaced (a resource conflict, RFC 6120 §7.7.2.2), or null.
   */
  bind(bare: string, entry: SessionEntry): Promise<SessionEntry | null>;
  /** Removes (bare, resource) only if it still holds `sessionId`; true when removed. */
  unbind(bare: string, resource: string, sessionId: string): Promise<boolean>;
  /** Patches priority/availability only if (bare, resource) still holds `sessionId`. */
  update(bare: string, resource: string, sessionId: string, patch: SessionPatch): Promise<boolean>;
  get(bare: string, resource: string): Promise<SessionEntry | null>;
  /** All resources of a bare JID, in no particular order. */
  list(bare: string): Promise<SessionEntry[]>;
  /** Marks `node` alive for ttlMs from now (store clock). */
  heartbeat(node: string, ttlMs: number): Promise<void>;
  /** Every node that has heartbeated and not been purged, expired or not. */
  nodes(): Promise<NodeInfo[]>;
  /** Sessions indexed under `node`. */
  sessionsOf(node: string): Promise<BoundSession[]>;
  /**
   * Forgets `node` and removes each of its sessions (those still held by it),
   * returning what was removed. Idempotent.
   */
  purgeNode(node: string): Promise<BoundSession[]>;
  /**
   * Acquires or renews a named lease for `holder` (true), or reports it is held
   * by someone else (false). Used to elect the one instance that reaps.
   */
  lease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Total bound sessions (for metrics). */
  count(): Promise<number>;
}

/** RFC 6121 §2.1.2.5 subscription attribute values kept in a roster. */
export type SubscriptionState = 'none' | 'to' | 'from' | 'both';

/** One roster item (RFC 6121 §2.1.2) plus the server-side subscription flags. */
export interface RosterItem {
  /** Prepared bare JID of the contact. */
  jid: string;
  /** Display name; absent when the client set none. */
  name?: string;
  /** Group names, in the order the client gave them, without duplicates. */
  groups: string[];
  subscription: SubscriptionState;
  /** Pending-out: the user asked for the contact's presence (`ask='subscribe'`). */
  ask: boolean;
  /** Pre-approved (RFC 6121 §3.4): a future inbound subscribe is approved at once. */
  approved: boolean;
}

export interface Roster {
  /** Bumped on every change; 0 for a user who never had a roster. */
  version: number;
  items: RosterItem[];
}

/** Rosters per bare JID (RFC 6121 §2). Every mutation bumps the version atomically. */
export interface RosterStore {
  get(bare: string): Promise<Roster>;
  getItem(bare: string, contact: string): Promise<RosterItem | null>;
  /** Writes or replaces the item for item.jid; returns the new version. */
  setItem(bare: string, item: RosterItem): Promise<number>;
  /** Removes the item; returns the new version, or null when there was none (version unchanged). */
  removeItem(bare: string, contact: string): Promise<number | null>;
  count(bare: string): Promise<number>;
  /** Forgets the whole roster (account deleted). */
  deleteAll(bare: string): Promise<void>;
}

/** Offline message queues (XEP-0160), stanzas serialized as received. */
export interface OfflineStore {
  /** Appends unless the queue already holds `cap` stanzas; false when full. Atomic. */
  push(bare: string, stanza: string, cap: number): Promise<boolean>;
  /** Removes and returns every stored stanza, oldest first. Atomic. */
  take(bare: string): Promise<string[]>;
  count(bare: string): Promise<number>;
  deleteAll(bare: string): Promise<void>;
}

/**
 * Presence state the roster service must not lose on failover.
 * - pending-in: inbound subscription requests not yet answered (RFC 6121
 *   §3.1.3), kept with the stanza to present again at the next login;
 * - directed presence (RFC 6121 §4.6): whom a full JID sent available
 *   presence to, outside its roster, so they get unavailable later.
 */
export interface PresenceStore {
  setPendingIn(bare: string, contact: string, stanza: string): Promise<void>;
  /** true when there was one. */
  removePendingIn(bare: string, contact: string): Promise<boolean>;
  hasPendingIn(bare: string, contact: string): Promise<boolean>;
  listPendingIn(bare: string): Promise<Array<{ contact: string; stanza: string }>>;
  addDirected(fullFrom: string, to: string): Promise<void>;
  removeDirected(fullFrom: string, to: string): Promise<void>;
  /** Removes and returns every target of `fullFrom` (when it goes unavailable). */
  takeDirected(fullFrom: string): Promise<string[]>;
  /** Forgets everything of the account (pending-in for it; directed of its resources). */
  deleteAll(bare: string): Promise<void>;
}

/**
 * One generation of the store's live state (session registry, node
 * heartbeats, leases, group memberships, room occupants). DESIGN.md: Redis
 * "may be lost at any moment: every process notices and re-records what it
 * owns within seconds". A Redis restarted without its data (or flushed)
 * starts a new epoch; processes compare its id with the one they saw before.
 */
export interface StoreEpoch {
  /** Names this generation; another id means the state was lost in between. */
  id: string;
  /** How long this generation has existed, in ms (store clock). */
  ageMs: number;
  /**
   * It replaced a generation some process had seen: the live state was lost
   * and its owners are re-recording it (false at the first start of a store).
   */
  afterLoss: boolean;
  /**
   * afterLoss and younger than the store's recovery window (every live
   * process re-records what it owns within it): a registry miss may be a
   * session not re-recorded yet.
   */
  recovering: boolean;
}

/**
 * Coordination of stateful service instances (DESIGN.md: shards owned by
 * exactly one live instance, leases renewed, rebalanced as instances come
 * and go). Times are in the store's clock.
 */
export interface CoordinationStore {
  /**
   * The current epoch of the store's live state (created on first use).
   * Cheap (one round trip); processes read it on their heartbeat or lease
   * round to notice a loss. The embedded store's never changes: its live
   * state lives and dies with the process.
   */
  epoch(): Promise<StoreEpoch>;
  /** Announces `member` alive in `group` for ttlMs (renew by calling again). */
  join(group: string, member: string, ttlMs: number): Promise<void>;
  leave(group: string, member: string): Promise<void>;
  /** Members whose announcement has not expired, sorted. */
  members(group: string): Promise<string[]>;
  /** Acquires or renews lease `name` for `holder`; false when someone else holds it. */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Releases lease `name` if `holder` holds it (graceful handover); true when released. */
  release(name: string, holder: string): Promise<boolean>;
  /** Current holder of each of `names` (null when free), same order. */
  holders(names: string[]): Promise<Array<string | null>>;
}

/** XEP-0045 §5.2 affiliations a room keeps (none = no record). */
export type RoomAffiliationKind = 'owner' | 'admin' | 'member' | 'outcast';

export interface RoomAffiliation {
  affiliation: RoomAffiliationKind;
  /** Reserved room nickname (XEP-0045 §7.10), if any. */
  nick?: string;
  /** Reason given when it was granted (kept for ban lists, §9.2). */
  reason?: string;
}

/** What the room index shows of a room without loading it (disco#items, XEP-0045 §6.3). */
export interface RoomMeta {
  /** The room's configuration, JSON owned by the muc service (opaque here). */
  config: string;
  /** Listed in the service's disco#items (muc#roomconfig_publicroom). */
  public: boolean;
  /** Natural-language room name (muc#roomconfig_roomname), '' when unset. */
  name: string;
  /** Survives the last occupant leaving and a restart (muc#roomconfig_persistentroom). */
  persistent: boolean;
  /** ms since epoch */
  createdAt: number;
}

/** Everything a room actor needs to take a room over. */
export interface StoredRoom {
  meta: RoomMeta;
  /** Bare JID (prepared) → affiliation; absent = none. */
  affiliations: Map<string, RoomAffiliation>;
  /** Current subject (JSON owned by the muc service), null when never set. */
  subject: string | null;
  /** Occupant key (the nick) → occupant JSON owned by the muc service. */
  occupants: Map<string, string>;
  /** Discussion history entries (JSON owned by the muc service), oldest first. */
  history: string[];
}

export interface RoomListing {
  /** Bare room JID. */
  room: string;
  name: string;
}

/**
 * Multi-user chat rooms (XEP-0045), keyed by bare room JID (prepared,
 * `room@service`). Only one room actor writes a room at a time (shard
 * ownership), so per-call atomicity is enough. Occupants are live state:
 * the embedded backend keeps them in memory (a restart ends every session
 * anyway); Redis keeps them so another instance can take the room over.
 */
export interface RoomStore {
  /** The whole room, or null when it does not exist. */
  load(room: string): Promise<StoredRoom | null>;
  /** Creates the room or replaces its meta; (re)indexes it under its domain for list(). */
  putMeta(room: string, meta: RoomMeta): Promise<void>;
  /** Sets (or with null removes) the affiliation of `jid`; keeps the owner index of ownedBy(). */
  setAffiliation(room: string, jid: string, aff: RoomAffiliation | null): Promise<void>;
  setSubject(room: string, subject: string | null): Promise<void>;
  putOccupant(room: string, nick: string, occupant: string): Promise<void>;
  removeOccupant(room: string, nick: string): Promise<void>;
  /** Appends a history entry and keeps only the newest `max` (max 0 empties the history). */
  pushHistory(room: string, entry: string, max: number): Promise<void>;
  /** Keeps only the newest `max` entries (the room's history length was lowered). */
  trimHistory(room: string, max: number): Promise<void>;
  /** Removes everything of the room: meta, index entry, affiliations (and the owner index), subject, occupants, history. */
  destroy(room: string): Promise<void>;
  /**
   * Rooms of service domain `domain` in room JID code point order, after
   * `after` (exclusive) when given, at most `max`; `count` is the total
   * (XEP-0059 result set management). Only public rooms with publicOnly.
   */
  list(domain: string, opts: { after?: string; max: number; publicOnly: boolean }): Promise<{ items: RoomListing[]; count: number }>;
  /** Rooms where `jid` (bare) is an owner, sorted (max-rooms-per-user limit). */
  ownedBy(jid: string): Promise<string[]>;
}

export interface Stores {
  readonly kind: 'embedded' | 'redis';
  accounts: AccountStore;
  sessions: SessionStore;
  rosters: RosterStore;
  offline: OfflineStore;
  presence: PresenceStore;
  rooms: RoomStore;
  coordination: CoordinationStore;
  /** Generic stores feature modules open by name (keyval, map, archive; see module-storage.ts). */
  readonly storage: ModuleStorage;
  /** For readiness: false while the backend is unreachable. */
  isReady(): boolean;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}
