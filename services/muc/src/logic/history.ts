/**
 * Discussion history (XEP-0045 1.35.5 §7.2.13) and the <history/> limits a
 * joining occupant may ask for (§7.2.14 "Managing Discussion History").
 */
import { Element, parse } from 'ltx';
import { NS } from '@hyphae/stanza';
import { NS_MUC } from './user-x.js';

export interface HistoryEntry {
  /** the groupchat message as reflected (from=room/nick, no to) */
  xml: string;
  /** ms since epoch when the room received it */
  at: number;
  /** nick of the sender */
  nick: string;
}

/** The limits of a <history/> element; each is absent when not given or invalid. */
export interface HistoryLimits {
  maxchars?: number;
  maxstanzas?: number;
  /** ms since epoch: only entries received at or after it (from 'seconds' and 'since', the later one). */
  notBefore?: number;
}

const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DATETIME = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/**
 * XEP-0082 DateTime `CCYY-MM-DDThh:mm:ss[.sss]TZD` (TZD 'Z' or ±hh:mm, any
 * number of fraction digits) → ms since epoch; undefined if malformed or
 * out of range (hh 00–23, mm 00–59, ss 00–59, a real calendar day). Fractions
 * below a millisecond are truncated.
 */
export function parseDateTime(s: string): number | undefined {
  const m = DATETIME.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se, frac, z, sign, th, tm] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  const hour = Number(h), minute = Number(mi), second = Number(se);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (day > (month === 2 && !leap ? 28 : MONTH_DAYS[month - 1]!)) return undefined;
  let offset = 0;
  if (!z) {
    const oh = Number(th), om = Number(tm);
    if (oh > 23 || om > 59) return undefined;
    offset = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC maps years 0–99 to 1900–1999; set the year explicitly.
  const fixed = new Date(t);
  fixed.setUTCFullYear(year);
  const value = fixed.getTime() - offset;
  return Number.isFinite(value) ? value : undefined;
}

/** xs:int restricted to non-negative values (whitespace collapsed, optional '+'); undefined otherwise. */
function nonNegativeInt(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (!/^\+?\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

/**
 * Reads the four §7.2.14 attributes. `request` is the <history/> element or
 * the <x xmlns='http://jabber.org/protocol/muc'/> holding it. Invalid values
 * (not a non-negative integer; a 'since' that is not an XEP-0082 DateTime)
 * are ignored, as if absent. 'seconds' and 'since' both bound the age; the
 * stricter (later) one applies.
 */
export function parseHistoryRequest(request: Element | undefined, now: number): HistoryLimits {
  let h = request;
  if (h && h.name === 'x') h = h.getChild('history', NS_MUC);
  if (!h) return {};
  const limits: HistoryLimits = {};
  const maxchars = nonNegativeInt(h.attrs.maxchars);
  if (maxchars !== undefined) limits.maxchars = maxchars;
  const maxstanzas = nonNegativeInt(h.attrs.maxstanzas);
  if (maxstanzas !== undefined) limits.maxstanzas = maxstanzas;
  const bounds: number[] = [];
  const seconds = nonNegativeInt(h.attrs.seconds);
  if (seconds !== undefined) bounds.push(now - seconds * 1000);
  const since = typeof h.attrs.since === 'string' ? parseDateTime(h.attrs.since) : undefined;
  if (since !== undefined) bounds.push(since);
  if (bounds.length > 0) limits.notBefore = Math.max(...bounds);
  return limits;
}

function delayElement(roomJid: string, at: number): Element {
  return new Element('delay', { xmlns: NS.delay, from: roomJid, stamp: new Date(at).toISOString() });
}

/**
 * The entry as sent to an occupant (§7.2.13): the stored message with `to`
 * set and a XEP-0203 `<delay xmlns='urn:xmpp:delay' from=roomJid stamp/>`
 * appended ('from' MUST be the room JID; the stamp is UTC with milliseconds,
 * a valid XEP-0082 DateTime).
 */
export function historyStanza(e: HistoryEntry, to: string, roomJid: string): Element {
  const el = parse(e.xml);
  el.attrs.to = to;
  el.cnode(delayElement(roomJid, e.at));
  return el;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // a high surrogate followed by a low one is one character
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/**
 * Size of an entry as sent, in characters (Unicode code points) of its
 * ltx serialization: the stanza of historyStanza(e, target.to,
 * target.roomJid). Without `target`, the same stanza without a 'to'
 * attribute, the delay's 'from' being the bare part of the stored 'from'.
 */
export function historyStanzaChars(e: HistoryEntry, target?: { to: string; roomJid: string }): number {
  if (target) return codePoints(historyStanza(e, target.to, target.roomJid).toString());
  const el = parse(e.xml);
  const from = typeof el.attrs.from === 'string' ? el.attrs.from : '';
  const slash = from.indexOf('/');
  el.cnode(delayElement(slash === -1 ? from : from.slice(0, slash), e.at));
  return codePoints(el.toString());
}

/**
 * §7.2.14: the entries a joining occupant gets, given the optional
 * <history/> (or the muc <x/> holding it). `entries` are oldest first, as
 * the room recorded them (already capped at the room's history length —
 * the "room-level default" of §7.2.14). The result is the longest run of
 * newest entries that satisfies every limit given ("the smallest amount of
 * traffic that meets any combination of the above criteria"), oldest first:
 *
 * - maxstanzas: at most that many entries;
 * - maxchars: the characters of the complete stanzas as sent, summed, at
 *   most that many; only complete stanzas (§7.2.14 MUST), so the walk stops
 *   at the first entry that would overflow. Counted with historyStanzaChars
 *   (pass `target` for the exact stanza, 'to' included);
 * - seconds / since: entries received at or after now − seconds, resp. at
 *   or after 'since' (both inclusive);
 * - maxchars='0' or maxstanzas='0' → nothing; invalid values are ignored.
 */
export function selectHistory(
  entries: readonly HistoryEntry[],
  request: Element | undefined,
  now: number,
  target?: { to: string; roomJid: string },
): HistoryEntry[] {
  const limits = parseHistoryRequest(request, now);
  if (limits.maxchars === 0 || limits.maxstanzas === 0) return [];
  const out: HistoryEntry[] = [];
  let chars = 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (limits.maxstanzas !== undefined && out.length >= limits.maxstanzas) break;
    if (limits.notBefore !== undefined && e.at < limits.notBefore) break;
    if (limits.maxchars !== undefined) {
      chars += historyStanzaChars(e, target);
      if (chars > limits.maxchars) break;
    }
    out.push(e);
  }
  return out.reverse();
}
