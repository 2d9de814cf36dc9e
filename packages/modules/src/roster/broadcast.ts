/**
 * Presence fan-out (RFC 6121 §4): to contacts with a 'from' subscription,
 * probes answered from the registry for local contacts, unavailable on the
 * way out. Remote contacts are reached through the router (federation):
 * probes to them, their answers come back as inbound presence.
 */
import { Element, parse } from 'ltx';
import type { SessionEntry } from '@hyphae/store';
import { parseJid } from '@hyphae/jid';
import type { RosterContext } from './context.js';

function domainOf(bare: string): string {
  return bare.slice(bare.indexOf('@') + 1);
}

export function presenceOf(entry: SessionEntry, user: string): Element | null {
  if (!entry.available || !entry.presence) return null;
  try {
    const p = parse(entry.presence);
    p.attrs.from = `${user}/${entry.resource}`;
    return p;
  } catch {
    return null;
  }
}

async function sendTo(ctx: RosterContext, stanza: Element, to: string): Promise<void> {
  const copy = parse(stanza.toString());
  copy.attrs.to = to;
  await ctx.router.send(copy);
}

/** Contacts whose subscription lets them see the user's presence (§4.2.2: 'from' or 'both'). */
export async function watchers(ctx: RosterContext, user: string): Promise<string[]> {
  const roster = await ctx.stores.rosters.get(user);
  return roster.items.filter((i) => i.subscription === 'from' || i.subscription === 'both').map((i) => i.jid);
}

/**
 * Who of `recipients` may get `presence` of `user`: modules withhold it from
 * some (XEP-0191: blocked contacts) through the presence/broadcast hook.
 */
export async function allowedRecipients(ctx: RosterContext, user: string, presence: Element, recipients: string[]): Promise<string[]> {
  if (!ctx.modules.has('presence/broadcast') || recipients.length === 0) return recipients;
  const event = { presence, user: parseJid(user), recipients: [...recipients] };
  await ctx.modules.run('presence/broadcast', event);
  return event.recipients;
}

/** §4.2.2 / §4.4.2 / §4.5.2: a presence of one resource to every watcher. */
export async function broadcast(ctx: RosterContext, user: string, stanza: Element): Promise<void> {
  for (const contact of await allowedRecipients(ctx, user, stanza, await watchers(ctx, user))) await sendTo(ctx, stanza, contact);
}

/** §3.1.5: the current presence of each available resource of `user`, to `contact`. */
export async function sendPresenceOf(ctx: RosterContext, user: string, contact: string): Promise<void> {
  for (const s of await ctx.stores.sessions.list(user)) {
    const p = presenceOf(s, user);
    if (p) await sendTo(ctx, p, contact);
  }
}

/** Unavailable from each available resource of `user`, to `contact` (§3.2.2, §3.3.3). */
export async function sendUnavailableOf(ctx: RosterContext, user: string, contact: string): Promise<void> {
  for (const s of await ctx.stores.sessions.list(user)) {
    if (!s.available) continue;
    await sendTo(ctx, new Element('presence', { type: 'unavailable', from: `${user}/${s.resource}` }), contact);
  }
}

/**
 * §4.2.3 / §4.3.2: the probes of an initial presence, answered from the
 * registry for local contacts: the current presence of each of their
 * available resources goes to the new session.
 */
export async function probeContacts(ctx: RosterContext, user: string, fullJid: string): Promise<void> {
  const roster = await ctx.stores.rosters.get(user);
  for (const item of roster.items) {
    if (item.subscription !== 'to' && item.subscription !== 'both') continue;
    if (!ctx.domains.has(domainOf(item.jid))) {
      // §4.3.1: a remote contact's server answers a probe from the user's bare JID.
      await ctx.router.send(new Element('presence', { type: 'probe', from: user, to: item.jid }));
      continue;
    }
    // The contact may withhold its presence from the user (XEP-0191 blocking), as answerProbe asks.
    const probe = new Element('presence', { type: 'probe', from: user, to: item.jid });
    if ((await allowedRecipients(ctx, item.jid, probe, [user])).length === 0) continue;
    for (const s of await ctx.stores.sessions.list(item.jid)) {
      const p = presenceOf(s, item.jid);
      if (!p) continue;
      p.attrs.to = fullJid;
      await ctx.router.send(p);
    }
  }
}

/**
 * §4.3.2: a probe from `contact` (a remote server asking on a user's behalf)
 * to the local `user`. With a 'from' or 'both' subscription the contact gets
 * the presence of each available resource, or unavailable when there is
 * none; without one, nothing is revealed and the contact gets
 * 'unsubscribed' (§4.3.2 rule 2).
 */
export async function answerProbe(ctx: RosterContext, user: string, contact: string): Promise<void> {
  const item = await ctx.stores.rosters.getItem(user, contact);
  // A contact the user withholds presence from (XEP-0191 blocking) learns nothing.
  const probe = new Element('presence', { type: 'probe', from: contact, to: user });
  if ((await allowedRecipients(ctx, user, probe, [contact])).length === 0) return;
  if (!item || (item.subscription !== 'from' && item.subscription !== 'both')) {
    await ctx.router.send(new Element('presence', { type: 'unsubscribed', from: user, to: contact }));
    return;
  }
  let sent = 0;
  for (const s of await ctx.stores.sessions.list(user)) {
    const p = presenceOf(s, user);
    if (!p) continue;
    await sendTo(ctx, p, contact);
    sent++;
  }
  if (sent === 0) await sendTo(ctx, new Element('presence', { type: 'unavailable', from: user }), contact);
}
