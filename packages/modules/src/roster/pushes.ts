/** Roster pushes (RFC 6121 §2.1.6) to every resource of the user. */
import { randomBytes } from 'node:crypto';
import type { RosterItem } from '@hyphae/store';
import { rosterPush } from './logic/roster-iq.js';
import type { RosterContext } from './context.js';

/**
 * Pushes go to every bound resource rather than only those that have
 * requested the roster ("interested resources"): the registry does not
 * record roster requests, and a push to a client that has not asked is
 * harmless (it may ignore it).
 */
export async function pushItem(ctx: RosterContext, user: string, item: RosterItem | { jid: string; remove: true }, version: number): Promise<void> {
  const sessions = await ctx.stores.sessions.list(user);
  for (const s of sessions) {
    const iq = rosterPush(item, version);
    iq.attrs.id = `push-${randomBytes(6).toString('hex')}`;
    iq.attrs.to = `${user}/${s.resource}`;
    await ctx.router.send(iq);
  }
}
