/**
 * The muc#user <x/> of room presence (XEP-0045 §7.2.2, §8, §9, §19.2) and
 * the <item/>s of muc#admin queries (§8, §9, §10, schema §19.3).
 */
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import { tryParseJid } from '@hyphae/jid';
import { isAffiliation, isRole, type Affiliation, type Role } from './roles.js';

export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = NS_MUC + '#user';
export const NS_MUC_ADMIN = NS_MUC + '#admin';
export const NS_MUC_OWNER = NS_MUC + '#owner';
export const NS_ROOMCONFIG = NS_MUC + '#roomconfig';
export const NS_ROOMINFO = NS_MUC + '#roominfo';

export interface ItemAttrs {
  affiliation: Affiliation;
  role: Role;
  jid?: string;
  nick?: string;
  actor?: { nick?: string; jid?: string };
  reason?: string;
}

/**
 * `<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation jid? nick? role>
 * [<actor/>][<reason/>]</item><status code/>…</x>` — attributes in the
 * (alphabetical) order of the XEP's examples, <actor/> before <reason/>
 * (§8.2 example), then the status codes, de-duplicated and ascending as in
 * the examples (110 before 307, §8.2). An <actor/> with neither nick nor jid
 * and an empty reason are left out.
 */
export function userX(item: ItemAttrs, codes: readonly number[] = []): Element {
  const x = new Element('x', { xmlns: NS_MUC_USER });
  const attrs: Record<string, string> = { affiliation: item.affiliation };
  if (item.jid !== undefined) attrs.jid = item.jid;
  if (item.nick !== undefined) attrs.nick = item.nick;
  attrs.role = item.role;
  const it = x.c('item', attrs);
  if (item.actor && (item.actor.nick !== undefined || item.actor.jid !== undefined)) {
    const a: Record<string, string> = {};
    if (item.actor.jid !== undefined) a.jid = item.actor.jid;
    if (item.actor.nick !== undefined) a.nick = item.actor.nick;
    it.c('actor', a);
  }
  if (item.reason !== undefined && item.reason !== '') it.c('reason').t(item.reason);
  for (const code of [...new Set(codes)].sort((a, b) => a - b)) {
    if (!Number.isInteger(code) || code < 100 || code > 999) throw new RangeError(`not a MUC status code: ${code}`);
    x.c('status', { code: String(code) });
  }
  return x;
}

export interface AdminItem {
  nick?: string;
  jid?: string;
  role?: Role;
  affiliation?: Affiliation;
  reason?: string;
}

/**
 * The <item/> children of a muc#admin <query/> (§8, §9, §10).
 *
 * Every item must carry exactly one of 'role' and 'affiliation' (§8.5,
 * §9.2, §9.5, §9.8, §10.5, §10.8: a role item "MUST NOT include the
 * 'affiliation' attribute" and vice versa), with a known value; there must
 * be at least one item. In a set (`kind` 'set', or inferred from the
 * parent <iq type='set'/> when `kind` is omitted) every item must also name
 * its target with 'nick' or 'jid' — roles are addressed by nick (§8.2) and
 * affiliations by JID (§9.1), but both are accepted since many clients
 * change affiliations by nick; the caller maps. A get (a list request, §8.5,
 * §9.2 …) needs no target. Everything else is a bad-request, except a
 * 'jid' that is not a JID, which is jid-malformed (RFC 6120 §8.3.3.8); the
 * returned jid is the prepared form (full if a resource was given — the
 * caller takes the bare JID for affiliations, §10.3 "SHOULD use the bare
 * JID representation"). 'nick' is returned as sent ('' included: §9.5 uses
 * it to unset a reserved nick). <reason/> is optional; <actor/> is ignored.
 */
export function parseAdminItems(query: Element, kind?: 'get' | 'set'): AdminItem[] {
  const mode = kind ?? (query.parent instanceof Element && query.parent.attrs.type === 'set' ? 'set' : 'get');
  const items = query.getChildren('item', NS_MUC_ADMIN);
  if (items.length === 0) throw new StanzaError('bad-request', 'the query has no <item/>');
  return items.map((item) => {
    const { role, affiliation, nick, jid } = item.attrs as Record<string, unknown>;
    const out: AdminItem = {};
    if (role !== undefined && affiliation !== undefined) {
      throw new StanzaError('bad-request', 'an item carries either a role or an affiliation, not both');
    }
    if (role !== undefined) {
      if (typeof role !== 'string' || !isRole(role)) throw new StanzaError('bad-request', `unknown role '${String(role)}'`);
      out.role = role;
    } else if (affiliation !== undefined) {
      if (typeof affiliation !== 'string' || !isAffiliation(affiliation)) {
        throw new StanzaError('bad-request', `unknown affiliation '${String(affiliation)}'`);
      }
      out.affiliation = affiliation;
    } else {
      throw new StanzaError('bad-request', 'an item needs a role or an affiliation');
    }
    if (typeof nick === 'string') out.nick = nick;
    if (typeof jid === 'string') {
      const parsed = tryParseJid(jid);
      if (!parsed) throw new StanzaError('jid-malformed', `'${jid}' is not a valid JID`);
      out.jid = parsed.toString();
    }
    if (mode === 'set' && out.jid === undefined && !out.nick) {
      throw new StanzaError('bad-request', 'an item needs a nick or a jid');
    }
    const reason = item.getChild('reason', NS_MUC_ADMIN);
    if (reason) out.reason = reason.getText();
    return out;
  });
}
