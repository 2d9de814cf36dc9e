/**
 * @hyphae/store — domain stores behind narrow interfaces: accounts (durable)
 * and the session registry (routing state). Embedded (LMDB on disk + memory)
 * and Redis implementations share one contract test suite.
 */
export type {
  Account, StoredCredentials, AccountStore, SessionEntry, BoundSession, SessionStore, NodeInfo, Stores,
} from './types.js';
export { StoreError } from './types.js';
export { openEmbeddedStores } from './embedded.js';
export type { EmbeddedStoreOptions } from './embedded.js';
export { openRedisStores } from './redis.js';
export type { RedisStoreOptions } from './redis.js';
