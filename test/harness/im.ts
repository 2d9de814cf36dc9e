/**
 * RFC 6121 helpers for end-to-end tests: roster get/set/remove, roster
 * pushes, presence and subscription stanzas, on top of `Session` from
 * clients.ts. Used by e2e/roster.test.ts and e2e/faults.test.ts.
 */
import type { Socket } from 'node:net';
import { NS, Session, bareJid, sleep, stanzaErrorCondition, xml, type XmlElement } from './clients.js';

/** Namespaces of RFC 6121 and its stream features (protocol facts). */
export const IM_NS = {
  roster: 'jabber:iq:roster',
  /** RFC 6121 §2.6.1 stream feature. */
  rosterVer: 'urn:xmpp:features:rosterver',
  /** RFC 6121 §3.4.1 stream feature. */
  preApproval: 'urn:xmpp:features:pre-approval',
  delay: NS.delay,
} as const;

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

/** A roster item as the server presents it. */
export interface RosterItem {
  jid: string;
  name?: string;
  subscription: string;
  ask?: string;
  approved?: string;
  groups: string[];
}

/** The items of a `<query xmlns='jabber:iq:roster'/>`. */
export function itemsOf(query: XmlElement): RosterItem[] {
  return query.getChildren('item').map((i) => {
    const item: RosterItem = {
      jid: String(i.attrs.jid),
      subscription: i.attrs.subscription ?? 'none',
      groups: i.getChildren('group').map((g) => g.text()),
    };
    if (i.attrs.name !== undefined) item.name = i.attrs.name;
    if (i.attrs.ask !== undefined) item.ask = i.attrs.ask;
    if (i.attrs.approved !== undefined) item.approved = i.attrs.approved;
    return item;
  });
}

/** Short text of an item for messages: `jid sub=… ask=… approved=… name=… groups=[…]`. */
export function describeItem(item: RosterItem | undefined | null): string {
  if (!item) return '(no item)';
  return [
    item.jid,
    `subscription=${item.subscription}`,
    item.ask !== undefined ? `ask=${item.ask}` : '',
    item.approved !== undefined ? `approved=${item.approved}` : '',
    item.name !== undefined ? `name=${JSON.stringify(item.name)}` : '',
    item.groups.length ? `groups=[${item.groups.join(',')}]` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

const pushHandlers = new WeakSet<Session>();

/**
 * Answers roster pushes with an empty result, as a client should
 * (RFC 6121 §2.1.6); the pushes stay in the session's inbox for the test.
 * Without this @xmpp/client would answer <service-unavailable/>.
 */
export function acceptRosterPushes(s: Session): Session {
  if (pushHandlers.has(s)) return s;
  pushHandlers.add(s);
  s.client.iqCallee.set(IM_NS.roster, 'query', () => true);
  return s;
}

export interface RosterGetResult {
  stanza: XmlElement;
  /** The `ver` attribute of the query (undefined when absent or when there is no query). */
  ver: string | undefined;
  /** null when the result has no query element (RFC 6121 §2.6.3 "empty result"). */
  items: RosterItem[] | null;
}

/** Roster get (RFC 6121 §2.2), optionally with `ver` (§2.6.2). Throws on an error answer. */
export async function rosterGet(s: Session, ver?: string, timeoutMs = 10_000): Promise<RosterGetResult> {
  const attrs: Record<string, string> = { xmlns: IM_NS.roster };
  if (ver !== undefined) attrs.ver = ver;
  const res = await s.iq(xml('iq', { type: 'get' }, xml('query', attrs)), timeoutMs);
  if (res.attrs.type !== 'result') throw new Error(`roster get${ver !== undefined ? ` (ver=${ver})` : ''} by ${s.jid} answered ${res.toString()}`);
  const q = res.getChild('query', IM_NS.roster);
  return { stanza: res, ver: q?.attrs.ver, items: q ? itemsOf(q) : null };
}

/** The roster item for `jid` in `s`'s roster (fresh roster get), or null. */
export async function rosterItem(s: Session, jid: string): Promise<RosterItem | null> {
  const r = await rosterGet(s);
  return r.items?.find((i) => i.jid === jid) ?? null;
}

export interface ItemSpec {
  jid: string;
  name?: string;
  groups?: string[];
  subscription?: 'remove';
}

/** The `<item/>` element of a roster set. */
export function itemElement(spec: ItemSpec): XmlElement {
  const attrs: Record<string, string> = { jid: spec.jid };
  if (spec.name !== undefined) attrs.name = spec.name;
  if (spec.subscription !== undefined) attrs.subscription = spec.subscription;
  return xml('item', attrs, ...(spec.groups ?? []).map((g) => xml('group', {}, g)));
}

/** Roster set (RFC 6121 §2.3 / §2.5) of one item; returns the answer (result or error). */
export function rosterSet(s: Session, ...items: ItemSpec[]): Promise<XmlElement> {
  return s.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: IM_NS.roster }, ...items.map(itemElement))));
}

/** Roster set that must succeed. */
export async function rosterSetOk(s: Session, spec: ItemSpec): Promise<void> {
  const res = await rosterSet(s, spec);
  if (res.attrs.type !== 'result') {
    throw new Error(`roster set ${itemElement(spec).toString()} by ${s.jid} answered ${res.toString()} (condition ${stanzaErrorCondition(res)})`);
  }
}

export interface Push {
  stanza: XmlElement;
  item: RosterItem;
  ver: string | undefined;
}

/** Whether `el` is a roster push (iq set, query jabber:iq:roster). */
export function isRosterPush(el: XmlElement): boolean {
  return el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', IM_NS.roster) !== undefined;
}

/**
 * Waits for a roster push about `jid` whose item satisfies `pred`, and
 * checks it is well-formed (RFC 6121 §2.1.6: from absent or the user's bare
 * JID, exactly one item).
 */
export async function waitPush(
  s: Session,
  jid: string,
  pred: (item: RosterItem) => boolean = () => true,
  timeoutMs = 10_000,
  what = '',
): Promise<Push> {
  const el = await s.waitFor(
    (e) => {
      if (!isRosterPush(e)) return false;
      const q = e.getChild('query', IM_NS.roster);
      const items = q ? itemsOf(q) : [];
      return items.some((i) => i.jid === jid && pred(i));
    },
    timeoutMs,
    `roster push about ${jid}${what ? ` (${what})` : ''}`,
  ).catch((err: Error) => {
    const seen = s.buffered(isRosterPush).map((p) => {
      const q = p.getChild('query', IM_NS.roster);
      return (q ? itemsOf(q) : []).map(describeItem).join('; ');
    });
    throw new Error(`${err.message}; roster pushes received meanwhile: ${seen.length ? seen.join(' | ') : 'none'}`);
  });
  const from = el.attrs.from;
  if (from !== undefined && from !== s.bare) throw new Error(`roster push with from='${from}' (must be absent or ${s.bare}): ${el.toString()}`);
  const q = el.getChild('query', IM_NS.roster);
  const items = q ? itemsOf(q) : [];
  if (items.length !== 1) throw new Error(`roster push with ${items.length} items: ${el.toString()}`);
  return { stanza: el, item: items[0] as RosterItem, ver: q?.attrs.ver };
}

/** Sends a presence (initial presence when no `to`/`type`). */
export function sendPresence(
  s: Session,
  attrs: { to?: string; type?: string } = {},
  opts: { priority?: number; status?: string; show?: string } = {},
): Promise<void> {
  const a: Record<string, string> = {};
  if (attrs.to !== undefined) a.to = attrs.to;
  if (attrs.type !== undefined) a.type = attrs.type;
  return s.send(
    xml(
      'presence',
      a,
      opts.show !== undefined ? xml('show', {}, opts.show) : null,
      opts.status !== undefined ? xml('status', {}, opts.status) : null,
      opts.priority !== undefined ? xml('priority', {}, String(opts.priority)) : null,
    ),
  );
}

/** A subscription stanza to `to` (RFC 6121 §3). */
export function sendSubscription(s: Session, type: SubscriptionType, to: string): Promise<void> {
  return sendPresence(s, { to, type });
}

/** Predicate: presence of `type` (undefined = available) whose from matches (bare or full JID; a bare `from` matches any resource when `anyResource`). */
export function presenceFrom(from: string, type?: string, anyResource = false): (el: XmlElement) => boolean {
  return (el) => {
    if (el.name !== 'presence') return false;
    if (el.attrs.type !== type) return false;
    const f = el.attrs.from ?? '';
    return f === from || (anyResource && bareJid(f) === from);
  };
}

/** Predicate: a subscription presence of `type` from `fromBare`. */
export function subscriptionFrom(fromBare: string, type: SubscriptionType): (el: XmlElement) => boolean {
  return (el) => el.name === 'presence' && el.attrs.type === type && bareJid(el.attrs.from ?? '') === fromBare;
}

/**
 * Drops the connection without closing the XML stream (no
 * `</stream:stream>`): what a crashed client or a pulled cable looks like to
 * the server, short of a silent loss.
 */
export function breakConnection(s: Session): void {
  const sock = s.client.socket as (Socket & { socket?: Socket }) | null;
  if (!sock) return;
  // @xmpp/tls wraps the TLS socket (direct TLS); STARTTLS leaves a tls.TLSSocket.
  const inner = sock.socket ?? sock;
  s.client.reconnect.stop();
  inner.destroy();
}

/**
 * The full subscription handshake both ways (RFC 6121 §3.1), each step
 * awaited on the receiving side. Both sessions must answer roster pushes
 * and be available (initial presence sent). Ends with both items at 'both'
 * and both inboxes drained.
 */
export async function subscribeBothWays(a: Session, b: Session, timeoutMs = 10_000): Promise<void> {
  await sendSubscription(a, 'subscribe', b.bare);
  await b.waitFor(subscriptionFrom(a.bare, 'subscribe'), timeoutMs, 'subscribe from a');
  await sendSubscription(b, 'subscribed', a.bare);
  await waitPush(a, b.bare, (i) => i.subscription === 'to', timeoutMs);
  await sendSubscription(b, 'subscribe', a.bare);
  await a.waitFor(subscriptionFrom(b.bare, 'subscribe'), timeoutMs, 'subscribe from b');
  await sendSubscription(a, 'subscribed', b.bare);
  await waitPush(a, b.bare, (i) => i.subscription === 'both', timeoutMs);
  await waitPush(b, a.bare, (i) => i.subscription === 'both', timeoutMs);
  // Presence is exchanged as a consequence; let stragglers land, then start clean.
  await sleep(200);
  a.drain();
  b.drain();
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/**
 * The user-actor shard of a bare JID: 32-bit FNV-1a of its UTF-8 bytes mod
 * the shard count (`roster.shards`, default 64). A copy of shardOf() in
 * packages/actor/src/shard.ts, which the test package does not depend on.
 */
export function userShard(bare: string, shards = 64): number {
  const bytes = new TextEncoder().encode(bare);
  let h = FNV_OFFSET;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, FNV_PRIME);
  }
  return (h >>> 0) % shards;
}
