/**
 * Presence sent by the user (RFC 6121 §4): availability broadcast with the
 * registry updated first, initial-presence duties (the other resources'
 * presence, probes, pending subscription requests, then the presence/initial
 * hook), directed presence tracking, and unavailable on the way out.
 */
import { Element, parse } from 'ltx';
import { JID, tryParseJid } from '@hyphae/jid';
import { broadcast, presenceOf, probeContacts } from './broadcast.js';
import { outboundSubscription, SUBSCRIPTION_TYPES, type SubscriptionType } from './subscriptions.js';
import type { SessionPatch } from '@hyphae/store';
import type { RosterContext } from './context.js';

export async function presenceOut(ctx: RosterContext, stanza: Element, from: JID, sessionId: string): Promise<void> {
  const type = stanza.attrs.type as string | undefined;
  if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) return outboundSubscription(ctx, stanza, from, type as SubscriptionType);
  if (type === 'probe' || type === 'error') return; // clients do not probe (§4.3); errors end here
  if (stanza.attrs.to) return directed(ctx, stanza, from, type);
  return availability(ctx, stanza, from, sessionId, type === 'unavailable');
}

/** §4.6: directed presence outside the roster is remembered so unavailable follows later. */
async function directed(ctx: RosterContext, stanza: Element, from: JID, type: string | undefined): Promise<void> {
  const to = tryParseJid(String(stanza.attrs.to));
  if (to && (type === undefined || type === 'unavailable')) {
    const item = await ctx.stores.rosters.getItem(from.toBareString(), to.toBareString());
    const watcher = item && (item.subscription === 'from' || item.subscription === 'both');
    if (!watcher) {
      if (type === undefined) await ctx.stores.presence.addDirected(from.toString(), to.toString());
      else await ctx.stores.presence.removeDirected(from.toString(), to.toString());
    }
  }
  await ctx.router.route(stanza, from);
}

async function availability(ctx: RosterContext, stanza: Element, from: JID, sessionId: string, unavailable: boolean): Promise<void> {
  const user = from.toBareString();
  const entry = await ctx.stores.sessions.get(user, from.resource);
  if (!entry || entry.sessionId !== sessionId) return; // that session is gone already
  const initial = !unavailable && !entry.available;
  const priority = unavailable ? entry.priority : Number(stanza.getChildText('priority') ?? 0) || 0;
  // Only what changed: a status change with the same availability and priority
  // leaves the routers' session caches valid (announceSessionChanges).
  const patch: SessionPatch = { presence: unavailable ? '' : stanza.toString() };
  if (entry.available === unavailable) patch.available = !unavailable;
  if (entry.priority !== priority) patch.priority = priority;
  await ctx.stores.sessions.update(user, from.resource, sessionId, patch);
  await broadcast(ctx, user, stanza);
  // The user's other resources see it too (§4.2.2, §4.4.2).
  await ctx.router.route(stanza, from);
  if (unavailable) {
    await unavailableToDirected(ctx, from);
    return;
  }
  if (!initial) return;
  await presenceOfOtherResources(ctx, user, from);
  await probeContacts(ctx, user, from.toString());
  await deliverPendingRequests(ctx, user, from);
  // What else waited for this resource (XEP-0160 offline messages: the offline module).
  await ctx.modules.lifecycle('presence/initial', { session: from, routing: ctx.router }, (err) => ctx.logger.warn({ err, user }, 'a module failed on initial presence'));
}

/** §4.2.2: a resource that becomes available also gets the presence of the user's other available resources. */
async function presenceOfOtherResources(ctx: RosterContext, user: string, session: JID): Promise<void> {
  for (const s of await ctx.stores.sessions.list(user)) {
    if (s.resource === session.resource) continue;
    const p = presenceOf(s, user);
    if (!p) continue;
    p.attrs.to = session.toString();
    await ctx.router.deliverToSession(p, user, session.resource);
  }
}

/** §4.6.3: everyone who got directed presence gets unavailable too. */
export async function unavailableToDirected(ctx: RosterContext, from: JID): Promise<void> {
  for (const to of await ctx.stores.presence.takeDirected(from.toString())) {
    await ctx.router.send(new Element('presence', { type: 'unavailable', from: from.toString(), to }));
  }
}

/** §3.1.3: subscription requests that arrived while the user was away. */
async function deliverPendingRequests(ctx: RosterContext, user: string, session: JID): Promise<void> {
  for (const { stanza } of await ctx.stores.presence.listPendingIn(user)) {
    try {
      const p = parse(stanza);
      p.attrs.to = user;
      await ctx.router.deliverToSession(p, user, session.resource);
    } catch (err) {
      ctx.logger.warn({ err, user }, 'unreadable pending subscription request');
    }
  }
}
