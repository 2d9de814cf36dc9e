/**
 * The roster module's user-actor operations (`hy-op`), run in the user's
 * mailbox in the roster service: roster queries, presence the user sends,
 * subscriptions and probes addressed to the user, session ends, account
 * deletion (RFC 6121 §2–§4, XEP-0077 §3.2).
 */
import { parse, Element, type Element as El } from 'ltx';
import { JID, parseJid, tryParseJid } from '@hyphae/jid';
import type { SessionEndedEvent, UserOpHandler, UserOpRequest } from '@hyphae/module-api';
import { presenceOut, unavailableToDirected } from './presence.js';
import { answerProbe, broadcast } from './broadcast.js';
import { rosterIq } from './roster-query.js';
import { inboundSubscription, SUBSCRIPTION_TYPES, type SubscriptionType } from './subscriptions.js';
import type { RosterContext } from './context.js';

/** For presence-out: the sending session, so the actor updates the right registry entry. */
export const SID_HEADER = 'hy-sid';

const dec = new TextDecoder();
const stanzaOf = (req: UserOpRequest): El => parse(dec.decode(req.data));

/** The operations, given the context of the request's router. */
export function rosterOps(base: Omit<RosterContext, 'router'>): Record<string, UserOpHandler> {
  const ctx = (req: UserOpRequest): RosterContext => ({ ...base, router: req.routing });
  return {
    'roster-iq': async (req) => {
      const iq = stanzaOf(req);
      await rosterIq(ctx(req), iq, parseJid(String(iq.attrs.from)));
      return 'ok';
    },
    'presence-out': async (req) => {
      const p = stanzaOf(req);
      // 'error': not recorded (the registry lacks the session); the edge answers with a wait error.
      return (await presenceOut(ctx(req), p, parseJid(String(p.attrs.from)), req.headers[SID_HEADER] ?? '')) ? 'ok' : 'error';
    },
    /** A subscription stanza or probe addressed to the user (from = the contact's bare JID). */
    'presence-in': async (req) => {
      const p = stanzaOf(req);
      const from = tryParseJid(String(p.attrs.from ?? ''));
      const type = p.attrs.type as string | undefined;
      if (!from) return 'ok';
      // Modules may withhold it (XEP-0191: from a blocked JID, nothing recorded, nothing presented).
      const { modules } = base;
      if (modules.has('presence/in') && (await modules.run('presence/in', { presence: p, user: req.user, from, routing: req.routing })) === 'stop') return 'ok';
      if (type && SUBSCRIPTION_TYPES.has(type)) await inboundSubscription(ctx(req), p, req.user, from.bare(), type as SubscriptionType);
      else if (type === 'probe') await answerProbe(ctx(req), req.user.toBareString(), from.toBareString());
      return 'ok';
    },
    'session-end': async (req) => {
      await sessionEnded(ctx(req), JSON.parse(dec.decode(req.data)) as SessionEndedEvent);
      return 'ok';
    },
    'account-deleted': async (req) => {
      await accountDeleted(ctx(req), req.user);
      return 'ok';
    },
  };
}

/** A session ended (logout, broken connection, dead node): unavailable to everyone who saw it (§4.5.2, §4.6.3). */
async function sessionEnded(ctx: RosterContext, ev: SessionEndedEvent): Promise<void> {
  const full = parseJid(ev.bare).withResource(ev.resource);
  if (ev.available) {
    const p = new Element('presence', { type: 'unavailable', from: full.toString() });
    await broadcast(ctx, ev.bare, p);
    await ctx.router.route(p, full); // the user's other resources
  }
  await unavailableToDirected(ctx, full);
}

/**
 * XEP-0077 cancellation: in the user's own mailbox, so nothing interleaves —
 * contacts and directed-presence recipients get unavailable from each live
 * session, then the roster and pending requests go, then every module's
 * data (offline messages, blocklist, vCard, …). The sessions' own
 * session-end (when c2s closes them) then finds nobody to tell.
 */
async function accountDeleted(ctx: RosterContext, user: JID): Promise<void> {
  const bare = user.toBareString();
  for (const s of await ctx.stores.sessions.list(bare)) {
    await sessionEnded(ctx, { bare, resource: s.resource, sessionId: s.sessionId, available: s.available, reason: 'account deleted' });
  }
  await Promise.all([ctx.stores.rosters.deleteAll(bare), ctx.stores.presence.deleteAll(bare)]);
  await ctx.modules.lifecycle('account/deleted', { user: user.bare() }, (err) => ctx.logger.warn({ err, user: bare }, 'a module could not forget a deleted account'));
}
