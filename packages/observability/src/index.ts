/** @hyphae/observability — JSON logs (pino), Prometheus metrics, health endpoints. */
export type { Logger } from 'pino';
export { createLogger } from './log.js';
export type { LoggerOptions } from './log.js';
export { createMetrics } from './metrics.js';
export type { Metrics } from './metrics.js';
export { startHttpServer } from './http.js';
export type { HttpServerOptions, HttpServerHandle, HealthCheck } from './http.js';
