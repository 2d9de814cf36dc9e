/**
 * @hyphae/store — domain stores behind narrow interfaces: accounts, rosters,
 * offline queues and pending-in subscriptions (durable), the session
 * registry, directed presence and service coordination (live state); and
 * generic module storage (keyval, map, archive) that feature modules open
 * by name (`stores.storage`, module-storage.ts).
 * Embedded (LMDB on disk + memory) and Redis implementations share one
 * contract test suite.
 */
export type {
  Account, StoredCredentials, AccountStore, SessionEntry, SessionPatch, BoundSession, SessionStore, NodeInfo, Stores,
  SubscriptionState, RosterItem, Roster, RosterStore, OfflineStore, PresenceStore, CoordinationStore, StoreEpoch,
  RoomAffiliationKind, RoomAffiliation, RoomMeta, StoredRoom, RoomListing, RoomStore,
} from './types.js';
export { StoreError } from './types.js';
export { EpochWatch } from './epoch.js';
export type {
  StoredValue, KeyValStore, MapStore, ArchiveItem, ArchiveQuery, ArchivePage, ArchiveStore, ModuleStorage,
} from './module-storage.js';
export { ArchiveIdNotFoundError } from './module-storage.js';
export { openEmbeddedStores } from './embedded.js';
export type { EmbeddedStoreOptions } from './embedded.js';
export { openRedisStores } from './redis.js';
export type { RedisStoreOptions } from './redis.js';
