/**
 * Serializer for ltx elements and stream framing.
 *
 * Output is always well-formed XML 1.0 that our own parser reads back to an
 * equal tree:
 * - text escapes & < > (">" too, so "]]>" can never appear, XML 1.0 §2.4)
 *   and CR as &#xD; (a literal CR would be turned into LF by line-end
 *   normalisation, §2.11);
 * - attribute values are written in single quotes and escape both quote
 *   kinds, & < >, and TAB/LF/CR as character references (literal ones would
 *   become spaces through attribute-value normalisation, §3.3.3);
 * - characters XML 1.0 cannot carry at all (C0 controls other than TAB/LF/CR,
 *   U+FFFE, U+FFFF, unpaired surrogates) are replaced by U+FFFD rather than
 *   emitting bytes the peer must reject with <not-well-formed/> (RFC 6120
 *   §11.3), which would tear down its stream because of one bad string.
 * ltx's own Element#toString escapes attributes but its `stringify` does not
 * escape a lone text child; do not use either for the wire.
 */
import type { Element } from 'ltx';

const TEXT_RE = /[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|\p{Cs}/u;
const TEXT_RE_G = /[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|\p{Cs}/gu;
const ATTR_RE = /[&<>"'\t\n\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|\p{Cs}/u;
const ATTR_RE_G = /[&<>"'\t\n\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|\p{Cs}/gu;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#x9;',
  '\n': '&#xA;',
  '\r': '&#xD;',
};

function replace(ch: string): string {
  return ESCAPES[ch] ?? '\uFFFD';
}

/** Escapes character data for element content. */
export function escapeText(s: string): string {
  return TEXT_RE.test(s) ? s.replace(TEXT_RE_G, replace) : s;
}

/** Escapes an attribute value; safe inside either quote kind. */
export function escapeAttr(s: string): string {
  return ATTR_RE.test(s) ? s.replace(ATTR_RE_G, replace) : s;
}

function attrString(attrs: Record<string, unknown>): string {
  let s = '';
  for (const k in attrs) {
    const v = attrs[k];
    // ltx treats null/undefined attributes as absent.
    if (v === undefined || v === null) continue;
    s += ' ' + k + "='" + escapeAttr(typeof v === 'string' ? v : String(v)) + "'";
  }
  return s;
}

/**
 * Serializes an element and its subtree. Attributes keep their insertion
 * order; namespace declarations are written exactly as present in `attrs`
 * (nothing is added or inherited). Elements without children are written
 * self-closed.
 */
export function serialize(el: Element): string {
  let s = '<' + el.name + attrString(el.attrs as Record<string, unknown>);
  const children = el.children;
  if (children.length === 0) return s + '/>';
  s += '>';
  for (const child of children as unknown[]) {
    if (typeof child === 'string') s += escapeText(child);
    else if (child === null || child === undefined) continue;
    else if (typeof child === 'object') s += serialize(child as Element);
    else s += escapeText(String(child)); // numbers, as ltx allows
  }
  return s + '</' + el.name + '>';
}

/**
 * The XML declaration plus an opening stream tag (RFC 6120 §4.2, §11.5).
 * The caller supplies every attribute, namespace declarations included
 * (xmlns, xmlns:stream, from, to, id, version, xml:lang).
 */
export function streamHeader(attrs: Record<string, string>): string {
  return "<?xml version='1.0'?><stream:stream" + attrString(attrs) + '>';
}

/** Closes the stream (RFC 6120 §4.4). */
export const streamFooter = '</stream:stream>';
