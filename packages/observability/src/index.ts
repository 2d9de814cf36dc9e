/** @hyphae/observability — JSON logs (pino), Prometheus metrics, health endpoints. */
export type { Logger } from 'pino';
export type { Registry, Counter, Gauge, Histogram } from 'prom-client';
export { createLogger } from './log.js';
export type { LoggerOptions } from './log.js';
export { createMetrics, timed, LATENCY_BUCKETS } from './metrics.js';
export type { Metrics, MetricsOptions, Labels } from './metrics.js';
export { startHttpServer } from './http.js';
export type { HttpServerOptions, HttpServerHandle, HttpRouteHandler, HealthCheck } from './http.js';
export { instrumentMethods } from './instrument.js';
export { moduleCounter, moduleGauge } from './module-metrics.js';
export type { MetricSpec } from './module-metrics.js';
export { guardProcess, UNHANDLED_ERROR_MSG } from './process-guards.js';
export type { GuardedProcess, UnhandledKind } from './process-guards.js';
