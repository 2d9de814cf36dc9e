/**
 * @hyphae/admin — service administration: account operations and a status
 * report (usable in any process: they need only the bus, the stores and the
 * configuration), the admin HTTP API served on every process's http port
 * (or a loopback listener of its own),
 * and XEP-0050/XEP-0133 ad-hoc commands for the c2s node.
 */
export { AdminError, isAdminError, ADMIN_ERROR_CODES, type AdminErrorCode } from './errors.js';
export { createAdmin } from './ops.js';
export type { Admin, AdminDeps, OnlineUser, NodeStatus, ShardGroupStatus, ServiceStatus, DeleteResult } from './ops.js';
export { adminHttpHandler, authorize, isLoopback, hostAllowed, originAllowed, checkExposure, AdminConfigError, httpStatusOf, ADMIN_PREFIX, MAX_BODY_BYTES } from './http.js';
export type { AdminHttpOptions, HttpErrorCode, HttpErrorBody, AuthResult } from './http.js';
export { startAdminServer } from './server.js';
export type { AdminServer, AdminServerOptions } from './server.js';
export { adhoc, adhocInstance, NS_COMMANDS, NS_ADMIN, ADMIN_COMMANDS } from './adhoc.js';
export type { AdhocOptions } from './adhoc.js';
