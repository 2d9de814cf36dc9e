import type { Element } from 'ltx';
import { StanzaError, errorReply, iqResult, canReplyWithError } from '@hyphae/stanza';
import type { MucContext } from './context.js';
import { Prepared, route, toSession } from './deliver.js';
import type { Room } from './room.js';

/**
 * Sends `reply` to the original sender: straight to its session when it is
 * an occupant (so it stays in order with what the room sends it), else
 * through the router.
 */
export function sendReply(ctx: MucContext, room: Room | null, reply: Element): void {
  const to = String(reply.attrs.to ?? '');
  const occ = room?.occupantByJid(to);
  const session = occ?.sessions.find((s) => s.jid === to);
  if (session) toSession(ctx, session, new Prepared(reply));
  else route(ctx, reply);
}

/** RFC 6120 §8.3: the error reply to `stanza` (nothing for an error). */
export function replyError(ctx: MucContext, room: Room | null, stanza: Element, err: StanzaError): void {
  if (!canReplyWithError(stanza)) return;
  ctx.metrics.stanzaErrors.inc({ condition: err.condition });
  sendReply(ctx, room, errorReply(stanza, err));
}

export function replyResult(ctx: MucContext, room: Room | null, iq: Element, payload?: Element): void {
  sendReply(ctx, room, iqResult(iq, payload));
}
