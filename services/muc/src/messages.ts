/**
 * Messages through a room (XEP-0045 §7.4 groupchat, §7.5 private messages,
 * §7.8 invitations, §8.1 subject), with the service's size and rate limits.
 */
import { Element } from 'ltx';
import { JID, tryParseJid } from '@hyphae/jid';
import { StanzaError } from '@hyphae/stanza';
import type { MucContext } from './context.js';
import { Fanout, Prepared, broadcast, route, toOccupant } from './deliver.js';
import { replyError } from './reply.js';
import type { Room } from './room.js';
import { mayChangeSubject, mayInvite, maySendGroupchat, maySendPrivate } from './logic/roles.js';
import { NS_MUC_USER } from './logic/user-x.js';

/** Token bucket per sending session: messagesPerSecond, bursts of twice that. */
function allowRate(ctx: MucContext, room: Room, full: string): boolean {
  const rate = ctx.config.muc.messagesPerSecond;
  const burst = rate * 2;
  const now = ctx.now();
  const b = room.buckets.get(full) ?? { tokens: burst, at: now };
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
  b.at = now;
  room.buckets.set(full, b);
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

/** Size and rate limits for what an occupant sends through the room. */
function limited(ctx: MucContext, room: Room, m: Element, size: number, full: string): boolean {
  if (size > ctx.config.muc.maxMessageBytes) {
    replyError(ctx, room, m, new StanzaError('policy-violation', `Messages through this room may be at most ${ctx.config.muc.maxMessageBytes} bytes`, { type: 'modify' }));
    return true;
  }
  if (!allowRate(ctx, room, full)) {
    replyError(ctx, room, m, new StanzaError('resource-constraint', 'You are sending messages too fast', { type: 'wait' }));
    return true;
  }
  return false;
}

export async function handleMessage(ctx: MucContext, room: Room | null, m: Element, from: JID, to: JID, size: number): Promise<void> {
  const type = (m.attrs.type as string | undefined) ?? 'normal';
  if (!room) {
    if (type !== 'error') replyError(ctx, null, m, new StanzaError('item-not-found', 'No such room'));
    return;
  }
  if (type === 'error') {
    // An error about a private message or iq goes back to the occupant it came from.
    if (to.resource !== '') relayToOccupant(ctx, room, m, from, to);
    return;
  }
  if (to.resource !== '') return privateMessage(ctx, room, m, from, to, type, size);
  const userX = m.getChild('x', NS_MUC_USER);
  if (userX && (userX.getChild('invite') || userX.getChild('decline'))) return invitations(ctx, room, m, userX, from);
  if (type !== 'groupchat') {
    replyError(ctx, room, m, new StanzaError('bad-request', 'Messages to a room must be of type groupchat'));
    return;
  }
  return groupchat(ctx, room, m, from, size);
}

async function groupchat(ctx: MucContext, room: Room, m: Element, from: JID, size: number): Promise<void> {
  const full = from.toString();
  const o = room.occupantByJid(full);
  if (!o) {
    replyError(ctx, room, m, new StanzaError('not-acceptable', 'Only occupants may send messages to this room'));
    return;
  }
  if (limited(ctx, room, m, size, full)) return;
  const subject = m.getChild('subject');
  const isSubjectChange = subject !== undefined && m.getChild('body') === undefined;
  if (isSubjectChange) {
    // §8.1: a message with a subject and no body changes the subject.
    if (!mayChangeSubject(o.role, room.config.changeSubject)) {
      replyError(ctx, room, m, new StanzaError('forbidden', 'You may not change the subject of this room'));
      return;
    }
  } else if (!maySendGroupchat(o.role)) {
    // §7.4: visitors in a moderated room have no voice.
    replyError(ctx, room, m, new StanzaError('forbidden', 'You have no voice in this room'));
    return;
  }
  const reflected = new Element('message', { ...m.attrs, from: room.occupantJid(o.nick), type: 'groupchat' });
  delete reflected.attrs.to;
  delete reflected.attrs.xmlns;
  for (const c of m.children) reflected.children.push(c);
  // Modules see it before the occupants do (an archive tags it with its stanza-id).
  const registry = ctx.router.registry;
  if (registry.has('room/groupchat') && (await registry.run('room/groupchat', { room: room.jid, from, reflected, routing: ctx.router })) === 'stop') return;
  const p = new Prepared(reflected);
  const fan = new Fanout();
  broadcast(ctx, room, () => p, fan);
  fan.settled((missed) => {
    if (missed > 0) replyError(ctx, room, m, notEveryone(missed));
  });
  if (isSubjectChange) {
    await room.setSubject(ctx.stores.rooms, { text: subject.getText(), nick: o.nick, at: ctx.now() });
  } else {
    room.addHistory(ctx.stores.rooms, { xml: reflected.toString(), at: ctx.now(), nick: o.nick }, (err) => ctx.logger.warn({ err, room: room.bare }, 'history entry not stored'));
  }
}

/** §7.5: to one occupant, from the sender's occupant JID, marked with muc#user. */
function privateMessage(ctx: MucContext, room: Room, m: Element, from: JID, to: JID, type: string, size: number): void {
  const full = from.toString();
  const sender = room.occupantByJid(full);
  if (type === 'groupchat') {
    replyError(ctx, room, m, new StanzaError('bad-request', 'A groupchat message cannot be sent to one occupant'));
    return;
  }
  if (!sender) {
    replyError(ctx, room, m, new StanzaError('not-acceptable', 'Only occupants may send private messages in this room'));
    return;
  }
  const target = room.occupants.get(to.resource);
  if (!target) {
    replyError(ctx, room, m, new StanzaError('item-not-found', 'No occupant with that nickname'));
    return;
  }
  if (!maySendPrivate(sender.role, room.config.allowPm)) {
    replyError(ctx, room, m, new StanzaError('forbidden', 'Private messages are not allowed in this room'));
    return;
  }
  if (limited(ctx, room, m, size, full)) return;
  const copy = new Element('message', { ...m.attrs, from: room.occupantJid(sender.nick) });
  delete copy.attrs.to;
  delete copy.attrs.xmlns;
  for (const c of m.children) copy.children.push(c);
  if (!m.getChild('x', NS_MUC_USER)) copy.c('x', { xmlns: NS_MUC_USER });
  const fan = new Fanout();
  toOccupant(ctx, target, new Prepared(copy), fan);
  fan.settled((missed) => {
    if (missed > 0) replyError(ctx, room, m, notEveryone(missed));
  });
}

/**
 * RFC 6120 §8.3.3.13 (type wait): `missed` of the recipients' sessions did
 * not take the message (their connection manager was out of reach or did
 * not acknowledge it): the sender learns that not everyone has it.
 */
function notEveryone(missed: number): StanzaError {
  return new StanzaError('recipient-unavailable', `${missed} occupant session${missed === 1 ? '' : 's'} did not receive this message; try again`, { type: 'wait' });
}

/** An error (or iq answer) from an occupant's client about something relayed from `to`'s occupant. */
export function relayToOccupant(ctx: MucContext, room: Room, st: Element, from: JID, to: JID): void {
  const target = room.occupants.get(to.resource);
  const sender = room.occupantByJid(from.toString()) ?? room.occupantByBare(from.toBareString());
  if (!target || !sender) return;
  const copy = new Element(st.name, { ...st.attrs, from: room.occupantJid(sender.nick) });
  delete copy.attrs.to;
  delete copy.attrs.xmlns;
  for (const c of st.children) copy.children.push(c);
  toOccupant(ctx, target, new Prepared(copy));
}

/** §7.8.2 mediated invitations and declines. */
async function invitations(ctx: MucContext, room: Room, m: Element, x: Element, from: JID): Promise<void> {
  const full = from.toString();
  const bare = from.toBareString();
  const o = room.occupantByJid(full);
  for (const decline of x.getChildren('decline')) {
    const inviter = tryParseJid(String(decline.attrs.to ?? ''));
    if (!inviter) {
      replyError(ctx, room, m, new StanzaError('jid-malformed', 'The decline has no valid to'));
      return;
    }
    const out = new Element('message', { from: room.bare, to: inviter.toString() });
    const ux = out.c('x', { xmlns: NS_MUC_USER });
    const d = ux.c('decline', { from: bare });
    const reason = decline.getChildText('reason');
    if (reason !== null) d.c('reason').t(reason);
    route(ctx, out);
  }
  const invites = x.getChildren('invite');
  if (invites.length === 0) return;
  const aff = room.affiliationOf(bare);
  if (!o) {
    replyError(ctx, room, m, new StanzaError('not-acceptable', 'Only occupants may invite others to this room'));
    return;
  }
  if (!mayInvite(aff, o.role, room.config)) {
    replyError(ctx, room, m, new StanzaError('forbidden', 'You may not invite others to this room'));
    return;
  }
  for (const invite of invites) {
    const invitee = tryParseJid(String(invite.attrs.to ?? ''));
    if (!invitee) {
      replyError(ctx, room, m, new StanzaError('jid-malformed', 'The invitation has no valid to'));
      return;
    }
    const inviteeBare = invitee.toBareString();
    // §7.8.2 / §9.3: in a members-only room the invitee becomes a member, so it can enter.
    if (room.config.membersOnly && room.affiliationOf(inviteeBare) === 'none') {
      await room.setAffiliation(ctx.stores.rooms, inviteeBare, { affiliation: 'member' });
    }
    const out = new Element('message', { from: room.bare, to: invitee.toString() });
    const ux = out.c('x', { xmlns: NS_MUC_USER });
    const inv = ux.c('invite', { from: full });
    const reason = invite.getChildText('reason');
    if (reason !== null) inv.c('reason').t(reason);
    if (room.config.password !== '') ux.c('password').t(room.config.password);
    out.c('body').t(`${bare} invites you to the room ${room.bare}${reason ? `: ${reason}` : ''}`);
    route(ctx, out);
  }
}
