/**
 * iq to a room (disco §6.4/§6.5, muc#admin, muc#owner, ping) and to an
 * occupant (§7.5 relayed iq; XEP-0410 self-ping), and to the service.
 */
import { discoInfo } from '@hyphae/modules';
import { Element } from 'ltx';
import type { JID } from '@hyphae/jid';
import { NS, StanzaError, parseRsm, rsmSet } from '@hyphae/stanza';
import type { MucContext } from './context.js';
import { Prepared, route, toOccupant } from './deliver.js';
import { replyError, replyResult } from './reply.js';
import type { Room } from './room.js';
import type { RoomAfter } from './presence.js';
import { adminGet, adminSet } from './admin.js';
import { ownerGet, ownerSet } from './owner.js';
import { relayToOccupant } from './messages.js';
import { roomInfoForm, roomFeatures } from './logic/config.js';
import { NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER } from './logic/user-x.js';

const VCARD = 'vcard-temp';

export async function handleRoomIq(ctx: MucContext, room: Room | null, iq: Element, from: JID, to: JID): Promise<RoomAfter> {
  const type = iq.attrs.type as string;
  if (to.resource !== '') {
    if (room) await occupantIq(ctx, room, iq, from, to, type);
    else if (type === 'get' || type === 'set') replyError(ctx, null, iq, new StanzaError('item-not-found', 'No such room'));
    return room;
  }
  if (type !== 'get' && type !== 'set') return room;
  const payload = iq.getChildElements()[0];
  const xmlns = payload?.attrs.xmlns as string | undefined;
  try {
    // §10.1.1: a locked room does not exist for anyone but its owner.
    if (!room || (room.locked && room.affiliationOf(from.toBareString()) !== 'owner')) throw new StanzaError('item-not-found', 'No such room');
    if (!payload) throw new StanzaError('bad-request', 'Empty iq');
    if (type === 'get' && xmlns === NS.discoInfo) return roomInfo(ctx, room, iq, payload), room;
    if (type === 'get' && xmlns === NS.discoItems) return discoItems(ctx, room, iq, payload, from), room;
    if (type === 'get' && xmlns === NS.ping) return replyResult(ctx, room, iq), room;
    if (xmlns === NS_MUC_ADMIN && payload.name === 'query') {
      if (type === 'get') return await adminGet(ctx, room, iq, payload, from), room;
      return await adminSet(ctx, room, iq, payload, from);
    }
    if (xmlns === NS_MUC_OWNER && payload.name === 'query') {
      if (type === 'get') return await ownerGet(ctx, room, iq, from), room;
      return await ownerSet(ctx, room, iq, payload, from);
    }
    // An iq to the room that a module serves (IqTarget 'room'), in this room's actor.
    const handler = ctx.router.registry.findIq('room', type, xmlns, payload.name);
    if (!handler) throw new StanzaError('service-unavailable');
    const answer = await handler.handle({ iq, payload, from, to: room.jid, routing: ctx.router });
    const isReply = answer !== null && !(answer instanceof Element);
    replyResult(ctx, room, iq, (isReply ? answer.payload : answer) ?? undefined);
    if (isReply) await answer.after();
    return room;
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    replyError(ctx, room, iq, err);
    return room;
  }
}

function roomInfo(ctx: MucContext, room: Room, iq: Element, q: Element): void {
  if (q.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
  // Reflected messages keep their id (§7.4, muc#stable_id); self-pings are answered by the room (XEP-0410).
  // Modules add room features of their own (ModuleInstance.features.room).
  const features = [...roomFeatures(room.config), 'http://jabber.org/protocol/muc#stable_id', 'http://jabber.org/protocol/muc#self-ping-optimization', ...ctx.router.registry.features('room')];
  const out = discoInfo([{ category: 'conference', type: 'text', name: room.config.name || room.jid.local }], [...new Set(features)].sort());
  const form = roomInfoForm(room.config, room.occupants.size, room.subject?.text ?? '');
  out.children.push(form);
  form.parent = out;
  replyResult(ctx, room, iq, out);
}

/** §6.5: occupants are listed to those who may know them: other occupants. */
function discoItems(ctx: MucContext, room: Room, iq: Element, q: Element, from: JID): void {
  if (q.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
  const out = new Element('query', { xmlns: NS.discoItems });
  const asker = room.occupantByJid(from.toString());
  if (asker) for (const o of room.occupants.values()) out.c('item', { jid: room.occupantJid(o.nick), name: o.nick });
  replyResult(ctx, room, iq, out);
}

async function occupantIq(ctx: MucContext, room: Room, iq: Element, from: JID, to: JID, type: string): Promise<void> {
  if (type === 'result' || type === 'error') {
    // The answer to an iq the room relayed (§7.5): back to the occupant that asked.
    relayToOccupant(ctx, room, iq, from, to);
    return;
  }
  const sender = room.occupantByJid(from.toString());
  const payload = iq.getChildElements()[0];
  if (!sender) {
    // XEP-0410: a self-ping from a session that is not joined learns so from
    // <not-acceptable/>; any other iq from a non-occupant is a <bad-request/> (§6.5).
    if (payload?.attrs.xmlns === NS.ping) replyError(ctx, room, iq, new StanzaError('not-acceptable', 'You are not in this room'));
    else replyError(ctx, room, iq, new StanzaError('bad-request', 'Only occupants may send to other occupants'));
    return;
  }
  const target = room.occupants.get(to.resource);
  if (!target) {
    replyError(ctx, room, iq, new StanzaError('item-not-found', 'No occupant with that nickname'));
    return;
  }
  // XEP-0410: a ping to one's own occupant JID asks "am I still joined?".
  if (target === sender && payload?.attrs.xmlns === NS.ping) {
    replyResult(ctx, room, iq);
    return;
  }
  const session = target.sessions[target.sessions.length - 1];
  if (!session) return;
  const copy = new Element('iq', { ...iq.attrs, from: room.occupantJid(sender.nick) });
  delete copy.attrs.to;
  delete copy.attrs.xmlns;
  for (const c of iq.children) copy.children.push(c);
  // vCards belong to the account (XEP-0054 / XEP-0153): ask the bare JID.
  if (payload?.attrs.xmlns === VCARD) {
    copy.attrs.to = target.bare;
    route(ctx, copy);
    return;
  }
  toOccupant(ctx, { ...target, sessions: [session] }, new Prepared(copy));
}

/** The service itself (conference.<domain>): disco and ping (§6.1–§6.3). */
export async function handleServiceIq(ctx: MucContext, iq: Element, to: JID): Promise<void> {
  const type = iq.attrs.type as string;
  if (type !== 'get' && type !== 'set') return;
  const payload = iq.getChildElements()[0];
  const xmlns = payload?.attrs.xmlns as string | undefined;
  try {
    if (!payload) throw new StanzaError('bad-request', 'Empty iq');
    if (type === 'get' && xmlns === NS.discoInfo) {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
      const features = [NS.discoInfo, NS.discoItems, NS_MUC, NS.ping, 'http://jabber.org/protocol/rsm'].sort();
      return replyResult(ctx, null, iq, discoInfo([{ category: 'conference', type: 'text', name: 'Chatrooms' }], features));
    }
    if (type === 'get' && xmlns === NS.discoItems) {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
      return replyResult(ctx, null, iq, await listRooms(ctx, to.domain, payload));
    }
    if (type === 'get' && xmlns === NS.ping) return replyResult(ctx, null, iq);
    throw new StanzaError('service-unavailable');
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    replyError(ctx, null, iq, err);
  }
}

/** Without RSM, at most this many rooms are listed (with a <set/> saying there are more). */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 500;

/** §6.3 public rooms, with XEP-0059 paging. */
async function listRooms(ctx: MucContext, domain: string, q: Element): Promise<Element> {
  const rsm = parseRsm(q);
  if (rsm?.before !== undefined || rsm?.index !== undefined) throw new StanzaError('feature-not-implemented', 'Only forward paging (after) is supported');
  const max = Math.min(rsm?.max ?? DEFAULT_PAGE, MAX_PAGE);
  const page = await ctx.stores.rooms.list(domain, { ...(rsm?.after !== undefined ? { after: rsm.after } : {}), max, publicOnly: true });
  const out = new Element('query', { xmlns: NS.discoItems });
  for (const r of page.items) out.c('item', { jid: r.room, ...(r.name ? { name: r.name } : {}) });
  if (rsm || page.count > page.items.length) {
    const first = page.items[0];
    const last = page.items[page.items.length - 1];
    const set = rsmSet(first && last ? { first: first.room, last: last.room, count: page.count } : { count: page.count });
    out.children.push(set);
    set.parent = out;
  }
  return out;
}
