/**
 * @hyphae/router — stanza routing and the server's own protocol modules.
 * Used by every edge (c2s now, s2s later).
 */
export { Router } from './router.js';
export { SessionCache, announceSessionChanges } from './session-cache.js';
export type { SessionChange } from './session-cache.js';
export type { RouterOptions, LocalSessions } from './router.js';
export { ModuleTable } from './modules.js';
export type { ServerModule, IqRoute, IqHandler, IqRequest, IqTarget, IqReply, Spec } from './types.js';
export { H, c2sSubject, EVENTS, encodeEvent, decodeEvent } from './delivery.js';
export type { Ack, SessionEvent } from './delivery.js';
export { discoModule } from './modules/disco.js';
export type { DiscoItem, DiscoOptions } from './modules/disco.js';
export { pingModule } from './modules/ping.js';
export { versionModule } from './modules/version.js';
export { registerModule } from './modules/register.js';
export { extdiscoModule, parseExternalService, turnCredentials, NS_EXTDISCO, type ExtDiscoOptions, type ExtDiscoConfig, type ExternalService } from './modules/extdisco.js';
export type { RegisterModule, RegisterOptions } from './modules/register.js';
export { UserActors, USER_SUBJECT_PREFIX, OP_HEADER, RESULT_HEADER, SID_HEADER, notifySessionEnded } from './user-actor.js';
export type { UserOp, UserResult, SessionEndedEvent } from './user-actor.js';
export { MucRooms, MUC_SUBJECT_PREFIX } from './rooms.js';
export { QueueComponent, subdomainsOf, componentsFor, PROXY65_SUBJECT } from './components.js';
export type { Component, ComponentsConfig } from './components.js';
export { RemoteDomains, remoteFor, s2sSubject, S2S_SUBJECT_PREFIX, S2S_HEADERS } from './remote.js';
export type { S2sResult, RemoteFailure, RemoteConfig } from './remote.js';
