/**
 * Reversible encoding of one JID part (or any string) into ONE NATS subject
 * token.
 *
 * NATS tokens are separated by '.', may not contain '*', '>' or whitespace,
 * and must not be empty.  The encoding keeps ASCII letters, digits and '-'
 * as they are and writes every other byte of the string's UTF-8 form as '_'
 * followed by two lowercase hex digits:
 *
 *   juliet        -> juliet
 *   example.com   -> example_2ecom
 *   foo_bar       -> foo_5fbar
 *   bücher        -> b_c3_bccher
 *   ''            -> _            (a lone '_' can never occur otherwise)
 *
 * Tokens therefore use only [A-Za-z0-9_-]: safe for NATS subjects and also
 * valid in JetStream stream/consumer names and KV keys.  Lone surrogates
 * (not valid in a JID, but any JS string must round-trip) are written as
 * their 3-byte generalized UTF-8 form (WTF-8).
 *
 * The mapping is a bijection between strings and well-formed tokens:
 * decodeToken accepts only the exact output of encodeToken (lowercase hex,
 * no needless escapes, shortest UTF-8), so one JID can never be reachable
 * under two different subjects.
 */
import { JidError } from './jid.js';

const ESC = 0x5f; // '_'
const HEX = '0123456789abcdef';

function isPlain(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d;
}

const RE_ALL_PLAIN = /^[A-Za-z0-9-]+$/;

function escByte(b: number): string {
  return '_' + HEX[b >> 4]! + HEX[b & 0xf]!;
}

/** Encodes any string as a single non-empty NATS subject token. */
export function encodeToken(part: string): string {
  if (part.length === 0) return '_';
  if (RE_ALL_PLAIN.test(part)) return part; // the common case: no copy
  let out = '';
  for (let i = 0; i < part.length; i++) {
    let cp = part.charCodeAt(i);
    if (cp < 0x80) {
      out += isPlain(cp) ? part[i]! : escByte(cp);
      continue;
    }
    // Combine a surrogate pair; a lone surrogate is encoded as itself.
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < part.length) {
      const lo = part.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp < 0x800) {
      out += escByte(0xc0 | (cp >> 6)) + escByte(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += escByte(0xe0 | (cp >> 12)) + escByte(0x80 | ((cp >> 6) & 0x3f)) + escByte(0x80 | (cp & 0x3f));
    } else {
      out += escByte(0xf0 | (cp >> 18)) + escByte(0x80 | ((cp >> 12) & 0x3f)) +
        escByte(0x80 | ((cp >> 6) & 0x3f)) + escByte(0x80 | (cp & 0x3f));
    }
  }
  return out;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1; // uppercase hex is not canonical
}

function malformed(why: string): never {
  throw new JidError('jid', `malformed subject token: ${why}`);
}

/** Decodes a token made by encodeToken; throws JidError (part 'jid') otherwise. */
export function decodeToken(token: string): string {
  if (token === '_') return '';
  if (token.length === 0) malformed('empty');
  if (RE_ALL_PLAIN.test(token)) return token;

  // Collect bytes; plain characters are single ASCII bytes.
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === ESC) {
      const hi = i + 2 < token.length ? hexVal(token.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexVal(token.charCodeAt(i + 2)) : -1;
      if (lo < 0) malformed(`bad escape at offset ${i}`);
      const b = (hi << 4) | lo;
      if (b < 0x80 && isPlain(b)) malformed(`needless escape at offset ${i}`);
      bytes.push(b);
      i += 2;
    } else if (isPlain(c)) {
      bytes.push(c);
    } else {
      malformed(`character ${JSON.stringify(token[i])} at offset ${i}`);
    }
  }

  // Strict generalized UTF-8: shortest form, at most U+10FFFF; surrogate
  // code points are let through here and checked by the round trip below.
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const b0 = bytes[i]!;
    let need: number;
    let cp: number;
    let min: number;
    if (b0 < 0x80) { out += String.fromCharCode(b0); i++; continue; }
    else if (b0 >= 0xc2 && b0 <= 0xdf) { need = 1; cp = b0 & 0x1f; min = 0x80; }
    else if (b0 >= 0xe0 && b0 <= 0xef) { need = 2; cp = b0 & 0x0f; min = 0x800; }
    else if (b0 >= 0xf0 && b0 <= 0xf4) { need = 3; cp = b0 & 0x07; min = 0x10000; }
    else malformed('invalid UTF-8 lead byte');
    if (i + need >= bytes.length) malformed('truncated UTF-8 sequence');
    for (let k = 1; k <= need; k++) {
      const b = bytes[i + k]!;
      if ((b & 0xc0) !== 0x80) malformed('invalid UTF-8 continuation byte');
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff) malformed('overlong or out-of-range UTF-8');
    out += String.fromCodePoint(cp);
    i += need + 1;
  }

  // Two escaped surrogate halves would decode to a pair that encodeToken
  // writes as one 4-byte sequence: reject anything that is not canonical.
  if (encodeToken(out) !== token) malformed('not in canonical form');
  return out;
}
