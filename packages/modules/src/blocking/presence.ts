/**
 * XEP-0191 §3.3/§3.4: presence when the list changes, "only if the JID is
 * allowed to receive presence notifications from the user" (RFC 6121
 * §4.2.2: a contact with a 'from' or 'both' subscription).
 * - Block: unavailable presence from each available resource of the user
 *   to the newly blocked JID — the user appears offline to it. Later
 *   broadcasts withhold the user's presence (presence/broadcast in enforce.ts).
 * - Unblock: the user's current presence (each available resource's last
 *   broadcast) to the JID, unless another item still blocks it.
 * A blocked item that names a domain reaches every such contact at that
 * domain; a full JID item reaches that resource of a contact.
 */
import { Element, parse } from 'ltx';
import { parseJid, type JID } from '@hyphae/jid';
import type { Routing } from '@hyphae/module-api';
import { cloneElement } from '@hyphae/stanza';
import type { SessionEntry } from '@hyphae/store';
import { isBlocked } from './match.js';
import type { BlockingContext } from './context.js';

/** The user's contacts who may see the user's presence (bare JIDs). */
async function watchers(ctx: BlockingContext, owner: string): Promise<JID[]> {
  const roster = await ctx.rosters.get(owner);
  return roster.items.filter((i) => i.subscription === 'from' || i.subscription === 'both').map((i) => parseJid(i.jid));
}

/**
 * Where presence goes for the given items: a watcher's bare JID for a
 * domain or bare item that covers it; the item itself for a full JID of a
 * watcher. Each address once.
 */
export async function presenceTargets(ctx: BlockingContext, owner: string, items: readonly string[]): Promise<string[]> {
  if (items.length === 0) return [];
  const contacts = await watchers(ctx, owner);
  const targets = new Set<string>();
  for (const item of items) {
    const jid = parseJid(item);
    if (jid.toBareString() === owner) continue;
    if (jid.local !== '' && jid.resource !== '') {
      if (contacts.some((c) => c.toBareString() === jid.toBareString())) targets.add(item);
      continue;
    }
    const only = new Set([item]);
    for (const c of contacts) if (isBlocked(only, owner, c)) targets.add(c.toBareString());
  }
  return [...targets];
}

/** Sends one copy of `p` from the resource of `s` to each target. */
async function fan(routing: Routing, owner: string, s: SessionEntry, p: Element, targets: readonly string[]): Promise<void> {
  const from = parseJid(owner).withResource(s.resource);
  for (const to of targets) {
    const copy = cloneElement(p);
    copy.attrs.from = from.toString();
    copy.attrs.to = to;
    await routing.route(copy, from);
  }
}

export async function presenceAfterBlock(ctx: BlockingContext, routing: Routing, owner: string, added: readonly string[]): Promise<void> {
  const targets = await presenceTargets(ctx, owner, added);
  if (targets.length === 0) return;
  for (const s of await ctx.sessions.list(owner)) {
    if (s.available) await fan(routing, owner, s, new Element('presence', { type: 'unavailable' }), targets);
  }
}

export async function presenceAfterUnblock(
  ctx: BlockingContext, routing: Routing, owner: string, removed: readonly string[], remaining: ReadonlySet<string>,
): Promise<void> {
  const targets = (await presenceTargets(ctx, owner, removed)).filter((t) => !isBlocked(remaining, owner, parseJid(t)));
  if (targets.length === 0) return;
  for (const s of await ctx.sessions.list(owner)) {
    if (!s.available || !s.presence) continue;
    let p: Element;
    try {
      p = parse(s.presence) as Element;
    } catch {
      continue; // the registry holds what the edge wrote; nothing to resend if it is not XML
    }
    await fan(routing, owner, s, p, targets);
  }
}
