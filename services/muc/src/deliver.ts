/**
 * Outgoing stanzas of a room. Occupant sessions whose c2s node is known get
 * the bytes published straight to that node (one hop, no registry lookup
 * per message: what makes a 400-occupant room cheap), fenced by two
 * requests per node and tick that tell whether the node took them, in
 * order per node also across a bus outage (the router's lanes, 'fenced');
 * everyone else is reached through the router, via the outbox.
 * What a stanza sent to many became is tallied by a Fanout, so that a
 * groupchat message some occupants missed is answered to its sender
 * (XEP-0045 §7.4: the room reflects it to every occupant) — never a silent
 * partial broadcast.
 */
import { Element } from 'ltx';
import { tryParseJid } from '@hyphae/jid';
import type { DeliveryOutcome } from '@hyphae/router';
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

/**
 * The outcomes of one stanza sent to several occupant sessions: once every
 * delivery is acknowledged or given up, `settled`'s callback hears how many
 * sessions missed it (their node did not acknowledge it in time, or could
 * not be reached within the hold time). A session that is gone is not an
 * occupant any more (its unavailable presence follows): not missed.
 */
export class Fanout {
  private pending = 0;
  private missed = 0;
  private then: ((missed: number) => void) | null = null;
  private sealed = false;

  /** The `done` of one delivery. */
  expect(): (outcome: DeliveryOutcome) => void {
    this.pending++;
    return (outcome) => {
      if (outcome === 'unanswered' || outcome === 'unreachable') this.missed++;
      this.pending--;
      this.check();
    };
  }

  /** No more deliveries: `then` runs once they are all in (at once if they are). */
  settled(then: (missed: number) => void): void {
    this.sealed = true;
    this.then = then;
    this.check();
  }

  private check(): void {
    if (!this.sealed || this.pending > 0 || !this.then) return;
    const then = this.then;
    this.then = null;
    then(this.missed);
  }
}

/** The lanes log deliveries they give up; a stanza nobody answers for needs no more. */
const unheeded = (): void => undefined;

/** To one session of an occupant; `fan` tallies the outcome. */
export function toSession(ctx: MucContext, s: OccupantSession, p: Prepared, fan?: Fanout): void {
  if (s.node !== null && s.sessionId !== null) {
    ctx.router.toNode(s.node, s.sessionId, p.bytesFor(s.jid), 'fenced', fan ? fan.expect() : unheeded);
    ctx.metrics.stanzas.inc({ direction: 'out', kind: p.stanza.name });
    return;
  }
  const copy = new Element(p.stanza.name, { ...p.stanza.attrs, to: s.jid });
  for (const c of p.stanza.children) copy.children.push(c);
  route(ctx, copy);
}

export function toOccupant(ctx: MucContext, o: Occupant, p: Prepared, fan?: Fanout): void {
  for (const s of o.sessions) toSession(ctx, s, p, fan);
}

/** To every session in the room, optionally with a different stanza per occupant. */
export function broadcast(ctx: MucContext, room: Room, make: (o: Occupant) => Prepared | null, fan?: Fanout): void {
  for (const o of room.occupants.values()) {
    const p = make(o);
    if (p) toOccupant(ctx, o, p, fan);
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
