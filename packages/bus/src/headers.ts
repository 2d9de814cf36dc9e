import { TRACE_HEADER, currentTrace } from './trace.js';
import { BusError } from './errors.js';
import type { Headers } from './types.js';

/**
 * Header rules shared by both implementations. They are those NATS headers
 * impose (RFC 822 style): names of printable ASCII except ':', values without
 * CR or LF, surrounding whitespace of values dropped. The in-process bus
 * applies them too so that a header that works in one-process mode cannot fail
 * in a cluster.
 *
 * Delivered headers are frozen: one message may reach several subscribers, and
 * a handler that wants to forward with changes copies them
 * (`{ ...msg.headers, hop: '2' }`).
 */
export const EMPTY_HEADERS: Readonly<Headers> = Object.freeze({});

const VALID_NAME = /^[!-9;-~]+$/;

export function normalizeHeaders(subject: string, h: Headers | undefined): Readonly<Headers> {
  const trace = currentTrace();
  if (trace !== undefined && h?.[TRACE_HEADER] === undefined) h = { ...h, [TRACE_HEADER]: trace };
  if (h === undefined) return EMPTY_HEADERS;
  let out: Headers | undefined;
  for (const k in h) {
    if (!Object.prototype.hasOwnProperty.call(h, k)) continue;
    const v = h[k];
    if (typeof v !== 'string') throw new BusError(`header '${k}' must be a string`, subject);
    if (!VALID_NAME.test(k)) throw new BusError(`invalid header name '${k}'`, subject);
    if (v.includes('\r') || v.includes('\n')) throw new BusError(`header '${k}' contains CR or LF`, subject);
    (out ??= {})[k] = v.trim();
  }
  return out === undefined ? EMPTY_HEADERS : Object.freeze(out);
}
