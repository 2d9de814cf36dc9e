import type { Element } from 'ltx';
import { NS } from './ns.js';

export type StanzaKind = 'message' | 'presence' | 'iq';

/** Namespaces a top-level stanza may be qualified by (RFC 6120 §4.8.2, XEP-0114). */
const STANZA_NAMESPACES: ReadonlySet<string> = new Set([NS.client, NS.server, NS.componentAccept]);

/**
 * Which of the three stanza kinds (RFC 6120 §8) `el` is, or null for
 * anything else (a nonza such as <starttls/>, <r/>, or a foreign element).
 *
 * Elements handed over by the stream parser usually carry no xmlns of their
 * own (they inherit the stream's content namespace), so an element without
 * a namespace counts; one explicitly qualified by another namespace does not.
 */
export function stanzaKind(el: Element): StanzaKind | null {
  const name = el.getName();
  if (name !== 'message' && name !== 'presence' && name !== 'iq') return null;
  const ns = el.getNS();
  if (ns !== undefined && !STANZA_NAMESPACES.has(ns)) return null;
  return name;
}
