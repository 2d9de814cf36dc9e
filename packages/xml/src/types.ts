import type { Element } from 'ltx';

/** Limits enforced while parsing one XML stream (RFC 6120 §13.12 resource exhaustion). */
export interface StreamParserLimits {
  /** Largest top-level element (stanza), in bytes of its serialized form as received. */
  maxStanzaBytes: number;
  /** Deepest element nesting inside a stanza (the stanza itself is depth 1). */
  maxDepth: number;
  /** Most attributes on one element (namespace declarations included). */
  maxAttributes: number;
}

export const defaultLimits: StreamParserLimits = {
  maxStanzaBytes: 256 * 1024,
  maxDepth: 32,
  maxAttributes: 64,
};

/**
 * The stream error conditions a parser can raise (RFC 6120 §4.9.3):
 * - not-well-formed: the bytes are not XML (or not UTF-8);
 * - restricted-xml: XML that RFC 6120 §11.1 forbids (DTD, comments,
 *   processing instructions, entity references other than the predefined five);
 * - policy-violation: a configured limit was exceeded (size, depth, attributes).
 */
export type XmlViolation = 'not-well-formed' | 'restricted-xml' | 'policy-violation';

export class XmlStreamError extends Error {
  constructor(readonly condition: XmlViolation, message: string) {
    super(message);
    this.name = 'XmlStreamError';
  }
}

export interface StreamParserHandlers {
  /** The opening `<stream:stream …>` tag; attrs as written, qualified name as written. */
  onStreamStart(name: string, attrs: Record<string, string>): void;
  /** A complete top-level child of the stream (a stanza, or a nonza such as <starttls/>). */
  onStanza(el: Element): void;
  /** `</stream:stream>` */
  onStreamEnd(): void;
  /** The first violation; after it the parser ignores further input until reset(). */
  onError(err: XmlStreamError): void;
}
