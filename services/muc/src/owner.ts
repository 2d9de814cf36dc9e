/**
 * muc#owner (XEP-0045 §10): the configuration form, instant rooms,
 * cancelling a new room, and destruction.
 */
import { Element } from 'ltx';
import { tryParseJid, type JID } from '@hyphae/jid';
import { NS, StanzaError } from '@hyphae/stanza';
import type { MucContext } from './context.js';
import { Prepared, broadcast, toOccupant } from './deliver.js';
import { replyResult } from './reply.js';
import { remove } from './admin.js';
import type { Room } from './room.js';
import type { RoomAfter } from './presence.js';
import { applyConfigSubmit, configForm } from './logic/config.js';
import { NS_MUC_OWNER, NS_MUC_USER } from './logic/user-x.js';

function requireOwner(room: Room, from: JID): void {
  if (room.affiliationOf(from.toBareString()) !== 'owner') throw new StanzaError('forbidden', 'Only owners may do this');
}

export async function ownerGet(ctx: MucContext, room: Room, iq: Element, from: JID): Promise<void> {
  requireOwner(room, from);
  const q = new Element('query', { xmlns: NS_MUC_OWNER });
  const form = configForm(room.config, ctx.limits);
  q.children.push(form);
  form.parent = q;
  replyResult(ctx, room, iq, q);
}

export async function ownerSet(ctx: MucContext, room: Room, iq: Element, query: Element, from: JID): Promise<RoomAfter> {
  requireOwner(room, from);
  const destroy = query.getChild('destroy');
  if (destroy) {
    const alt = destroy.attrs.jid === undefined ? undefined : tryParseJid(String(destroy.attrs.jid));
    if (destroy.attrs.jid !== undefined && !alt) throw new StanzaError('jid-malformed', 'The alternate venue is not a JID');
    replyResult(ctx, room, iq);
    await destroyRoom(ctx, room, alt?.toString(), destroy.getChildText('reason') ?? undefined, destroy.getChildText('password') ?? undefined);
    return null;
  }
  const x = query.getChild('x', NS.data);
  if (!x) throw new StanzaError('bad-request', 'Expected a data form or <destroy/>');
  const type = x.attrs.type as string | undefined;
  if (type === 'cancel') {
    replyResult(ctx, room, iq);
    // §10.1.2: cancelling the initial configuration destroys the new room.
    if (room.locked) {
      await destroyRoom(ctx, room, undefined, undefined, undefined);
      return null;
    }
    return room;
  }
  if (type !== 'submit') throw new StanzaError('bad-request', "The form's type must be submit or cancel");
  const before = room.config;
  const { config, statusCodes } = applyConfigSubmit(x, room.config, ctx.limits);
  room.config = config;
  const wasLocked = room.locked;
  room.locked = false;
  await room.saveMeta(ctx.stores.rooms);
  if (config.historyLength < before.historyLength) {
    room.history.splice(0, Math.max(0, room.history.length - config.historyLength));
    await ctx.stores.rooms.trimHistory(room.bare, config.historyLength);
  }
  replyResult(ctx, room, iq);
  // §10.2.1: occupants hear about changes that concern them.
  if (!wasLocked && statusCodes.length > 0) {
    const m = new Element('message', { type: 'groupchat', from: room.bare });
    const ux = m.c('x', { xmlns: NS_MUC_USER });
    for (const code of statusCodes) ux.c('status', { code: String(code) });
    const p = new Prepared(m);
    broadcast(ctx, room, () => p);
  }
  if (config.membersOnly && !before.membersOnly) {
    // §9.4 / §10.2: becoming members-only removes those without membership (322).
    for (const o of [...room.occupants.values()]) {
      if (room.affiliationOf(o.bare) === 'none') await remove(ctx, room, o, [322]);
    }
  }
  return room;
}

/** §10.9: everyone leaves with the reason and alternate venue; the room is gone. */
export async function destroyRoom(ctx: MucContext, room: Room, alt: string | undefined, reason: string | undefined, password: string | undefined): Promise<void> {
  for (const o of room.occupants.values()) {
    const p = new Element('presence', { from: room.occupantJid(o.nick), type: 'unavailable' });
    const ux = p.c('x', { xmlns: NS_MUC_USER });
    ux.c('item', { affiliation: 'none', role: 'none' });
    const d = ux.c('destroy', alt !== undefined ? { jid: alt } : {});
    if (reason !== undefined) d.c('reason').t(reason);
    if (password !== undefined) d.c('password').t(password);
    toOccupant(ctx, o, new Prepared(p));
  }
  await ctx.stores.rooms.destroy(room.bare);
}

