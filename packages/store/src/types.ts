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
}

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
  update(bare: string, resource: string, sessionId: string, patch: Partial<Pick<SessionEntry, 'priority' | 'available'>>): Promise<boolean>;
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

export interface Stores {
  readonly kind: 'embedded' | 'redis';
  accounts: AccountStore;
  sessions: SessionStore;
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
