import { Element } from 'ltx';
import { NS } from './ns.js';

/** Every stanza error condition defined by RFC 6120 §8.3.3 (§8.3.3.1 through §8.3.3.22). */
export const STANZA_ERROR_CONDITIONS = [
  'bad-request',
  'conflict',
  'feature-not-implemented',
  'forbidden',
  'gone',
  'internal-server-error',
  'item-not-found',
  'jid-malformed',
  'not-acceptable',
  'not-allowed',
  'not-authorized',
  'policy-violation',
  'recipient-unavailable',
  'redirect',
  'registration-required',
  'remote-server-not-found',
  'remote-server-timeout',
  'resource-constraint',
  'service-unavailable',
  'subscription-required',
  'undefined-condition',
  'unexpected-request',
] as const;

export type StanzaErrorCondition = (typeof STANZA_ERROR_CONDITIONS)[number];

/** The error types of RFC 6120 §8.3.2: what the sender may do about the error. */
export const STANZA_ERROR_TYPES = ['auth', 'cancel', 'continue', 'modify', 'wait'] as const;
export type StanzaErrorType = (typeof STANZA_ERROR_TYPES)[number];

/**
 * The type each condition carries unless the caller says otherwise: the type
 * RFC 6120 §8.3.3 says the condition SHOULD have, which is also the type used
 * in the RFC's example for that condition. Where the RFC allows two
 * (feature-not-implemented: cancel|modify; policy-violation: modify|wait;
 * unexpected-request: wait|modify) or any (undefined-condition), the value
 * here is the one in the RFC's example; pass `opts.type` to choose another.
 */
export const DEFAULT_ERROR_TYPE: Readonly<Record<StanzaErrorCondition, StanzaErrorType>> = {
  'bad-request': 'modify', // §8.3.3.1
  conflict: 'cancel', // §8.3.3.2
  'feature-not-implemented': 'cancel', // §8.3.3.3
  forbidden: 'auth', // §8.3.3.4
  gone: 'cancel', // §8.3.3.5
  'internal-server-error': 'cancel', // §8.3.3.6
  'item-not-found': 'cancel', // §8.3.3.7
  'jid-malformed': 'modify', // §8.3.3.8
  'not-acceptable': 'modify', // §8.3.3.9
  'not-allowed': 'cancel', // §8.3.3.10
  'not-authorized': 'auth', // §8.3.3.11
  'policy-violation': 'modify', // §8.3.3.12
  'recipient-unavailable': 'wait', // §8.3.3.13
  redirect: 'modify', // §8.3.3.14
  'registration-required': 'auth', // §8.3.3.15
  'remote-server-not-found': 'cancel', // §8.3.3.16
  'remote-server-timeout': 'wait', // §8.3.3.17
  'resource-constraint': 'wait', // §8.3.3.18
  'service-unavailable': 'cancel', // §8.3.3.19
  'subscription-required': 'auth', // §8.3.3.20
  'undefined-condition': 'modify', // §8.3.3.21 (example: XEP-0079 failed rule)
  'unexpected-request': 'wait', // §8.3.3.22
};

const STANZA_SET: ReadonlySet<string> = new Set(STANZA_ERROR_CONDITIONS);
const TYPE_SET: ReadonlySet<string> = new Set(STANZA_ERROR_TYPES);

export function isStanzaErrorCondition(value: unknown): value is StanzaErrorCondition {
  return typeof value === 'string' && STANZA_SET.has(value);
}

export function isStanzaErrorType(value: unknown): value is StanzaErrorType {
  return typeof value === 'string' && TYPE_SET.has(value);
}

export interface StanzaErrorOptions {
  /** Overrides DEFAULT_ERROR_TYPE[condition]. */
  type?: StanzaErrorType;
  /** JID of the entity that generated the error (§8.3.2 'by'; SHOULD be set by a server that returns an error on behalf of a user or itself). */
  by?: string;
  /**
   * For `gone` (§8.3.3.5) and `redirect` (§8.3.3.14): the new address
   * (typically an xmpp: URI), written as the condition element's character data.
   * Ignored for other conditions.
   */
  uri?: string;
  /** Application-specific condition (§8.3.2), e.g. `<too-many-stanzas xmlns='…'/>`. */
  appCondition?: Element;
}

/**
 * A stanza-level error: recoverable, the stream stays up (RFC 6120 §8.3).
 * Throw it from stanza handling; the catcher turns it into an error reply
 * with `errorReply(stanza, err)`.
 */
export class StanzaError extends Error {
  readonly condition: StanzaErrorCondition;
  readonly type: StanzaErrorType;
  readonly text?: string;
  readonly by?: string;
  readonly uri?: string;
  readonly appCondition?: Element;

  constructor(condition: StanzaErrorCondition, text?: string, opts: StanzaErrorOptions = {}) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    if (!isStanzaErrorCondition(condition)) {
      throw new TypeError(`unknown stanza error condition: ${String(condition)}`);
    }
    if (opts.type !== undefined && !isStanzaErrorType(opts.type)) {
      throw new TypeError(`unknown stanza error type: ${String(opts.type)}`);
    }
    this.condition = condition;
    this.type = opts.type ?? DEFAULT_ERROR_TYPE[condition];
    if (text !== undefined) this.text = text;
    if (opts.by !== undefined) this.by = opts.by;
    if (opts.uri !== undefined && (condition === 'gone' || condition === 'redirect')) this.uri = opts.uri;
    if (opts.appCondition !== undefined) this.appCondition = opts.appCondition;
  }

  /**
   * The `<error/>` child of an error stanza, per RFC 6120 §8.3.2:
   * `<error [by='…'] type='…'><COND xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>[<text/>][<app-condition/>]</error>`.
   * The <error/> element itself is in the stream's content namespace, so it
   * carries no xmlns of its own. The order (condition, text, application
   * condition) is the one the RFC's schema requires.
   */
  toElement(): Element {
    const attrs: Record<string, string> = { type: this.type };
    if (this.by) attrs.by = this.by;
    const el = new Element('error', attrs);
    const cond = el.c(this.condition, { xmlns: NS.stanzas });
    if (this.uri) cond.t(this.uri);
    if (this.text) {
      el.c('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }).t(this.text);
    }
    if (this.appCondition) {
      // Cloned so that one StanzaError can be serialized into several replies.
      el.cnode(cloneElement(this.appCondition));
    }
    return el;
  }
}

/** Deep copy (ltx's clone keeps the class; we only need plain Elements). */
export function cloneElement(el: Element): Element {
  const copy = new Element(el.name, { ...el.attrs });
  for (const child of el.children) {
    copy.cnode(typeof child === 'string' ? child : cloneElement(child));
  }
  return copy;
}
