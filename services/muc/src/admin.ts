/**
 * muc#admin (XEP-0045 §8 moderator and §9 admin use cases): role and
 * affiliation changes and lists, all-or-nothing per request, with the
 * permission rules of the XEP's tables (logic/roles.ts).
 */
import { Element } from 'ltx';
import { tryParseJid, type JID } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import type { RoomAffiliationKind } from '@hyphae/store';
import type { MucContext } from './context.js';
import { Prepared, broadcast } from './deliver.js';
import { broadcastPresence, closeIfEmpty, unavailablePresence, type RoomAfter } from './presence.js';
import { replyResult } from './reply.js';
import type { Occupant, Room } from './room.js';
import {
  affiliationChangeError, defaultRole, mayListAffiliation, mayListRole, roleChangeError, type Affiliation, type Role,
} from './logic/roles.js';
import { NS_MUC_ADMIN, parseAdminItems } from './logic/user-x.js';

type Change =
  | { kind: 'role'; target: Occupant; role: Role; reason?: string }
  | { kind: 'affiliation'; jid: string; affiliation: Affiliation; nick?: string; reason?: string };

/** Whoever sent the request, as the tables see it. */
function actorOf(room: Room, from: JID): { affiliation: Affiliation; role: Role; occupant?: Occupant } {
  const occupant = room.occupantByJid(from.toString());
  return { affiliation: room.affiliationOf(from.toBareString()), role: occupant?.role ?? 'none', ...(occupant ? { occupant } : {}) };
}

export async function adminGet(ctx: MucContext, room: Room, iq: Element, query: Element, from: JID): Promise<void> {
  const items = parseAdminItems(query);
  const want = items[0];
  if (!want || items.length !== 1 || (want.role === undefined) === (want.affiliation === undefined)) {
    throw new StanzaError('bad-request', 'Ask for one role or one affiliation list');
  }
  const actor = actorOf(room, from);
  const out = new Element('query', { xmlns: NS_MUC_ADMIN });
  if (want.affiliation !== undefined) {
    if (!mayListAffiliation(actor.affiliation, want.affiliation, { whois: room.config.whois })) throw new StanzaError('forbidden', 'You may not see this list');
    if (want.affiliation === 'none') throw new StanzaError('bad-request', 'There is no list of unaffiliated users');
    for (const [jid, a] of [...room.affiliations].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
      if (a.affiliation !== want.affiliation) continue;
      const item = out.c('item', { affiliation: a.affiliation, jid, ...(a.nick ? { nick: a.nick } : {}) });
      if (a.reason) item.c('reason').t(a.reason);
    }
  } else if (want.role !== undefined) {
    if (!mayListRole(actor, want.role)) throw new StanzaError('forbidden', 'You may not see this list');
    for (const o of room.occupants.values()) {
      if (o.role !== want.role) continue;
      const session = o.sessions[o.sessions.length - 1];
      out.c('item', { affiliation: room.affiliationOf(o.bare), role: o.role, nick: o.nick, ...(session ? { jid: session.jid } : {}) });
    }
  }
  replyResult(ctx, room, iq, out);
}

export async function adminSet(ctx: MucContext, room: Room, iq: Element, query: Element, from: JID): Promise<RoomAfter> {
  const actor = actorOf(room, from);
  const items = parseAdminItems(query);
  if (items.length === 0) throw new StanzaError('bad-request', 'No item to change');
  // Validate everything first: a request is applied whole or not at all.
  const changes: Change[] = [];
  let owners = room.ownerCount();
  for (const item of items) {
    if ((item.role === undefined) === (item.affiliation === undefined)) throw new StanzaError('bad-request', 'An item changes either a role or an affiliation');
    if (item.role !== undefined) {
      if (item.nick === undefined) throw new StanzaError('bad-request', 'A role change names the occupant by nick');
      const target = room.occupants.get(item.nick);
      if (!target) throw new StanzaError('item-not-found', `No occupant with nick ${item.nick}`);
      const err = roleChangeError({ affiliation: actor.affiliation, role: actor.role }, { affiliation: room.affiliationOf(target.bare), role: target.role }, item.role);
      if (err) throw err;
      changes.push({ kind: 'role', target, role: item.role, ...(item.reason !== undefined ? { reason: item.reason } : {}) });
    } else if (item.affiliation !== undefined) {
      let jid: string | undefined;
      if (item.jid !== undefined) {
        const parsed = tryParseJid(item.jid);
        if (!parsed) throw new StanzaError('jid-malformed', `Not a JID: ${item.jid}`);
        jid = parsed.toBareString();
      } else if (item.nick !== undefined) {
        jid = room.occupants.get(item.nick)?.bare;
        if (jid === undefined) throw new StanzaError('item-not-found', `No occupant with nick ${item.nick}`);
      } else {
        throw new StanzaError('bad-request', 'An affiliation change names a JID');
      }
      const current = room.affiliationOf(jid);
      const err = affiliationChangeError(actor.affiliation, current, item.affiliation, owners, jid === from.toBareString());
      if (err) throw err;
      if (current === 'owner' && item.affiliation !== 'owner') owners--;
      if (current !== 'owner' && item.affiliation === 'owner') owners++;
      changes.push({ kind: 'affiliation', jid, affiliation: item.affiliation, ...(item.nick !== undefined && item.jid !== undefined ? { nick: item.nick } : {}), ...(item.reason !== undefined ? { reason: item.reason } : {}) });
    }
  }
  replyResult(ctx, room, iq);
  const actorNick = actor.occupant?.nick;
  let after: RoomAfter = room;
  for (const c of changes) {
    if (c.kind === 'role') await applyRole(ctx, room, c.target, c.role, actorNick, c.reason);
    else await applyAffiliation(ctx, room, c.jid, c.affiliation, actorNick, c.reason, c.nick);
  }
  if (room.occupants.size === 0) after = await closeIfEmpty(ctx, room);
  return after;
}

/** §8.2 kick (role none, 307), §8.3–§8.6 voice and moderator changes. */
async function applyRole(ctx: MucContext, room: Room, target: Occupant, role: Role, actorNick: string | undefined, reason?: string): Promise<void> {
  if (role === 'none') {
    await remove(ctx, room, target, [307], actorNick, reason);
    return;
  }
  if (target.role === role) return;
  target.role = role;
  await room.putOccupant(ctx.stores.rooms, target);
  broadcastPresence(ctx, room, target, [], (x) => addActorReason(x, actorNick, reason));
}

/** §9: ban (301), membership, admin and owner grants and revocations. */
async function applyAffiliation(ctx: MucContext, room: Room, jid: string, affiliation: Affiliation, actorNick: string | undefined, reason?: string, nick?: string): Promise<void> {
  const before = room.affiliationOf(jid);
  if (affiliation === 'none') await room.setAffiliation(ctx.stores.rooms, jid, null);
  else await room.setAffiliation(ctx.stores.rooms, jid, { affiliation: affiliation as RoomAffiliationKind, ...(nick ? { nick } : {}), ...(reason ? { reason } : {}) });
  if (before === affiliation) return;
  const present = [...room.occupants.values()].filter((o) => o.bare === jid);
  for (const o of present) {
    if (affiliation === 'outcast') {
      await remove(ctx, room, o, [301], actorNick, reason);
    } else if (room.config.membersOnly && affiliation === 'none') {
      // §9.4: losing membership of a members-only room removes the occupant (321).
      await remove(ctx, room, o, [321], actorNick, reason);
    } else {
      o.role = defaultRole(affiliation, room.config);
      await room.putOccupant(ctx.stores.rooms, o);
      broadcastPresence(ctx, room, o, [], (x) => addActorReason(x, actorNick, reason));
    }
  }
}

function addActorReason(x: Element, actorNick: string | undefined, reason: string | undefined): void {
  const item = x.getChild('item');
  if (!item) return;
  if (actorNick !== undefined && !item.getChild('actor')) item.c('actor', { nick: actorNick });
  if (reason !== undefined && !item.getChild('reason')) item.c('reason').t(reason);
}

/** Removes an occupant with a status code (307 kicked, 301 banned, 321/322 membership). */
export async function remove(ctx: MucContext, room: Room, o: Occupant, codes: number[], actorNick?: string, reason?: string): Promise<void> {
  broadcast(ctx, room, (viewer) => new Prepared(unavailablePresence(room, o, viewer, viewer === o ? [...codes, 110] : codes, {
    ...(actorNick !== undefined ? { actorNick } : {}),
    ...(reason !== undefined ? { reason } : {}),
  })));
  await room.removeOccupant(ctx.stores.rooms, o);
}
