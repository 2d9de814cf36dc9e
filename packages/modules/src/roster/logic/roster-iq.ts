/**
 * Roster IQs of RFC 6121 §2 as pure functions: parsing and validating a
 * client's roster get/set (§2.1.3, §2.1.5, §2.3.3, §2.4.3, §2.5.3) and
 * building roster results (§2.1.4) and roster pushes (§2.1.6).
 */
import { Element } from 'ltx';
import { tryParseJid } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import type { Roster, RosterItem } from '@hyphae/store';
import { ROSTER_NS } from './ns.js';

export interface RosterQueryLimits {
  /** Longest 'name' attribute, in Unicode code points (§2.3.3: not-acceptable beyond). */
  maxNameLength: number;
  /** Most <group/> elements on one item (a server policy in the spirit of §2.3.3's limits: not-acceptable beyond). */
  maxGroups: number;
  /** Longest group name, in Unicode code points (§2.3.3: not-acceptable beyond). */
  maxGroupLength: number;
  /**
   * The roster owner's bare JID (prepared). When absent it is taken from the
   * IQ's 'from' (stamped by the edge, RFC 6120 §8.1.2.1). When neither is
   * known the owner checks (forbidden, not-allowed) are skipped.
   */
  owner?: string;
}

export interface RosterSetItem {
  /** The contact's prepared bare JID. */
  jid: string;
  /** Absent when the client gave none (or an empty one). */
  name?: string;
  /** In the client's order, no duplicates; [] when remove. */
  groups: string[];
  /** subscription='remove' (§2.5). */
  remove: boolean;
}

export type RosterQuery = { kind: 'get'; ver?: string } | { kind: 'set'; item: RosterSetItem };

/** A roster push announcing a deleted item (§2.5.2). */
export interface RosterRemoval {
  jid: string;
  remove: true;
}

const codePoints = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

function rosterChildren(el: Element, name: string): Element[] {
  return el.getChildElements().filter((c) => c.getName() === name && c.getNS() === ROSTER_NS.roster);
}

function bareOf(jid: unknown): string | null {
  if (typeof jid !== 'string' || jid === '') return null;
  return tryParseJid(jid)?.toBareString() ?? null;
}

/**
 * Validates a roster get or set from the roster's owner and returns what it
 * asks for. Throws StanzaError:
 *
 * - bad-request: not an IQ get/set with a <query xmlns='jabber:iq:roster'/>;
 *   a get with <item/> children (§2.1.3: it "MUST NOT contain any <item/>
 *   child elements"); a set whose query has not exactly one <item/> (§2.1.5
 *   rule 1, §2.3.3); an <item/> without 'jid' (§2.1.2.3: REQUIRED); the
 *   same group twice (§2.3.3);
 * - forbidden: addressed ('to') to another account than the owner's
 *   (§2.3.3: "not authorized to update the roster"; applied to gets too);
 * - jid-malformed: 'jid' is not a valid JID (RFC 6120 §8.3.3.8), or is a
 *   full JID (a roster item is a bare JID in this server);
 * - not-allowed: 'jid' is the owner's own bare JID (a user is always
 *   its own presence reaches it anyway, §4.2.2; an item for it means
 *   nothing — the RFC itself is silent here);
 * - not-acceptable: 'name' longer than maxNameLength, a <group/> whose
 *   character data is empty or longer than maxGroupLength (§2.3.3), more
 *   than maxGroups groups.
 *
 * Ignored (§2.1.2): 'subscription' other than 'remove' (§2.1.5 rule 2,
 * §2.1.2.5: the server "MUST ignore" it), 'ask' (§2.1.2.2) and 'approved'
 * (§2.1.2.1), which clients MUST NOT send. For a remove, 'name' and groups
 * are ignored. Checking that a removed item exists (§2.5.3 item-not-found)
 * needs the roster and is the caller's.
 */
export function parseRosterQuery(iq: Element, opts: RosterQueryLimits): RosterQuery {
  const type = iq.attrs.type as unknown;
  if (iq.getName() !== 'iq' || (type !== 'get' && type !== 'set')) {
    throw new StanzaError('bad-request', 'A roster request is an IQ of type get or set');
  }
  const query = rosterChildren(iq, 'query')[0];
  if (!query) throw new StanzaError('bad-request', "No <query xmlns='jabber:iq:roster'/>");

  const owner = opts.owner ?? bareOf(iq.attrs.from);
  const to = iq.attrs.to as unknown;
  if (owner && to !== undefined && bareOf(to) !== owner) {
    throw new StanzaError('forbidden', "Only the account's own roster can be read or changed");
  }

  const items = rosterChildren(query, 'item');
  if (type === 'get') {
    if (items.length > 0) throw new StanzaError('bad-request', 'A roster get contains no <item/>');
    const ver = query.attrs.ver as unknown;
    return typeof ver === 'string' ? { kind: 'get', ver } : { kind: 'get' };
  }

  if (items.length !== 1) {
    throw new StanzaError('bad-request', `A roster set contains exactly one <item/>, not ${items.length}`);
  }
  const item = items[0]!;
  const rawJid = item.attrs.jid as unknown;
  if (typeof rawJid !== 'string') throw new StanzaError('bad-request', "The <item/> has no 'jid'");
  const jid = tryParseJid(rawJid);
  if (!jid) throw new StanzaError('jid-malformed', 'The item JID is not a valid JID');
  if (!jid.isBare()) throw new StanzaError('jid-malformed', 'A roster item is a bare JID');
  const bare = jid.toBareString();
  if (owner && bare === owner) throw new StanzaError('not-allowed', 'The roster cannot hold its own account');

  if (item.attrs.subscription === 'remove') {
    return { kind: 'set', item: { jid: bare, groups: [], remove: true } };
  }

  const rawName = item.attrs.name as unknown;
  const name = typeof rawName === 'string' && rawName !== '' ? rawName : undefined;
  if (name !== undefined && codePoints(name) > opts.maxNameLength) {
    throw new StanzaError('not-acceptable', `The name is longer than ${opts.maxNameLength} characters`);
  }

  const groups: string[] = [];
  const seen = new Set<string>();
  for (const g of rosterChildren(item, 'group')) {
    const text = g.getText();
    if (text === '') throw new StanzaError('not-acceptable', 'A group name is empty');
    if (codePoints(text) > opts.maxGroupLength) {
      throw new StanzaError('not-acceptable', `A group name is longer than ${opts.maxGroupLength} characters`);
    }
    if (seen.has(text)) throw new StanzaError('bad-request', `The group '${text}' is given twice`);
    seen.add(text);
    groups.push(text);
  }
  if (groups.length > opts.maxGroups) {
    throw new StanzaError('not-acceptable', `An item is in at most ${opts.maxGroups} groups`);
  }

  const result: RosterSetItem = { jid: bare, groups, remove: false };
  if (name !== undefined) result.name = name;
  return { kind: 'set', item: result };
}

function isRemoval(item: RosterItem | RosterRemoval): item is RosterRemoval {
  return (item as Partial<RosterRemoval>).remove === true;
}

/**
 * One <item/> (§2.1.2): jid, name (when set), subscription, ask='subscribe'
 * for Pending Out (§2.1.2.2), approved='true' for a pre-approval (§2.1.2.1:
 * the server SHOULD include it), then a <group/> per group in order. A
 * removal is <item jid='…' subscription='remove'/> (§2.5.2).
 * Carries no xmlns: it sits inside a roster <query/>.
 */
export function itemElement(item: RosterItem | RosterRemoval): Element {
  if (isRemoval(item)) return new Element('item', { jid: item.jid, subscription: 'remove' });
  const attrs: Record<string, string> = { jid: item.jid };
  if (item.name !== undefined && item.name !== '') attrs.name = item.name;
  attrs.subscription = item.subscription;
  if (item.ask) attrs.ask = 'subscribe';
  if (item.approved) attrs.approved = 'true';
  const el = new Element('item', attrs);
  for (const g of item.groups) el.c('group').t(g);
  return el;
}

/**
 * The <query xmlns='jabber:iq:roster'/> of a roster result (§2.1.4), every
 * item in stored order; with `ver` the roster version as the 'ver'
 * attribute (roster versioning, §2.6). The caller wraps it with iqResult().
 */
export function rosterResult(roster: Roster, ver: boolean): Element {
  const attrs: Record<string, string> = { xmlns: ROSTER_NS.roster };
  if (ver) attrs.ver = String(roster.version);
  const q = new Element('query', attrs);
  for (const item of roster.items) q.cnode(itemElement(item));
  return q;
}

/**
 * A roster push (§2.1.6): <iq type='set'><query xmlns='jabber:iq:roster'
 * [ver='…']><item …/></query></iq>, exactly one item (§2.1.6 rule 1); 'ver'
 * when `version` is not null (roster versioning, §2.6). No 'id', 'to' or 'from': the
 * caller sets id and to (a push has no 'from', or the user's bare JID —
 * §2.1.6 rule 2).
 */
export function rosterPush(item: RosterItem | RosterRemoval, version: number | null): Element {
  const qAttrs: Record<string, string> = { xmlns: ROSTER_NS.roster };
  if (version !== null) qAttrs.ver = String(version);
  const iq = new Element('iq', { type: 'set' });
  iq.c('query', qAttrs).cnode(itemElement(item));
  return iq;
}
