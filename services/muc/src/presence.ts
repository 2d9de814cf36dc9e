/**
 * Occupant presence (XEP-0045 §7.2 entering, §7.6 nick change, §7.7 status
 * change, §7.14 exit, §10.1 creation).
 */
import { Element, parse } from 'ltx';
import { JID, tryParseJid } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import type { MucContext } from './context.js';
import { Prepared, broadcast, toSession } from './deliver.js';
import { replyError } from './reply.js';
import { Room, type Occupant, type OccupantSession } from './room.js';
import { defaultRole, seesRealJids, type Role } from './logic/roles.js';
import { NS_MUC, NS_MUC_USER, userX } from './logic/user-x.js';
import { historyStanza, selectHistory } from './logic/history.js';

/** Result of handling a stanza for the room cache: the room now, or null if it is gone. */
export type RoomAfter = Room | null;

/** Only separators, spaces and control/format characters. */
const INVISIBLE = /^[\s\p{Z}\p{C}]*$/u;

/** Status code 110 (self-presence), 100 (non-anonymous), 201 (created). */
const SELF = 110;

/** The presence a session sent, stripped of addressing and MUC extensions, for storing and relaying. */
function cleanPresence(p: Element): string {
  const copy = new Element('presence', p.attrs.type === 'unavailable' ? { type: 'unavailable' } : {});
  for (const c of p.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns as string | undefined;
    if (c.name === 'x' && (ns === NS_MUC || ns === NS_MUC_USER)) continue;
    copy.children.push(c);
  }
  return copy.toString();
}

/** The presence of occupant `o` as `viewer` sees it, with extra status codes. */
export function occupantPresence(room: Room, o: Occupant, viewer: Occupant | null, codes: number[] = [], extra?: (x: Element) => void): Element {
  const session = o.sessions[o.sessions.length - 1];
  const p = session ? parse(session.presence) : new Element('presence');
  p.attrs.from = room.occupantJid(o.nick);
  const showJid = viewer !== null && (viewer === o || seesRealJids(viewer.role, room.config.whois));
  const x = userX({ affiliation: room.affiliationOf(o.bare), role: o.role, ...(showJid && session ? { jid: session.jid } : {}) }, codes);
  extra?.(x);
  p.children.push(x);
  x.parent = p;
  return p;
}

/** Broadcast `o`'s current presence to everyone (110 on its own copies). */
export function broadcastPresence(ctx: MucContext, room: Room, o: Occupant, codes: number[] = [], extra?: (x: Element, self: boolean) => void): void {
  broadcast(ctx, room, (viewer) => {
    const self = viewer === o;
    return new Prepared(occupantPresence(room, o, viewer, self ? [...codes, SELF] : codes, extra ? (x) => extra(x, self) : undefined));
  });
}

/** The unavailable presence of `o` as `viewer` sees it. */
export function unavailablePresence(room: Room, o: Occupant, viewer: Occupant | null, codes: number[], item: { role?: Role; nick?: string; actorNick?: string; reason?: string } = {}, said?: Element): Element {
  const p = new Element('presence', { from: room.occupantJid(o.nick), type: 'unavailable' });
  // §7.14: the occupant's exit status (what its client said) is passed on.
  for (const c of said?.getChildren('status') ?? []) p.children.push(c);
  const session = o.sessions[o.sessions.length - 1];
  const showJid = viewer !== null && (viewer === o || seesRealJids(viewer.role, room.config.whois));
  p.children.push(userX({
    affiliation: room.affiliationOf(o.bare),
    role: item.role ?? 'none',
    ...(showJid && session ? { jid: session.jid } : {}),
    ...(item.nick !== undefined ? { nick: item.nick } : {}),
    ...(item.actorNick !== undefined ? { actor: { nick: item.actorNick } } : {}),
    ...(item.reason !== undefined ? { reason: item.reason } : {}),
  }, codes));
  return p;
}

export async function handlePresence(ctx: MucContext, room: Room | null, p: Element, from: JID, to: JID): Promise<RoomAfter> {
  const type = p.attrs.type as string | undefined;
  const full = from.toString();
  const current = room?.occupantByJid(full);
  if (type === 'unavailable' || type === 'error') {
    if (room && current) return leave(ctx, room, current, full, type === 'error' ? [333] : [], type === 'unavailable' ? p : undefined);
    return room;
  }
  if (type !== undefined) return room; // subscriptions and probes mean nothing to a room
  if (to.resource === '') {
    // §7.2.1: entering needs a nick.
    replyError(ctx, room, p, new StanzaError('jid-malformed', 'A nickname is required to enter a room'));
    return room;
  }
  const nick = to.resource;
  if (INVISIBLE.test(nick)) {
    // §17.1: a nick must show something (no empty or all-space nicks).
    replyError(ctx, room, p, new StanzaError('not-acceptable', 'A nickname must contain a visible character'));
    return room;
  }
  if (room && current) {
    // A join from a session the room still counts in (the client reconnected
    // before its old session's end reached us): enter again, in full.
    if (current.nick === nick && p.getChild('x', NS_MUC)) return rejoin(ctx, room, current, from, p);
    if (current.nick === nick) return statusChange(ctx, room, current, full, p);
    return changeNick(ctx, room, current, nick, p);
  }
  return join(ctx, room, p, from, to, nick);
}

async function sessionOf(ctx: MucContext, from: JID, presence: string): Promise<OccupantSession> {
  let node: string | null = null;
  let sessionId: string | null = null;
  if (ctx.domains.has(from.domain)) {
    const entry = await ctx.stores.sessions.get(from.toBareString(), from.resource);
    if (entry) {
      node = entry.node;
      sessionId = entry.sessionId;
    }
  }
  return { jid: from.toString(), node, sessionId, presence };
}

async function join(ctx: MucContext, existing: Room | null, p: Element, from: JID, to: JID, nick: string): Promise<RoomAfter> {
  const bare = from.toBareString();
  const mucX = p.getChild('x', NS_MUC);
  const codes: number[] = [];
  let room = existing;
  const fail = (cond: ConstructorParameters<typeof StanzaError>[0], text: string): RoomAfter => {
    replyError(ctx, existing, p, new StanzaError(cond, text));
    return existing;
  };
  if (!room) {
    // §10.1: entering a room that does not exist creates it, within policy.
    const limit = ctx.config.muc.maxRoomsPerUser;
    if (limit === 0) return fail('not-allowed', 'Room creation is disabled on this service');
    if ((await ctx.stores.rooms.ownedBy(bare)).length >= limit) return fail('not-allowed', `You own ${limit} rooms already, the most this service allows`);
    // §10.1.2: with the MUC <x/>, a reserved room stays locked until configured;
    // a client without MUC support gets an instant room (§10.1.3 note).
    room = Room.create(to.bare(), ctx.limits, mucX !== undefined, ctx.now());
    await room.saveMeta(ctx.stores.rooms);
    await room.setAffiliation(ctx.stores.rooms, bare, { affiliation: 'owner' });
    codes.push(201);
  } else {
    const aff = room.affiliationOf(bare);
    if (room.locked && aff !== 'owner') return fail('item-not-found', 'This room is locked until its owner configures it');
    if (aff === 'outcast') return fail('forbidden', 'You are banned from this room');
    if (room.config.membersOnly && aff === 'none') return fail('registration-required', 'This room is for members only');
    const taken = room.occupants.get(nick);
    if (taken && taken.bare !== bare) return fail('conflict', 'That nickname is in use');
    const reserved = room.reservedBy(nick);
    if (reserved !== null && reserved !== bare) return fail('conflict', 'That nickname is reserved');
    if (room.config.password !== '' && aff !== 'owner') {
      const given = mucX?.getChildText('password');
      if (given !== room.config.password) return fail('not-authorized', 'A password is required to enter this room');
    }
    if (!taken) {
      const privileged = aff === 'owner' || aff === 'admin';
      if (room.occupants.size >= ctx.config.muc.maxOccupants || (!privileged && room.occupants.size >= room.config.maxUsers)) {
        replyError(ctx, existing, p, new StanzaError('service-unavailable', 'This room is full', { type: 'wait' }));
        return existing;
      }
    }
  }

  const session = await sessionOf(ctx, from, cleanPresence(p));
  let occupant = room.occupants.get(nick);
  const newOccupant = !occupant;
  if (!occupant) {
    occupant = { nick, bare, role: defaultRole(room.affiliationOf(bare), room.config), sessions: [session] };
  } else {
    occupant.sessions = [...occupant.sessions.filter((s) => s.jid !== session.jid), session];
  }

  // §7.2.3: the existing occupants first, to the new session only.
  sendOccupants(ctx, room, occupant, session);
  await room.putOccupant(ctx.stores.rooms, occupant);

  // Then the new presence to everyone, the self copy last with its status codes.
  if (room.config.whois === 'anyone') codes.push(100);
  for (const viewer of room.occupants.values()) {
    if (viewer === occupant) continue;
    if (!newOccupant) continue; // a second session of the same nick: the others already see it
    const pr = new Prepared(occupantPresence(room, occupant, viewer));
    for (const s of viewer.sessions) toSession(ctx, s, pr);
  }
  toSession(ctx, session, new Prepared(occupantPresence(room, occupant, occupant, [...codes, SELF])));
  sendHistoryAndSubject(ctx, room, session, mucX);
  return room;
}

function sendOccupants(ctx: MucContext, room: Room, occupant: Occupant, session: OccupantSession): void {
  for (const other of room.occupants.values()) {
    if (other === occupant) continue;
    toSession(ctx, session, new Prepared(occupantPresence(room, other, occupant)));
  }
}

/** §7.2.14 history, then §7.2.15 the subject, last. */
function sendHistoryAndSubject(ctx: MucContext, room: Room, session: OccupantSession, mucX: Element | undefined): void {
  for (const h of selectHistory(room.history, mucX?.getChild('history'), ctx.now(), { to: session.jid, roomJid: room.bare })) {
    toSession(ctx, session, new Prepared(historyStanza(h, session.jid, room.bare)));
  }
  const subject = new Element('message', { type: 'groupchat', from: room.subject?.nick ? room.occupantJid(room.subject.nick) : room.bare });
  subject.c('subject').t(room.subject?.text ?? '');
  toSession(ctx, session, new Prepared(subject));
}

async function rejoin(ctx: MucContext, room: Room, o: Occupant, from: JID, p: Element): Promise<RoomAfter> {
  const session = await sessionOf(ctx, from, cleanPresence(p));
  o.sessions = [...o.sessions.filter((s) => s.jid !== session.jid), session];
  await room.putOccupant(ctx.stores.rooms, o);
  sendOccupants(ctx, room, o, session);
  const codes = room.config.whois === 'anyone' ? [100, SELF] : [SELF];
  toSession(ctx, session, new Prepared(occupantPresence(room, o, o, codes)));
  for (const viewer of room.occupants.values()) {
    if (viewer === o) continue;
    const pr = new Prepared(occupantPresence(room, o, viewer));
    for (const s of viewer.sessions) toSession(ctx, s, pr);
  }
  sendHistoryAndSubject(ctx, room, session, p.getChild('x', NS_MUC));
  return room;
}

async function statusChange(ctx: MucContext, room: Room, o: Occupant, full: string, p: Element): Promise<RoomAfter> {
  const s = o.sessions.find((x) => x.jid === full);
  if (!s) return room;
  s.presence = cleanPresence(p);
  // The latest presence is what the room shows for a multi-session nick.
  o.sessions = [...o.sessions.filter((x) => x !== s), s];
  await room.putOccupant(ctx.stores.rooms, o);
  broadcastPresence(ctx, room, o);
  return room;
}

/** §7.6: unavailable with 303 and the new nick, then available under it. */
async function changeNick(ctx: MucContext, room: Room, o: Occupant, nick: string, p: Element): Promise<RoomAfter> {
  const taken = room.occupants.get(nick);
  const reserved = room.reservedBy(nick);
  if ((taken && taken !== o) || (reserved !== null && reserved !== o.bare)) {
    replyError(ctx, room, p, new StanzaError('conflict', 'That nickname is in use'));
    return room;
  }
  const full = String(p.attrs.from);
  const s = o.sessions.find((x) => x.jid === full);
  if (s) s.presence = cleanPresence(p);
  broadcast(ctx, room, (viewer) => new Prepared(unavailablePresence(room, o, viewer, viewer === o ? [303, SELF] : [303], { role: o.role, nick })));
  await room.removeOccupant(ctx.stores.rooms, o);
  o.nick = nick;
  await room.putOccupant(ctx.stores.rooms, o);
  broadcastPresence(ctx, room, o);
  return room;
}

/**
 * §7.14: a session leaves. The occupant leaves with its last session; a
 * temporary room goes with its last occupant (§10.1.3 / muc_temporary).
 */
export async function leave(ctx: MucContext, room: Room, o: Occupant, full: string, codes: number[], said?: Element): Promise<RoomAfter> {
  const session = o.sessions.find((s) => s.jid === full);
  if (!session) return room;
  if (o.sessions.length > 1) {
    toSession(ctx, session, new Prepared(unavailablePresence(room, o, o, [...codes, SELF], {}, said)));
    room.byJid.delete(full);
    o.sessions = o.sessions.filter((s) => s !== session);
    await room.putOccupant(ctx.stores.rooms, o);
    return room;
  }
  broadcast(ctx, room, (viewer) => new Prepared(unavailablePresence(room, o, viewer, viewer === o ? [...codes, SELF] : codes, {}, said)));
  await room.removeOccupant(ctx.stores.rooms, o);
  return closeIfEmpty(ctx, room);
}

/** A temporary room with nobody in it is destroyed. */
export async function closeIfEmpty(ctx: MucContext, room: Room): Promise<RoomAfter> {
  if (room.occupants.size > 0 || room.config.persistent) return room;
  await ctx.stores.rooms.destroy(room.bare);
  return null;
}

/** Real bare JID of a full JID string. */
export function bareOfJid(full: string): string {
  return tryParseJid(full)?.toBareString() ?? full;
}
