import { Element } from 'ltx';
import { NS } from './ns.js';

/**
 * Every stream error condition defined by RFC 6120 §4.9.3 (§4.9.3.1 through
 * §4.9.3.25), in the RFC's order.
 */
export const STREAM_ERROR_CONDITIONS = [
  'bad-format',
  'bad-namespace-prefix',
  'conflict',
  'connection-timeout',
  'host-gone',
  'host-unknown',
  'improper-addressing',
  'internal-server-error',
  'invalid-from',
  'invalid-namespace',
  'invalid-xml',
  'not-authorized',
  'not-well-formed',
  'policy-violation',
  'remote-connection-failed',
  'reset',
  'resource-constraint',
  'restricted-xml',
  'see-other-host',
  'system-shutdown',
  'undefined-condition',
  'unsupported-encoding',
  'unsupported-feature',
  'unsupported-stanza-type',
  'unsupported-version',
] as const;

export type StreamErrorCondition = (typeof STREAM_ERROR_CONDITIONS)[number];

const STREAM_SET: ReadonlySet<string> = new Set(STREAM_ERROR_CONDITIONS);

export function isStreamErrorCondition(value: unknown): value is StreamErrorCondition {
  return typeof value === 'string' && STREAM_SET.has(value);
}

export interface StreamErrorOptions {
  /**
   * Required for `see-other-host`: the host (domain or IP, with optional
   * port) the peer should reconnect to. RFC 6120 §4.9.3.19 puts it as the
   * XML character data of the <see-other-host/> element.
   */
  seeOtherHost?: string;
}

/**
 * A stream-level error: fatal to the stream (RFC 6120 §4.9.1.1). Throw it
 * from stream handling code; the edge catches it, sends `toElement()`, then
 * closes the stream (`</stream:stream>`) and the TCP connection.
 */
export class StreamError extends Error {
  readonly condition: StreamErrorCondition;
  readonly text?: string;
  readonly seeOtherHost?: string;

  constructor(condition: StreamErrorCondition, text?: string, opts: StreamErrorOptions = {}) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
    if (!isStreamErrorCondition(condition)) {
      throw new TypeError(`unknown stream error condition: ${String(condition)}`);
    }
    // §4.9.3.19: the see-other-host element MUST contain the alternate host.
    if (condition === 'see-other-host' && !opts.seeOtherHost) {
      throw new TypeError('see-other-host requires opts.seeOtherHost (RFC 6120 §4.9.3.19)');
    }
    this.condition = condition;
    if (text !== undefined) this.text = text;
    if (condition === 'see-other-host') this.seeOtherHost = opts.seeOtherHost;
  }

  /**
   * `<stream:error><COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text/>]</stream:error>`
   * (RFC 6120 §4.9.2).
   *
   * The element declares `xmlns:stream` itself. Inside a TCP stream the
   * declaration is redundant (the stream header already binds the prefix)
   * but harmless; over WebSocket (RFC 7395 §3.6) there is no enclosing
   * `<stream:stream>` and the declaration is required. Having it also makes
   * `getNS()` work on the element in isolation.
   */
  toElement(): Element {
    const el = new Element('stream:error', { 'xmlns:stream': NS.stream });
    const cond = el.c(this.condition, { xmlns: NS.streams });
    if (this.condition === 'see-other-host' && this.seeOtherHost) cond.t(this.seeOtherHost);
    if (this.text) {
      // §4.9.2: the <text/> element SHOULD carry xml:lang; our texts are English.
      el.c('text', { xmlns: NS.streams, 'xml:lang': 'en' }).t(this.text);
    }
    return el;
  }
}
