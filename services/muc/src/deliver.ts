/**
 * Outgoing stanzas of a room. Occupant sessions whose c2s node is known get
 * the bytes published straight to that node (one hop, no registry lookup
 * per message: what makes a 400-occupant room cheap); everyone else is
 * reached through the router, via the outbox.
 */
import { Element } from 'ltx';
import { tryParseJid } from '@hyphae/jid';
import { H, c2sSubject } from '@hyphae/router';
import type { MucContext } from './context.js';
import type { Occupant, OccupantSession, Room } from './room.js';

const enc = new TextEncoder();

function escapeAttr(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

const TO_MARK = '\u0001to\u0001';

/**
 * A stanza serialized once for many recipients: only `to` differs, so the
 * XML is split around a placeholder and joined with each recipient's JID.
 */
export class Prepared {
  private readonly parts: [string, string];
  constructor(readonly stanza: Element) {
    const saved = stanza.attrs.to as string | undefined;
    stanza.attrs.to = TO_MARK;
    const xml = stanza.toString();
    if (saved === undefined) delete stanza.attrs.to;
    else stanza.attrs.to = saved;
    const at = xml.indexOf(TO_MARK);
    this.parts = [xml.slice(0, at), xml.slice(at + TO_MARK.length)];
  }

  bytesFor(to: string): Uint8Array {
    return enc.encode(this.parts[0] + escapeAttr(to) + this.parts[1]);
  }
}

/** To one session of an occupant. */
export function toSession(ctx: MucContext, s: OccupantSession, p: Prepared): void {
  if (s.node !== null && s.sessionId !== null) {
    ctx.bus.publish(c2sSubject(s.node), p.bytesFor(s.jid), { [H.sid]: s.sessionId, [H.origin]: ctx.config.nodeId });
    ctx.metrics.stanzas.inc({ direction: 'out', kind: p.stanza.name });
    return;
  }
  const copy = new Element(p.stanza.name, { ...p.stanza.attrs, to: s.jid });
  for (const c of p.stanza.children) copy.children.push(c);
  route(ctx, copy);
}

export function toOccupant(ctx: MucContext, o: Occupant, p: Prepared): void {
  for (const s of o.sessions) toSession(ctx, s, p);
}

/** To every session in the room, optionally with a different stanza per occupant. */
export function broadcast(ctx: MucContext, room: Room, make: (o: Occupant) => Prepared | null): void {
  for (const o of room.occupants.values()) {
    const p = make(o);
    if (p) toOccupant(ctx, o, p);
  }
}

/**
 * Through the router (full routing rules, offline storage, errors back to
 * the room), queued per recipient after the handler returns.
 */
export function route(ctx: MucContext, stanza: Element): void {
  const to = String(stanza.attrs.to ?? '');
  const from = tryParseJid(String(stanza.attrs.from ?? ''));
  if (!from) return;
  ctx.outbox
    .run(to, () => ctx.router.route(stanza, from))
    .catch((err: unknown) => ctx.logger.warn({ err, to }, 'room could not route a stanza'));
}
