/**
 * A trace id that follows a stanza across services (DESIGN.md: routing
 * metadata such as the trace id goes in headers). The edge starts one per
 * stanza with runWithTrace(); every publish/request made while it is current
 * carries it in the `hy-trace` header, and a subscriber's handler runs with
 * the id of the message it handles — so loggers (a mixin reading
 * currentTrace()) tag every line, in every process, with the same id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

export const TRACE_HEADER = 'hy-trace';

const storage = new AsyncLocalStorage<string>();
const prefix = randomBytes(4).toString('hex');
let seq = 0;

/** A new id, unique across processes: a random per-process prefix and a counter. */
export function newTraceId(): string {
  seq = (seq + 1) >>> 0;
  return `${prefix}${seq.toString(16).padStart(8, '0')}`;
}

export function currentTrace(): string | undefined {
  return storage.getStore();
}

/** Runs `fn` with `id` as the current trace, or with none when id is undefined (no stale id leaks in). */
export function runWithTrace<T>(id: string | undefined, fn: () => T): T {
  return id === undefined ? storage.exit(fn) : storage.run(id, fn);
}
