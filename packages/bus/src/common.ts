import { BusError } from './errors.js';
import type { BusLogger } from './logger.js';
import type { BusStatus } from './types.js';

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

/**
 * The onStatus() listeners of one bus. Both buses keep theirs here, so that
 * adding, removing and a throwing listener behave the same in both.
 */
export class StatusListeners {
  private readonly listeners = new Set<(s: BusStatus) => void>();

  constructor(private readonly logger: BusLogger) {}

  /** Bus.onStatus(): returns the function that removes the listener. */
  add(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** A listener that throws is logged; the bus goes on and the other listeners still hear of it. */
  emit(status: BusStatus): void {
    for (const l of this.listeners) {
      try {
        l(status);
      } catch (err) {
        this.logger.warn({ err, status }, 'bus status listener failed');
      }
    }
  }
}

/**
 * Resolves true when `work` settles within `ms`, false when the time runs out
 * first (work goes on, no longer awaited); rejects if `work` rejects in time.
 * close() uses it so that a handler that never finishes cannot hang shutdown.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
