/**
 * @hyphae/actor — stateful services as sharded actors (DESIGN.md "Messages on
 * the bus"): keys (bare JIDs) hash to S shards; each shard is owned by exactly
 * one live instance at a time through leases in the store, renewed and
 * rebalanced as instances come and go; within an instance a mailbox per key
 * runs that key's messages one at a time, in order.
 */
export { shardOf, actorSubject, DEFAULT_SHARDS } from './shard.js';
export { KeyedMailbox } from './mailbox.js';
export { startShardedService } from './service.js';
export type { ShardedServiceOptions, ShardedService, ActorHandler } from './service.js';
export { requestWithRetry } from './retry.js';
export type { RetryOptions } from './retry.js';
/** Reply header of an owner that accepted a request but lost the shard before handling it, or refused it (requestWithRetry resends). */
export { MOVED_HEADER, MOVED_VALUE, BUSY_VALUE, TIMEOUT_HEADER } from './protocol.js';
export { ActorBusyError } from './errors.js';
