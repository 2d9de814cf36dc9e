/** What the parts of the blocking module share (index.ts builds it). */
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import type { MapStore, RosterStore, SessionStore } from '@hyphae/store';

export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
/**
 * Registry flag of a session whose user blocks anyone: routers check the
 * blocklist on `message/deliver` only for recipients that carry it.
 */
export const BLOCKING_FLAG = 'blocking';

export type Direction = 'in' | 'out';

export interface BlockingContext {
  /** map('blocklist'): owner bare JID → blocked JID (prepared) → true. */
  store: MapStore<true>;
  rosters: Pick<RosterStore, 'get'>;
  sessions: Pick<SessionStore, 'list'>;
  maxItems: number;
  /** Counts a stanza withheld: 'in' from a blocked JID to the user, 'out' from the user to one. */
  count(direction: Direction): void;
  /** Logs a failure of background work (pushes, presence, flags) that has no sender to answer. */
  warn(err: unknown, msg: string): void;
}

/** The owner's list as a set. */
export async function loadList(ctx: BlockingContext, owner: string): Promise<Set<string>> {
  return new Set((await ctx.store.all(owner)).map(([jid]) => jid));
}

/**
 * §3.3: the error for a stanza the user sends to a blocked JID —
 * <not-acceptable/> of type cancel (the XEP's example) with <blocked/>.
 */
export function blockedError(): StanzaError {
  const appCondition = new Element('blocked', { xmlns: NS_BLOCKING_ERRORS });
  return new StanzaError('not-acceptable', undefined, { type: 'cancel', appCondition });
}
