/**
 * XEP-0059 Result Set Management (version 1.0): the request side (<set/> in a
 * query: <max/>, <after/>, <before/>, <index/>) and the response side
 * (<first index/>, <last/>, <count/>).
 */
import { Element } from 'ltx';
import { NS } from './ns.js';
import { StanzaError } from './stanza-error.js';

export interface RsmRequest {
  /** <max/>: page size; 0 asks for the item count only (§2.6). */
  max?: number;
  /** <after/>: UID of the last item already received (§2.2). Opaque, not trimmed. */
  after?: string;
  /**
   * <before/>: UID of the first item already received (§2.3). The empty
   * string is meaningful: an empty <before/> asks for the last page (§2.4).
   */
  before?: string;
  /** <index/>: position of the first item wanted (§2.5). */
  index?: number;
}

export interface RsmSetOptions {
  /** UID of the first item of the page; omit for an empty page. */
  first?: string;
  /** Position of the first item in the full set (the 'index' attribute of <first/>). */
  firstIndex?: number;
  /** UID of the last item of the page; defaults to `first` (a one-item page, §2.2). */
  last?: string;
  /** Number of items in the full result set. */
  count?: number;
}

/** xs:int (schema, §7) limited to the non-negative values that make sense for <max/> and <index/>. */
const INT_MAX = 2147483647;

function parseCount(el: Element, name: string): number {
  // xs:int: whitespace collapse, optional '+', decimal digits.
  const text = el.getText().trim();
  if (!/^\+?\d+$/.test(text)) {
    throw new StanzaError('bad-request', `<${name}/> must be a non-negative integer`);
  }
  const n = Number(text);
  if (n > INT_MAX) throw new StanzaError('bad-request', `<${name}/> is too large`);
  return n;
}

function single(set: Element, name: string): Element | undefined {
  const found = set.getChildren(name, NS.rsm);
  if (found.length > 1) {
    // The schema allows each child at most once (§7, maxOccurs='1').
    throw new StanzaError('bad-request', `more than one <${name}/> in <set/>`);
  }
  return found[0];
}

/**
 * Parses the <set xmlns='http://jabber.org/protocol/rsm'/> child of `query`.
 * Returns undefined when there is none (the request is then not paged).
 * A <max/> or <index/> that is not a non-negative xs:int, or a child that
 * appears twice, is a StanzaError('bad-request').
 */
export function parseRsm(query: Element): RsmRequest | undefined {
  const set = query.getChild('set', NS.rsm);
  if (!set) return undefined;
  const req: RsmRequest = {};
  const max = single(set, 'max');
  if (max) req.max = parseCount(max, 'max');
  const index = single(set, 'index');
  if (index) req.index = parseCount(index, 'index');
  const after = single(set, 'after');
  if (after) req.after = after.getText();
  const before = single(set, 'before');
  if (before) req.before = before.getText();
  return req;
}

function checkCount(n: number | undefined, what: string): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 0)) {
    throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
  }
}

/**
 * The response <set/>: `<first index='…'>…</first><last>…</last><count>…</count>`
 * in the order of the XEP's examples. Without `first` (an empty page) neither
 * <first/> nor <last/> is written (§2.2: they MUST NOT be included), so the
 * result is `<set><count>…</count></set>` (§2.2 "empty page", §2.6 item count).
 */
export function rsmSet(opts: RsmSetOptions): Element {
  checkCount(opts.firstIndex, 'firstIndex');
  checkCount(opts.count, 'count');
  const set = new Element('set', { xmlns: NS.rsm });
  if (opts.first !== undefined) {
    const attrs: Record<string, string> = {};
    if (opts.firstIndex !== undefined) attrs.index = String(opts.firstIndex);
    set.c('first', attrs).t(opts.first);
    set.c('last').t(opts.last ?? opts.first);
  }
  if (opts.count !== undefined) set.c('count').t(String(opts.count));
  return set;
}
