/**
 * XEP-0191 §3.3 enforcement: "the user's server MUST NOT deliver any XML
 * stanzas from the JID to the user", and MUST NOT route the user's
 * stanzas to it.
 *
 * Each session keeps a copy of its user's list (loaded on `session/bound`,
 * kept current by the pushes of iq.ts as they pass `session/deliver`), so
 * the per-stanza checks on the c2s node cost a Set lookup, and nothing when
 * the list is empty (no parse).
 * - `stanza/out`: to a blocked JID → <not-acceptable/><blocked/> back to
 *   the sender, written to its own stream (a routed error would come "from"
 *   the blocked JID and be dropped on the way in).
 * - `session/deliver`: from a blocked JID → presence dropped silently (any
 *   type, probes and subscriptions included); a message of type normal or
 *   chat answered with <service-unavailable/> (groupchat and headline
 *   dropped: RFC 6121 §8.5 has no error for a headline, and a room may
 *   remove an occupant whose real JID answers with errors, XEP-0045
 *   "Ghost Users" and "Service removes user because of error response");
 *   an iq get/set answered <service-unavailable/>, other iqs dropped.
 *   A MUC private message from room@service/nick is matched like any full JID.
 * - `message/deliver` (router, once per message, before carbons or archives
 *   see it) does the same for messages when a recipient session carries the
 *   registry flag, so a message to the bare JID of a user with two sessions
 *   is answered once; `session/deliver` remains the guard.
 */
import type { Element } from 'ltx';
import { tryParseJid } from '@hyphae/jid';
import { StanzaError, canReplyWithError, errorReply } from '@hyphae/stanza';
import { SessionKey, type ClientSession, type HookResult, type MessageDeliverEvent, type Routing, type SessionDeliverEvent, type StanzaOutEvent } from '@hyphae/module-api';
import { BLOCKING_FLAG, NS_BLOCKING, blockedError, loadList, type BlockingContext } from './context.js';
import { isBlocked, isBlockedAddress } from './match.js';

/** A session's copy of its user's list, and whether it asked for it (§3.3 "resources that have requested the blocklist"). */
export class SessionBlocklist {
  readonly items = new Set<string>();
  interested = false;
  flagged = false;
  loaded = false;
  /** Set while the list is (re)loading; hooks wait for it. */
  pending: Promise<void> | null = null;
  constructor(readonly owner: string) {}
}
export const BLOCKLIST = new SessionKey<SessionBlocklist>('blocking');
const NS_BYTES = Buffer.from(NS_BLOCKING);

const unavailable = (): StanzaError => new StanzaError('service-unavailable');

/** No 'to', or the user's own bare JID: handled by the server for the account (RFC 6120 §10.3.3). */
function toOwnAccount(stanza: Element, owner: string): boolean {
  const to = stanza.attrs.to;
  if (to === undefined || to === '') return true;
  const jid = tryParseJid(String(to));
  return jid !== null && jid.isBare() && jid.toBareString() === owner;
}

export function enforcement(ctx: BlockingContext) {
  /** The registry flag follows whether the list is empty. */
  const syncFlag = (session: ClientSession, st: SessionBlocklist): void => {
    const want = st.items.size > 0;
    if (want === st.flagged) return;
    st.flagged = want;
    session.setFlag(BLOCKING_FLAG, want).catch((err: unknown) => ctx.warn(err, 'could not record the blocking flag'));
  };

  const load = (session: ClientSession, st: SessionBlocklist): Promise<void> => {
    st.pending = loadList(ctx, st.owner).then(
      (list) => {
        st.items.clear();
        for (const j of list) st.items.add(j);
        st.pending = null;
        st.loaded = true;
        syncFlag(session, st);
      },
      (err: unknown) => {
        st.pending = null;
        throw err;
      },
    );
    return st.pending;
  };

  /**
   * The session's state, ready; a promise while it loads. A list that could
   * not be loaded (store outage at bind time) is tried again; if that fails
   * too, the hook fails and the edge's rule applies (logged; a delivery is
   * written as it came, an outbound stanza gets a temporary error).
   */
  const ready = (session: ClientSession): SessionBlocklist | Promise<SessionBlocklist> | undefined => {
    const st = session.get(BLOCKLIST);
    if (!st || (st.loaded && !st.pending)) return st;
    return (st.pending ?? load(session, st)).then(() => st);
  };
  const then = <T>(v: T | Promise<T>, f: (t: T) => HookResult): HookResult | Promise<HookResult> => (v instanceof Promise ? v.then(f) : f(v));

  const bounce = (routing: Routing, stanza: Element, from: string, err: StanzaError): void => {
    const jid = tryParseJid(from);
    if (jid) routing.bounce(stanza, jid, err).catch((e: unknown) => ctx.warn(e, 'could not answer a blocked stanza'));
  };

  /** A push of iq.ts: applied to the copy; kept from a session that has not asked for the list. */
  const applyPush = (e: SessionDeliverEvent, st: SessionBlocklist): HookResult => {
    const iq = e.stanza();
    const change = iq.getChild('block', NS_BLOCKING) ?? iq.getChild('unblock', NS_BLOCKING);
    if (!change) return undefined;
    const jids = change.getChildren('item', NS_BLOCKING).map((i) => String(i.attrs.jid));
    if (change.getName() === 'block') for (const j of jids) st.items.add(j);
    else if (jids.length === 0) st.items.clear();
    else for (const j of jids) st.items.delete(j);
    syncFlag(e.session, st);
    return st.interested ? undefined : 'stop';
  };

  const inbound = (e: SessionDeliverEvent, st: SessionBlocklist | undefined): HookResult => {
    if (!st) return undefined;
    const bytes = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    if (e.kind === 'iq' && bytes.includes(NS_BYTES)) {
      const iq = e.stanza();
      if (iq.attrs.type === 'set' && iq.attrs.from === st.owner) return applyPush(e, st);
    }
    if (st.items.size === 0 || e.kind === 'other') return undefined;
    const stanza = e.stanza();
    const from = stanza.attrs.from;
    if (!isBlockedAddress(st.items, st.owner, from)) return undefined;
    ctx.count('in');
    const type = stanza.attrs.type as string | undefined;
    if (e.kind === 'message' && (type === undefined || type === 'normal' || type === 'chat')) bounce(e.routing, stanza, String(from), unavailable());
    if (e.kind === 'iq' && (type === 'get' || type === 'set')) bounce(e.routing, stanza, String(from), unavailable());
    return 'stop';
  };

  const outbound = (e: StanzaOutEvent, st: SessionBlocklist | undefined): HookResult => {
    if (!st || st.items.size === 0) return undefined;
    const to = e.stanza.attrs.to;
    if (!isBlockedAddress(st.items, st.owner, to)) return undefined;
    ctx.count('out');
    // An error or an iq result cannot be answered with an error (RFC 6120 §8.3.1): it is dropped.
    if (canReplyWithError(e.stanza)) e.session.write(errorReply(e.stanza, blockedError()));
    return 'stop';
  };

  const messageDeliver = async (e: MessageDeliverEvent): Promise<HookResult> => {
    const owner = e.to.toBareString();
    if (!isBlocked(await loadList(ctx, owner), owner, e.from)) return undefined;
    ctx.count('in');
    const type = e.stanza.attrs.type as string | undefined;
    if (type === undefined || type === 'normal' || type === 'chat') await e.routing.bounce(e.stanza, e.from, unavailable());
    return 'stop';
  };

  return {
    'session/bound': async ({ session }: { session: ClientSession }): Promise<void> => {
      const st = new SessionBlocklist(session.jid.toBareString());
      session.set(BLOCKLIST, st);
      await load(session, st);
    },
    'stanza/out': (e: StanzaOutEvent): HookResult | Promise<HookResult> => {
      const st = e.session.get(BLOCKLIST);
      // §3.3: pushes go to the resources that have retrieved the list (asked of their own account).
      if (st && e.stanza.name === 'iq' && e.stanza.attrs.type === 'get' && e.stanza.getChild('blocklist', NS_BLOCKING) && toOwnAccount(e.stanza, st.owner)) {
        st.interested = true;
      }
      return then(ready(e.session), (s) => outbound(e, s));
    },
    'session/deliver': (e: SessionDeliverEvent): HookResult | Promise<HookResult> => then(ready(e.session), (s) => inbound(e, s)),
    'message/deliver': (e: MessageDeliverEvent): HookResult | Promise<HookResult> => {
      if (e.from.toBareString() === e.to.toBareString()) return undefined;
      if (!e.sessions.some((s) => s.flags?.includes(BLOCKING_FLAG))) return undefined;
      return messageDeliver(e);
    },
  };
}
