/**
 * XEP-0280 §6: which messages are carbon-copied, and how a copy is wrapped
 * (§7, §8: XEP-0297 forwarding inside <received/> or <sent/>).
 */
import { Element } from 'ltx';
import { NS, cloneElement } from '@hyphae/stanza';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
/** XEP-0280 §6: a server that applies the eligibility rules of this version says so. */
export const NS_CARBONS_RULES = 'urn:xmpp:carbons:rules:0';
export const NS_FORWARD = 'urn:xmpp:forward:0';
/** XEP-0334 Message Processing Hints. */
export const NS_HINTS = 'urn:xmpp:hints';
const NS_CONFERENCE = 'jabber:x:conference';
/** Payloads of instant messaging without a body (§6): chat states, receipts, markers. */
const IM_PAYLOADS: ReadonlySet<string> = new Set([
  'http://jabber.org/protocol/chatstates', // XEP-0085
  'urn:xmpp:receipts', // XEP-0184
  'urn:xmpp:chat-markers:0', // XEP-0333
]);

/** Whether the message went out from the user (a <sent/> copy) or came in to the user (<received/>). */
export type Direction = 'sent' | 'received';

/** Why a message is not copied; null when it is. */
export type NotCopied = 'private' | 'no-copy' | 'carbon' | 'type' | 'muc-pm' | 'not-im';

/**
 * §6's suggested rules, which this server applies (and announces with
 * urn:xmpp:carbons:rules:0):
 * - never a message marked <private/> (§9) or with XEP-0334's <no-copy/>;
 * - never a copy itself (a <sent/> or <received/> child): no loops, and a
 *   copy forged by someone else is not passed on with our bare JID;
 * - type chat, or normal with a body, an IM payload, or a MUC invitation
 *   (direct, XEP-0249, or mediated, XEP-0045 §7.8.2);
 * - groupchat never; error and headline never (an error would need the
 *   correlation §6 calls unlikely to be appropriate);
 * - a private message from a MUC occupant (a full JID, with the muc#user
 *   <x/>) is not copied on receipt: the room sends it to every joined
 *   client; the user's own private messages to an occupant are (§6).
 */
export function notCopied(m: Element, direction: Direction, fromFullJid: boolean): NotCopied | null {
  let body = false;
  let im = false;
  let mucUser: Element | null = null;
  for (const c of m.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns as string | undefined;
    if (ns === NS_CARBONS) {
      if (c.name === 'private') return 'private';
      if (c.name === 'sent' || c.name === 'received') return 'carbon';
    } else if (ns === NS_HINTS) {
      if (c.name === 'no-copy') return 'no-copy';
    } else if (ns === undefined || ns === NS.client) {
      if (c.name === 'body') body = true;
    } else if (ns === NS.mucUser && c.name === 'x') {
      mucUser = c;
    } else if (IM_PAYLOADS.has(ns) || (ns === NS_CONFERENCE && c.name === 'x')) {
      im = true;
    }
  }
  const type = (m.attrs.type as string | undefined) ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return 'type';
  if (mucUser && direction === 'received' && fromFullJid) return 'muc-pm';
  if (type === 'chat' || body || im || mucUser?.getChild('invite') !== undefined) return null;
  return 'not-im';
}

/** Removes the <private/> marks (§9: the receiving server SHOULD, before delivery). */
export function stripPrivate(m: Element): void {
  m.children = m.children.filter((c) => typeof c === 'string' || c.name !== 'private' || c.attrs.xmlns !== NS_CARBONS);
}

/**
 * The forwarded original, ready to be wrapped: a copy taken now, so what
 * later hooks or routing do to the stanza does not change it, qualified
 * with jabber:client (inside <forwarded/> the default namespace is
 * XEP-0297's, §7's and §8's examples qualify it).
 */
export function forwardedCopy(m: Element): Element {
  const copy = cloneElement(m);
  copy.attrs.xmlns = NS.client;
  return copy;
}

/**
 * §7/§8: from the user's bare JID, to the full JID of the resource that
 * gets it, the original's type kept; <received/> or <sent/> holding a
 * XEP-0297 <forwarded/> with the original.
 */
export function wrap(direction: Direction, inner: Element, bare: string, to: string): Element {
  const attrs: Record<string, string> = { from: bare, to };
  const type = inner.attrs.type as string | undefined;
  if (type !== undefined) attrs.type = type;
  const outer = new Element('message', attrs);
  outer.c(direction, { xmlns: NS_CARBONS }).c('forwarded', { xmlns: NS_FORWARD }).cnode(inner);
  return outer;
}
