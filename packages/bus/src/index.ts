/**
 * @hyphae/bus — how services exchange stanzas. Two implementations of one
 * interface: in-process (one-process mode) and NATS (cluster mode). One
 * contract test suite runs against both.
 */
export type { Bus, BusMessage, BusHandler, Headers, Subscription, SubscribeOptions, RequestOptions, BusStatus } from './types.js';
export { BusError, NoRespondersError, BusTimeoutError, BusClosedError } from './errors.js';
export { createMemoryBus } from './memory.js';
export type { MemoryBusOptions } from './memory.js';
export type { BusLogger } from './logger.js';
export { connectNatsBus } from './nats.js';
export type { NatsBusOptions } from './nats.js';
export { TRACE_HEADER, currentTrace, runWithTrace, newTraceId } from './trace.js';
