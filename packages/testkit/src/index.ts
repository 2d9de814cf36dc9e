/**
 * @hyphae/testkit — real servers for tests: nats-server and redis-server
 * spawned on random loopback ports, so tests can kill and restart them.
 */
export type { ServerProcess } from './process.js';
export { freePort, hasBinary, probeTcp, isRunning, exited } from './process.js';
export { startNats } from './nats.js';
export type { NatsOptions } from './nats.js';
export { startRedis } from './redis.js';
export type { RedisOptions } from './redis.js';
