/**
 * XEP-0191 §3.2–§3.5: the blocklist get, block and unblock commands, each
 * to the user's own account (no 'to', or the own bare JID), and the pushes
 * that follow every change.
 */
import { randomBytes } from 'node:crypto';
import { Element } from 'ltx';
import { tryParseJid } from '@hyphae/jid';
import { StanzaError, cloneElement } from '@hyphae/stanza';
import type { IqReply, IqRequest, IqRoute, Routing } from '@hyphae/module-api';
import { NS_BLOCKING, loadList, type BlockingContext } from './context.js';
import { presenceAfterBlock, presenceAfterUnblock } from './presence.js';

/**
 * The user's own list only: another account's bare JID gets <forbidden/>
 * (as RFC 6121 §2.1.5 answers a roster request for another user; the
 * XEP has the server handle these commands "on behalf of" the user only).
 */
function ownerOf(req: IqRequest): string {
  const owner = req.from.toBareString();
  if (req.to.toBareString() !== owner) throw new StanzaError('forbidden', "Only the account's own blocklist can be read or changed");
  return owner;
}

/**
 * The <item jid=…/> children of a <block/> or <unblock/>, prepared and
 * without duplicates. The schema (§10) allows nothing but items with a
 * 'jid': anything else is <bad-request/>; a 'jid' that is not a JID is
 * <jid-malformed/> (RFC 6120 §8.3.3.8, the "other standard errors" §3.3
 * points to).
 */
export function parseItems(command: Element): string[] {
  const out = new Set<string>();
  for (const child of command.getChildElements()) {
    if (child.getName() !== 'item' || child.getNS() !== NS_BLOCKING) {
      throw new StanzaError('bad-request', `<${command.getName()}/> holds only <item/> elements`);
    }
    const raw = child.attrs.jid;
    if (typeof raw !== 'string' || raw === '') throw new StanzaError('bad-request', 'Each <item/> needs a jid');
    const jid = tryParseJid(raw);
    if (!jid) throw new StanzaError('jid-malformed', `Not a JID: ${raw}`);
    out.add(jid.toString());
  }
  return [...out];
}

/** <blocklist/>, <block/> or <unblock/> with one item per JID. */
export function listElement(name: 'blocklist' | 'block' | 'unblock', jids: Iterable<string>): Element {
  const el = new Element(name, { xmlns: NS_BLOCKING });
  for (const jid of jids) el.c('item', { jid });
  return el;
}

/**
 * §3.3–§3.5: an iq-set with the change to each resource of the user. Every
 * bound session gets it, not only the "interested" ones: on its way through
 * `session/deliver` it updates the session's copy of the list (on whichever
 * node holds it), and only then is it dropped for a session that has not
 * retrieved the blocklist (see enforce.ts). From the user's bare JID: no
 * client can send that (the edge stamps full JIDs), so a forged push
 * cannot change a session's copy.
 */
export async function push(routing: Routing, owner: string, change: Element): Promise<void> {
  for (const s of await routing.sessions(owner)) {
    const iq = new Element('iq', { type: 'set', id: `block-push-${randomBytes(6).toString('hex')}`, from: owner, to: `${owner}/${s.resource}` });
    iq.cnode(cloneElement(change));
    await routing.deliverToSession(iq, owner, s.resource);
  }
}

/** Runs work after the reply; a failure there is logged (the command itself succeeded). */
function afterwards(ctx: BlockingContext, work: () => Promise<void>): IqReply {
  return { payload: null, after: () => work().catch((err: unknown) => ctx.warn(err, 'blocklist push or presence failed')) };
}

export function blockingIq(ctx: BlockingContext): IqRoute[] {
  /** §3.2: every blocked JID, or an empty <blocklist/>. */
  const get = async (req: IqRequest): Promise<Element> => listElement('blocklist', (await ctx.store.all(ownerOf(req))).map(([jid]) => jid));

  /** §3.3: at least one item (else <bad-request/>, a MUST); the result, pushes, then unavailable presence to those blocked. */
  const block = async (req: IqRequest): Promise<IqReply> => {
    const owner = ownerOf(req);
    const jids = parseItems(req.payload);
    if (jids.length === 0) throw new StanzaError('bad-request', '<block/> needs at least one <item/>');
    const before = await loadList(ctx, owner);
    const added = jids.filter((j) => !before.has(j));
    if (before.size + added.length > ctx.maxItems) {
      throw new StanzaError('policy-violation', `A blocklist holds at most ${ctx.maxItems} JIDs`);
    }
    await ctx.store.setMany(owner, jids.map((j) => [j, true] as const));
    return afterwards(ctx, async () => {
      await push(req.routing, owner, listElement('block', jids));
      await presenceAfterBlock(ctx, req.routing, owner, added);
    });
  };

  /** §3.4, §3.5: the items given, or everything when there are none; pushes, then the user's presence to those unblocked. */
  const unblock = async (req: IqRequest): Promise<IqReply> => {
    const owner = ownerOf(req);
    const jids = parseItems(req.payload);
    const before = await loadList(ctx, owner);
    if (jids.length === 0) await ctx.store.clear(owner);
    else for (const j of jids) await ctx.store.delete(owner, j);
    const removed = jids.length === 0 ? [...before] : jids.filter((j) => before.has(j));
    const remaining = new Set([...before].filter((j) => !removed.includes(j)));
    return afterwards(ctx, async () => {
      await push(req.routing, owner, listElement('unblock', jids));
      await presenceAfterUnblock(ctx, req.routing, owner, removed, remaining);
    });
  };

  return [
    { target: 'account', type: 'get', xmlns: NS_BLOCKING, name: 'blocklist', handle: get },
    { target: 'account', type: 'set', xmlns: NS_BLOCKING, name: 'block', handle: block },
    { target: 'account', type: 'set', xmlns: NS_BLOCKING, name: 'unblock', handle: unblock },
  ];
}
