import { Element } from 'ltx';
import { stanzaKind } from './kind.js';
import { NS } from './ns.js';
import { cloneElement, type StanzaError } from './stanza-error.js';

/**
 * Whether `stanza` may be answered with an error stanza.
 *
 * - RFC 6120 §8.3.1 rule 2: a stanza of type 'error' MUST NOT be answered
 *   with another error (that is how error loops between two entities start).
 * - RFC 6120 §8.2.3 rule 6: an IQ of type 'result' MUST NOT be answered with
 *   a further 'result' or 'error' either.
 * - Only the three stanza kinds have error replies; a nonza does not.
 *
 * Every code path that would send an error reply checks this first; when it
 * returns false the stanza is dropped (and counted/logged by the caller).
 */
export function canReplyWithError(stanza: Element): boolean {
  const kind = stanzaKind(stanza);
  if (kind === null) return false;
  const type: unknown = stanza.attrs.type;
  if (type === 'error') return false;
  if (kind === 'iq' && type === 'result') return false;
  return true;
}

export interface ErrorReplyOptions {
  /**
   * Include (a copy of) the original stanza's children before the <error/>.
   * RFC 6120 §8.3.1 rule 7 makes this a MAY ("a courtesy only").
   * Default: true for message and presence, false for iq.
   * - message/presence: clients show *which* message bounced (many match by
   *   id, but not all), and ejabberd does the same, so interop expectations
   *   are set. The original was already bounded by the stream's size limit.
   * - iq: replies are correlated by id alone (§8.2.3), and IQ payloads are the
   *   ones that carry secrets (XEP-0077 passwords, SASL-adjacent data) we do
   *   not want echoed into logs, archives or the bus a second time.
   * Any <error/> child of the original is never copied, so the reply has
   * exactly one <error/> (§8.3.1 rule 5).
   */
  includeOriginal?: boolean;
}

/**
 * Build the error reply to `stanza` (RFC 6120 §8.3.1): same element name,
 * type='error', 'to' = original 'from' and 'from' = original 'to' (each
 * omitted when the original lacked the counterpart), the same 'id' (omitted
 * when absent), optionally the original payload, then `err.toElement()`.
 *
 * Throws TypeError when `canReplyWithError(stanza)` is false: replying to an
 * error with an error is a protocol violation (§8.3.1 rule 2), so it is a bug
 * in the caller, not a condition to paper over.
 */
export function errorReply(stanza: Element, err: StanzaError, opts: ErrorReplyOptions = {}): Element {
  if (!canReplyWithError(stanza)) {
    throw new TypeError(
      `errorReply: <${stanza.name} type='${String(stanza.attrs.type)}'> must not be answered with an error (RFC 6120 §8.3.1, §8.2.3)`,
    );
  }
  const kind = stanzaKind(stanza);
  const reply = new Element(stanza.name, replyAttrs(stanza, 'error'));
  const include = opts.includeOriginal ?? kind !== 'iq';
  if (include) {
    for (const child of stanza.children) {
      if (typeof child === 'string') continue; // whitespace between elements carries nothing
      if (child.getName() === 'error' && isContentNamespace(child)) continue;
      reply.cnode(cloneElement(child));
    }
  }
  reply.cnode(err.toElement());
  return reply;
}

/**
 * The result reply to an IQ get/set (RFC 6120 §8.2.3): type='result', the
 * addresses swapped, the same id, and at most one payload child (rule 4).
 * The caller is responsible for only answering get/set requests (a 'result'
 * or 'error' IQ MUST NOT be answered, rule 6).
 */
export function iqResult(iq: Element, payload?: Element): Element {
  const reply = new Element('iq', replyAttrs(iq, 'result'));
  if (payload) reply.cnode(payload);
  return reply;
}

/** Attributes of a reply: swapped addresses, same id, same explicit namespace. */
function replyAttrs(stanza: Element, type: string): Record<string, string> {
  const a = stanza.attrs as Record<string, unknown>;
  const attrs: Record<string, string> = {};
  // An explicitly qualified stanza (e.g. one that crossed the bus serialized
  // on its own) keeps its qualification; one that inherited the stream's
  // content namespace keeps inheriting it.
  if (typeof a.xmlns === 'string') attrs.xmlns = a.xmlns;
  if (typeof a.from === 'string') attrs.to = a.from;
  if (typeof a.to === 'string') attrs.from = a.to;
  if (typeof a.id === 'string') attrs.id = a.id;
  attrs.type = type;
  return attrs;
}

function isContentNamespace(el: Element): boolean {
  const ns = el.getNS();
  return ns === undefined || ns === NS.client || ns === NS.server || ns === NS.componentAccept;
}
