/**
 * Subscription stanzas (RFC 6121 §3), outbound (sent by the user) and
 * inbound (sent to the user), applied to the stored roster through the
 * state tables of Appendix A (logic/subscription.ts).
 */
import { Element } from 'ltx';
import { JID, parseJid, tryParseJid } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import type { RosterItem } from '@hyphae/store';
import { inbound, outbound, type SubState } from './logic/subscription.js';
import { pushItem } from './pushes.js';
import { sendPresenceOf, sendUnavailableOf } from './broadcast.js';
import { later, type RosterContext } from './context.js';

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

const enc = new TextEncoder();

async function load(ctx: RosterContext, user: string, contact: string): Promise<{ state: SubState; item: RosterItem | null }> {
  const [item, pendingIn] = await Promise.all([
    ctx.stores.rosters.getItem(user, contact),
    ctx.stores.presence.hasPendingIn(user, contact),
  ]);
  return {
    item,
    state: {
      subscription: item?.subscription ?? 'none',
      ask: item?.ask ?? false,
      approved: item?.approved ?? false,
      pendingIn,
      inRoster: item !== null,
    },
  };
}

/** Persists the new state; returns the stored item (null when none) and the new version when the roster changed. */
async function save(ctx: RosterContext, user: string, contact: string, before: { state: SubState; item: RosterItem | null }, next: SubState, stanza: Element): Promise<{ item: RosterItem | null; version: number | null }> {
  if (next.pendingIn !== before.state.pendingIn) {
    if (next.pendingIn) await ctx.stores.presence.setPendingIn(user, contact, stanza.toString());
    else await ctx.stores.presence.removePendingIn(user, contact);
  }
  const s = before.state;
  const changed = next.inRoster !== s.inRoster || next.subscription !== s.subscription || next.ask !== s.ask || next.approved !== s.approved;
  if (!changed) return { item: before.item, version: null };
  if (!next.inRoster) {
    const version = await ctx.stores.rosters.removeItem(user, contact);
    return { item: null, version };
  }
  const item: RosterItem = {
    jid: contact,
    ...(before.item?.name !== undefined ? { name: before.item.name } : {}),
    groups: before.item?.groups ?? [],
    subscription: next.subscription,
    ask: next.ask,
    approved: next.approved,
  };
  const version = await ctx.stores.rosters.setItem(user, item);
  return { item, version };
}

function subscriptionStanza(type: SubscriptionType, from: string, to: string, original?: Element): Element {
  const p = new Element('presence', { type, from, to });
  // Keep what the sender attached (e.g. a <status/> with the request, a nick).
  if (original) for (const c of original.getChildElements()) if (c.name !== 'error') p.cnode(c);
  return p;
}

/**
 * Hands a subscription stanza to the contact's side, through the outbox (see
 * RosterContext.outbox), then runs `after` in the same order.
 */
function forward(ctx: RosterContext, contact: JID, stanza: Element, after?: () => Promise<void>): void {
  later(ctx, contact.toBareString(), async () => {
    if (!ctx.domains.has(contact.domain)) {
      // A remote contact: through federation (the router bounces when it is off).
      await ctx.router.send(stanza);
    } else {
      await ctx.router.toUserActor(contact, 'presence-in', enc.encode(stanza.toString()));
    }
    if (after) await after();
  });
}

/** §3.1.2, §3.2.2, §3.3.2, §3.4: a subscription stanza sent by `from` (the user). */
export async function outboundSubscription(ctx: RosterContext, stanza: Element, from: JID, type: SubscriptionType): Promise<void> {
  const to = tryParseJid(String(stanza.attrs.to ?? ''));
  if (!to) return ctx.router.bounce(stanza, from, new StanzaError('jid-malformed'));
  const contact = to.bare();
  const user = from.toBareString();
  if (contact.toBareString() === user) return; // subscribing to oneself means nothing
  const before = await load(ctx, user, contact.toBareString());
  const r = outbound(before.state, type);
  const saved = await save(ctx, user, contact.toBareString(), before, r.next, stanza);
  if (r.push && saved.version !== null) await pushItem(ctx, user, saved.item ?? { jid: contact.toBareString(), remove: true }, saved.version);
  const c = contact.toBareString();
  // §3.2.2: a contact losing 'from' gets unavailable before the unsubscribed.
  if (r.presence === 'unavailable') later(ctx, c, () => sendUnavailableOf(ctx, user, c));
  if (!r.forward) return;
  // §3.1.2: the server stamps the user's bare JID on outbound subscription
  // stanzas. §3.1.5: a contact gaining 'from' then gets the current presence.
  forward(ctx, contact, subscriptionStanza(type, user, c, stanza),
    r.presence === 'current' ? () => sendPresenceOf(ctx, user, c) : undefined);
}

/** Appendix A.3: a subscription stanza from `contact` arriving for the user `user`. */
export async function inboundSubscription(ctx: RosterContext, stanza: Element, user: JID, contact: JID, type: SubscriptionType): Promise<void> {
  const userBare = user.toBareString();
  const contactBare = contact.toBareString();
  const before = await load(ctx, userBare, contactBare);
  const r = inbound(before.state, type);
  const presented = subscriptionStanza(type, contactBare, userBare, stanza);
  const saved = await save(ctx, userBare, contactBare, before, r.next, presented);
  if (r.push && saved.version !== null) await pushItem(ctx, userBare, saved.item ?? { jid: contactBare, remove: true }, saved.version);
  // §3.1.5: a contact gaining 'from' sees the user's presence; §3.3.3: one
  // losing it gets unavailable.
  const presence = r.presence === 'current' ? () => sendPresenceOf(ctx, userBare, contactBare)
    : r.presence === 'unavailable' ? () => sendUnavailableOf(ctx, userBare, contactBare)
    : undefined;
  if (r.autoReply === 'subscribed') {
    // §3.1.3: already approved (pre-approval, or 'from'/'both'): answer for the user.
    forward(ctx, contact, subscriptionStanza('subscribed', userBare, contactBare), presence);
    return;
  }
  if (r.deliver) await ctx.router.deliverToResources(presented, userBare);
  if (presence) later(ctx, contactBare, presence);
}

/** §2.5.2: removing an item cancels the subscriptions both ways. */
export async function cancelBothWays(ctx: RosterContext, user: JID, item: RosterItem, pendingIn: boolean): Promise<void> {
  const contact = parseJid(item.jid);
  const userBare = user.toBareString();
  if (item.subscription === 'to' || item.subscription === 'both' || item.ask) {
    forward(ctx, contact, subscriptionStanza('unsubscribe', userBare, item.jid));
  }
  if (item.subscription === 'from' || item.subscription === 'both') {
    // §3.2.2: unavailable first, then the cancellation.
    later(ctx, item.jid, () => sendUnavailableOf(ctx, userBare, item.jid));
    forward(ctx, contact, subscriptionStanza('unsubscribed', userBare, item.jid));
  } else if (pendingIn) {
    forward(ctx, contact, subscriptionStanza('unsubscribed', userBare, item.jid));
  }
  if (pendingIn) await ctx.stores.presence.removePendingIn(userBare, item.jid);
}

