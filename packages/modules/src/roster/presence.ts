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

/**
 * False when an available presence could not be recorded because the
 * session is missing from the registry: the registry lags behind a live
 * session (sm reaped its node while its heartbeats were late, or Redis came
 * back empty and the node has not re-recorded it yet), or the session has
 * just ended. The sender is answered with a `wait` error rather than
 * nothing (a client waiting for its own presence, RFC 6121 §4.2.2, would
 * wait forever); one that has ended gets nothing either way.
 */
export async function presenceOut(ctx: RosterContext, stanza: Element, from: JID, sessionId: string): Promise<boolean> {
  const type = stanza.attrs.type as string | undefined;
  if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
    await outboundSubscription(ctx, stanza, from, type as SubscriptionType);
    return true;
  }
  if (type === 'probe' || type === 'error') return true; // clients do not probe (§4.3); errors end here
  if (stanza.attrs.to) {
    await directed(ctx, stanza, from, type);
    return true;
  }
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

async function availability(ctx: RosterContext, stanza: Element, from: JID, sessionId: string, unavailable: boolean): Promise<boolean> {
  const user = from.toBareString();
  const entry = await ctx.stores.sessions.get(user, from.resource);
  // Replaced by a newer session of the same resource: this one is being closed (<conflict/>).
  if (entry && entry.sessionId !== sessionId) return true;
  if (!entry) {
    // Going away anyway; an available presence is answered (see presenceOut).
    if (unavailable) return true;
    ctx.logger.warn({ user, resource: from.resource }, 'presence from a session the registry does not hold (lagging, or just ended): answered with a wait error');
    return false;
  }
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
    return true;
  }
  if (!initial) return true;
  await presenceOfOtherResources(ctx, user, from);
  await probeContacts(ctx, user, from.toString());
  await deliverPendingRequests(ctx, user, from);
  // What else waited for this resource (XEP-0160 offline messages: the offline module).
  await ctx.modules.lifecycle('presence/initial', { session: from, routing: ctx.router }, (err) => ctx.logger.warn({ err, user }, 'a module failed on initial presence'));
  return true;
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
