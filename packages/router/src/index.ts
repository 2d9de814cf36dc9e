/**
 * @hyphae/router — stanza routing (RFC 6120 §10, RFC 6121 §8.5), run by every
 * service with the process's module registry.
 */
export { Router } from './router.js';
export { SessionCache, announceSessionChanges } from './session-cache.js';
export type { SessionChange } from './session-cache.js';
export type { RouterOptions, LocalSessions } from './router.js';
export type { IqRoute, IqHandler, IqRequest, IqTarget, IqReply, Spec } from './types.js';
export { H, c2sSubject, EVENTS, encodeEvent, decodeEvent } from './delivery.js';
export type { Ack, SessionEvent } from './delivery.js';
export { UserActors, USER_SUBJECT_PREFIX, OP_HEADER, RESULT_HEADER, SID_HEADER, notifySessionEnded } from './user-actor.js';
export type { UserOp, UserResult, SessionEndedEvent } from './user-actor.js';
export { MucRooms, MUC_SUBJECT_PREFIX } from './rooms.js';
export { QueueComponent, subdomainsOf, componentsFor, PROXY65_SUBJECT } from './components.js';
export type { Component, ComponentsConfig } from './components.js';
export { RemoteDomains, remoteFor, s2sSubject, S2S_SUBJECT_PREFIX, S2S_HEADERS } from './remote.js';
export type { S2sResult, RemoteFailure, RemoteConfig } from './remote.js';
export { DeadNodes } from './dead-nodes.js';
export { NodeLanes } from './lanes.js';
export type { DeliveryMode, DeliveryOutcome, NodeLanesOptions } from './lanes.js';
export type { NodeUnreachable } from './dead-nodes.js';
