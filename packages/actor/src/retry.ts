import { BusTimeoutError, NoRespondersError, type Bus, type BusMessage, type Headers } from '@hyphae/bus';
import { BUSY_VALUE, MOVED_HEADER, MOVED_VALUE, TIMEOUT_HEADER } from './protocol.js';
import { ActorBusyError } from './errors.js';

export interface RetryOptions {
  headers?: Headers;
  /** Per attempt; default 5000 ms. */
  timeoutMs?: number;
  /** How long to keep retrying "no responders" (a shard being handed over); default 15000 ms. */
  retryForMs?: number;
  /**
   * The message is idempotent: a timeout (the owner may have died with it in
   * hand) is retried too, within retryForMs. Default false.
   */
  idempotent?: boolean;
}

const FIRST_DELAY_MS = 50;
const MAX_DELAY_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A bus request for must-not-lose messages to sharded actors (DESIGN.md:
 * "senders … detect 'no responder' and retry during a handover").
 *
 * Retried: NoRespondersError (nobody subscribes to the shard right now: it is
 * between owners), a reply carrying `hy-actor: moved` (the owner lost the
 * shard while the message waited in its mailbox, so it was not handled) and
 * one carrying `hy-actor: busy` (the owner's mailboxes were full: refused
 * before anything ran). All mean "not handled, safe to send again". Backoff
 * 50 ms doubling to 1 s, until retryForMs has elapsed; then the last error is
 * thrown: a NoRespondersError (for "moved" too, so callers branch on one
 * class), or an ActorBusyError when the owner was still refusing.
 *
 * Every attempt tells the owner how long it is waited for (`hy-timeout`):
 * one that reaches the head of its mailbox later is not run (protocol.ts),
 * so a retry after a timeout does not add to the work of an owner that is
 * already behind.
 *
 * Not retried: BusTimeoutError (the message may have been handled — resending
 * could apply it twice) unless the caller says the message is idempotent,
 * BusClosedError and any other error: thrown at once.
 */
export async function requestWithRetry(bus: Bus, subject: string, data: Uint8Array, opts: RetryOptions = {}): Promise<BusMessage> {
  const retryForMs = opts.retryForMs ?? 15_000;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const reqOpts = { headers: { ...opts.headers, [TIMEOUT_HEADER]: String(timeoutMs) }, timeoutMs };
  const start = Date.now();
  let delay = FIRST_DELAY_MS;
  for (;;) {
    let last: NoRespondersError | BusTimeoutError | ActorBusyError;
    try {
      const reply = await bus.request(subject, data, reqOpts);
      const refused = reply.headers[MOVED_HEADER];
      if (refused !== MOVED_VALUE && refused !== BUSY_VALUE) return reply;
      last = refused === BUSY_VALUE ? new ActorBusyError(subject) : new NoRespondersError(subject);
    } catch (err) {
      const retryable = err instanceof NoRespondersError || (opts.idempotent === true && err instanceof BusTimeoutError);
      if (!retryable) throw err;
      last = err;
    }
    const left = retryForMs - (Date.now() - start);
    if (left <= 0) throw last;
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}
