/**
 * RFC 6121 at the client edge: the user's presence and roster queries go to
 * the user's actor (this module's operations, actor.ts, run by the roster
 * service); the stream offers roster versioning (§2.6.1) and subscription
 * pre-approval (§3.4). It runs last among the `stanza/out` hooks, so other
 * modules (blocking, avatars, last activity) see a presence before it leaves.
 */
import { Element } from 'ltx';
import type { JID } from '@hyphae/jid';
import { ActorBusyError } from '@hyphae/actor';
import { StanzaError } from '@hyphae/stanza';
import type { Hooks, StreamFeature, StanzaOutEvent } from '@hyphae/module-api';
import { SID_HEADER } from './actor.js';

const ROSTER = 'jabber:iq:roster';
const enc = new TextEncoder();

/**
 * jabber:iq:roster get/set handled by the server: no 'to', or a bare JID.
 * The user's actor answers the user's own and <forbidden/> for any other
 * account (§2.1.5); one addressed to a full JID is an iq for that client
 * and is routed like any other.
 */
function isRosterQuery(iq: Element): boolean {
  const t = iq.attrs.type;
  if (t !== 'get' && t !== 'set') return false;
  const to = iq.attrs.to as string | undefined;
  if (to !== undefined && to.includes('/')) return false;
  return iq.getChild('query', ROSTER) !== undefined;
}

/**
 * Hands the stanza to the user's actor. Whatever the actor could not do
 * comes back as the sender's error, never as silence: an operation that
 * failed there (result 'error': a store timing out, say) rejects with
 * <internal-server-error/>, an owner refusing it for as long as we retried
 * (overloaded) with <resource-constraint/>, both of type 'wait' (RFC 6120
 * §8.3.3.8, §8.3.3.18); the edge answers the stanza with it.
 */
function toActor(e: StanzaOutEvent, op: 'presence-out' | 'roster-iq', from: JID): Promise<'stop'> {
  const headers: Record<string, string> = op === 'presence-out' ? { [SID_HEADER]: e.session.id } : {};
  return e.routing.toUserActor(from, op, enc.encode(e.stanza.toString()), headers).then(
    (result) => {
      if (result === 'error') throw new StanzaError('internal-server-error', 'The server could not process this; try again', { type: 'wait' });
      return 'stop';
    },
    (err: unknown) => {
      if (err instanceof ActorBusyError) throw new StanzaError('resource-constraint', 'The server is overloaded; try again later', { type: 'wait' });
      throw err;
    },
  );
}

export const edgeFeatures: readonly StreamFeature[] = [
  { stage: 'post-auth', offer: () => new Element('ver', { xmlns: 'urn:xmpp:features:rosterver' }) },
  { stage: 'post-auth', offer: () => new Element('sub', { xmlns: 'urn:xmpp:features:pre-approval' }) },
];

export const edgeHooks: Hooks = {
  // Synchronous for everything else: a chat message pays one name check.
  'stanza/out': (e) => {
    const name = e.stanza.name;
    // Presence is the user actor's business: broadcast, probes, subscriptions, directed presence (§3, §4).
    if (name === 'presence') return toActor(e, 'presence-out', e.from);
    if (name === 'iq' && isRosterQuery(e.stanza)) return toActor(e, 'roster-iq', e.from);
    return undefined;
  },
};
