/** Roster get and set (RFC 6121 §2.2, §2.3, §2.5) with versioning (§2.6). */
import type { Element } from 'ltx';
import { JID, tryParseJid } from '@hyphae/jid';
import { StanzaError, iqResult } from '@hyphae/stanza';
import type { RosterItem } from '@hyphae/store';
import { parseRosterQuery, rosterResult } from './logic/roster-iq.js';
import { pushItem } from './pushes.js';
import { cancelBothWays } from './subscriptions.js';
import type { RosterContext } from './context.js';

export async function rosterIq(ctx: RosterContext, iq: Element, from: JID): Promise<void> {
  try {
    const reply = await answer(ctx, iq, from);
    reply.attrs.to = from.toString();
    delete reply.attrs.from;
    await ctx.router.send(reply);
  } catch (e) {
    if (!(e instanceof StanzaError)) throw e;
    await ctx.router.bounce(iq, from, e);
  }
}

async function answer(ctx: RosterContext, iq: Element, from: JID): Promise<Element> {
  const user = from.toBareString();
  const to = iq.attrs.to as string | undefined;
  // §2.1.5: only the user's own roster, addressed to no one or to the bare JID.
  if (to !== undefined && to !== user) throw new StanzaError('forbidden');
  const cfg = ctx.config.roster;
  const q = parseRosterQuery(iq, { maxNameLength: cfg.maxNameLength, maxGroups: 100, maxGroupLength: cfg.maxNameLength, owner: user });
  if (q.kind === 'get') {
    const roster = await ctx.stores.rosters.get(user);
    // §2.6.3: a client that is up to date gets an empty result.
    if (q.ver !== undefined && q.ver === String(roster.version)) return iqResult(iq);
    return iqResult(iq, rosterResult(roster, true));
  }
  const { item } = q;
  const contact = tryParseJid(item.jid);
  if (!contact) throw new StanzaError('jid-malformed');
  const existing = await ctx.stores.rosters.getItem(user, item.jid);
  if (item.remove) {
    // §2.5.3: removing what is not there.
    if (!existing) throw new StanzaError('item-not-found');
    const pendingIn = await ctx.stores.presence.hasPendingIn(user, item.jid);
    const version = await ctx.stores.rosters.removeItem(user, item.jid);
    if (version !== null) await pushItem(ctx, user, { jid: item.jid, remove: true }, version);
    await cancelBothWays(ctx, from, existing, pendingIn);
    return iqResult(iq);
  }
  if (!existing && (await ctx.stores.rosters.count(user)) >= cfg.maxItems) {
    throw new StanzaError('not-acceptable', `A roster holds at most ${cfg.maxItems} items`);
  }
  // §2.3.2: the client sets name and groups; subscription state stays the server's.
  const next: RosterItem = {
    jid: item.jid,
    ...(item.name !== undefined ? { name: item.name } : {}),
    groups: item.groups,
    subscription: existing?.subscription ?? 'none',
    ask: existing?.ask ?? false,
    approved: existing?.approved ?? false,
  };
  const version = await ctx.stores.rosters.setItem(user, next);
  await pushItem(ctx, user, next, version);
  return iqResult(iq);
}
