import { BusError } from './errors.js';

/** RequestOptions.timeoutMs default (types.ts documents it). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/**
 * close() waits this long for handlers to finish queued messages. A handler
 * stuck on a promise that never settles must not make shutdown hang (SIGTERM
 * drains, and Kubernetes kills the pod after its grace period anyway).
 */
export const DRAIN_TIMEOUT_MS = 10_000;

export function checkTimeout(subject: string, ms: number): number {
  // NATS rejects timeouts below 1 ms; both buses do, so they behave alike.
  if (!Number.isFinite(ms) || ms < 1) throw new BusError(`invalid request timeout ${ms} ms`, subject);
  return ms;
}
