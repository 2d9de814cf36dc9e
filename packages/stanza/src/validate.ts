import type { Element } from 'ltx';
import { StanzaError } from './stanza-error.js';

const IQ_TYPES: ReadonlySet<string> = new Set(['get', 'set', 'result', 'error']);

/**
 * Check the structural rules RFC 6120 §8.2.3 sets for IQ stanzas. Returns a
 * `bad-request` StanzaError (§8.3.3.1, whose own example is "an IQ stanza
 * that includes an unrecognized value of the 'type' attribute") describing the
 * first rule broken, or null when the IQ is well-formed:
 *
 * 1. the 'id' attribute is REQUIRED;
 * 2. the 'type' attribute is REQUIRED and is one of get, set, result, error;
 * 3. a get or set contains exactly one child element (the payload);
 * 4. a result contains zero or one child element;
 * 5. an error contains an <error/> child (§8.3.1 rule 5).
 *
 * The caller decides whether to reply: an IQ of type result/error MUST NOT be
 * answered (§8.2.3 rule 6) even when malformed — see canReplyWithError.
 */
export function validateIq(el: Element): StanzaError | null {
  if (el.getName() !== 'iq') return new StanzaError('bad-request', `expected <iq/>, got <${el.name}/>`);
  const { id, type } = el.attrs as Record<string, unknown>;
  if (typeof id !== 'string' || id === '') {
    return new StanzaError('bad-request', "IQ stanza has no 'id' attribute (RFC 6120 §8.2.3)");
  }
  if (typeof type !== 'string' || type === '') {
    return new StanzaError('bad-request', "IQ stanza has no 'type' attribute (RFC 6120 §8.2.3)");
  }
  if (!IQ_TYPES.has(type)) {
    return new StanzaError('bad-request', `IQ type '${type}' is not one of get, set, result, error`);
  }
  const children = el.getChildElements();
  switch (type) {
    case 'get':
    case 'set':
      if (children.length !== 1) {
        return new StanzaError(
          'bad-request',
          `IQ of type '${type}' must contain exactly one child element, found ${children.length}`,
        );
      }
      return null;
    case 'result':
      if (children.length > 1) {
        return new StanzaError(
          'bad-request',
          `IQ of type 'result' must contain zero or one child element, found ${children.length}`,
        );
      }
      return null;
    default: // 'error'
      if (!children.some((c) => c.getName() === 'error')) {
        return new StanzaError('bad-request', "IQ of type 'error' must contain an <error/> child");
      }
      return null;
  }
}
