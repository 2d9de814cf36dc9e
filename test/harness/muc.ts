/**
 * XEP-0045 Multi-User Chat helpers for end-to-end tests, on top of `Session`
 * from clients.ts. Used by e2e/muc.test.ts and e2e/muc-cluster.test.ts.
 *
 * - `track(session)` records every stanza a session receives with its
 *   arrival order and time, so tests can assert the order of events
 *   (XEP-0045 §7.2.2) across different kinds of stanzas.
 * - `join()` sends the join presence, waits for the self-presence (status
 *   110) and the subject message, and returns everything the room sent in
 *   between, in arrival order; `joinError()` expects an error presence.
 * - Builders for muc#owner (configuration forms, instant rooms, destroy) and
 *   muc#admin (roles, affiliations, lists) requests; parsers for muc#user
 *   extended presence, XEP-0004 data forms, XEP-0030 disco results and
 *   XEP-0059 result sets.
 * - `mucShard()` / `mucOwner()`: which `hyphae muc` instance of a cluster
 *   owns a room (its shard lease in Redis).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { NS, Session, bareJid, stanzaErrorCondition, uniqueName, xml, type XmlElement } from './clients.js';
import { userShard } from './im.js';
import { HYPHAE_BIN, clusterSkipReason, embeddedSkipReason, serverBuilt, type ClusterServer, type HyphaeServer } from './server.js';
import { redisCommand } from './util.js';

/** Namespaces of XEP-0045 and of the XEPs it uses (protocol facts). */
export const MUC_NS = {
  /** The join presence's <x/> (§7.2.1). */
  muc: 'http://jabber.org/protocol/muc',
  /** Extended presence and message information (§7.2.3 …). */
  user: 'http://jabber.org/protocol/muc#user',
  /** Moderator and admin requests (§8, §9). */
  admin: 'http://jabber.org/protocol/muc#admin',
  /** Owner requests: configuration, destroy (§10). */
  owner: 'http://jabber.org/protocol/muc#owner',
  /** FORM_TYPE of the room configuration form (§10.1.3, §15.5.3). */
  roomconfig: 'http://jabber.org/protocol/muc#roomconfig',
  /** FORM_TYPE of the extended room information in disco#info (§6.4, §15.5.4). */
  roominfo: 'http://jabber.org/protocol/muc#roominfo',
  /** XEP-0059 result set management. */
  rsm: 'http://jabber.org/protocol/rsm',
  data: NS.data,
  delay: NS.delay,
  discoInfo: NS.discoInfo,
  discoItems: NS.discoItems,
} as const;

/** Default `muc.subdomain` of the server. */
export const MUC_SUBDOMAIN = 'conference';

// ---------------------------------------------------------------------------
// Skip reasons.

let mucSupport: boolean | null = null;
/**
 * Whether the built server has the MUC service (`hyphae help` lists `muc`).
 * Builds from before the MUC service cannot run the MUC tests, which skip.
 */
export function serverHasMuc(): boolean {
  if (mucSupport !== null) return mucSupport;
  if (!serverBuilt()) return (mucSupport = false);
  const r = spawnSync(process.execPath, [HYPHAE_BIN, 'help'], { encoding: 'utf8', timeout: 20_000 });
  mucSupport = r.status === 0 && /^\s+muc\s/m.test(r.stdout ?? '');
  return mucSupport;
}

/** Whether `startEmbedded()` points at an external server (HYPHAE_E2E_EXTERNAL): no restarts, no config overrides. */
export function externalServer(): boolean {
  return Boolean(process.env.HYPHAE_E2E_EXTERNAL);
}

/** Null when MUC tests can run against `mode`, else the reason to skip. */
export function mucSkipReason(mode: 'embedded' | 'cluster'): string | null {
  if (mode === 'embedded' && externalServer()) return null;
  const base = mode === 'embedded' ? embeddedSkipReason() : clusterSkipReason();
  if (base) return base;
  if (!serverHasMuc()) {
    return `the server build has no muc service (\`${HYPHAE_BIN} help\` does not list it): rebuild with npx tsc -b services/hyphae`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Addresses.

/** The MUC service's JID: `<subdomain>.<domain>`. */
export function mucService(server: HyphaeServer, subdomain = MUC_SUBDOMAIN): string {
  return `${subdomain}.${server.domain}`;
}

/** A fresh room JID (`<prefix><unique>@<service>`). */
export function newRoomJid(server: HyphaeServer, prefix = 'room', subdomain = MUC_SUBDOMAIN): string {
  return `${uniqueName(prefix)}@${mucService(server, subdomain)}`;
}

/** Whether two JIDs are equal, comparing the bare part case-insensitively and the resource exactly. */
export function sameJid(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const [ab, ar] = splitJid(a);
  const [bb, br] = splitJid(b);
  return ab.toLowerCase() === bb.toLowerCase() && ar === br;
}

function splitJid(j: string): [string, string | undefined] {
  const slash = j.indexOf('/');
  return slash < 0 ? [j, undefined] : [j.slice(0, slash), j.slice(slash + 1)];
}

/** Whether `from` is the room or one of its occupant JIDs. */
export function fromRoom(el: XmlElement, room: string): boolean {
  return bareJid(el.attrs.from ?? '').toLowerCase() === room.toLowerCase();
}

/** The resource (room nickname) of a stanza's `from`, or undefined for the bare room JID. */
export function nickOf(el: XmlElement): string | undefined {
  return splitJid(el.attrs.from ?? '')[1];
}

// ---------------------------------------------------------------------------
// Arrival order: every stanza a tracked session receives, numbered.

interface Recorder {
  next: number;
  seq: WeakMap<XmlElement, number>;
  at: WeakMap<XmlElement, number>;
  log: XmlElement[];
}
const recorders = new WeakMap<Session, Recorder>();
const MAX_LOG = 200_000;

/**
 * Records every stanza `s` receives from now on with its arrival number and
 * time (listener prepended, so the number is known before any waiter sees
 * the stanza). Idempotent; returns `s`.
 */
export function track(s: Session): Session {
  if (recorders.has(s)) return s;
  const r: Recorder = { next: 1, seq: new WeakMap(), at: new WeakMap(), log: [] };
  recorders.set(s, r);
  s.client.prependListener('stanza', (el: XmlElement) => {
    r.seq.set(el, r.next++);
    r.at.set(el, Date.now());
    r.log.push(el);
    if (r.log.length > MAX_LOG) r.log.splice(0, r.log.length - MAX_LOG);
  });
  return s;
}

function recorder(s: Session): Recorder {
  const r = recorders.get(s);
  if (!r) throw new Error(`session ${s.jid} is not tracked: call track() right after login`);
  return r;
}

/** The arrival number of the latest stanza `s` received (0 before any): pass it to `receivedSince`. */
export function mark(s: Session): number {
  return recorder(s).next - 1;
}

/** The arrival number of `el` at `s` (0 when unknown). */
export function seqOf(s: Session, el: XmlElement): number {
  return recorder(s).seq.get(el) ?? 0;
}

/** When `el` arrived at `s` (ms since epoch; NaN when unknown). */
export function arrivedAt(s: Session, el: XmlElement): number {
  return recorder(s).at.get(el) ?? Number.NaN;
}

/** Every stanza `s` received after `since` (a `mark()`), in arrival order, optionally filtered. Nothing is consumed. */
export function receivedSince(s: Session, since: number, pred: (el: XmlElement) => boolean = () => true): XmlElement[] {
  const r = recorder(s);
  return r.log.filter((el) => (r.seq.get(el) ?? 0) > since && pred(el));
}

/** Waits `ms` and fails if `s` receives (or has buffered) a stanza matching `pred` meanwhile. */
export async function expectNothing(s: Session, pred: (el: XmlElement) => boolean, what: string, ms: number): Promise<void> {
  try {
    const el = await s.waitFor(pred, ms, what);
    assert.fail(`${s.jid} received ${what}, which it must not: ${el.toString()}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    if (!/timeout/.test((err as Error).message)) throw err;
  }
}

// ---------------------------------------------------------------------------
// Stanza errors.

export interface StanzaErrorInfo {
  /** The <error/>'s type attribute (cancel, continue, modify, auth, wait). */
  type: string | undefined;
  condition: string | null;
  by: string | undefined;
}

export function errorOf(el: XmlElement): StanzaErrorInfo {
  const e = el.getChild('error');
  return { type: e?.attrs.type, condition: stanzaErrorCondition(el), by: e?.attrs.by };
}

/** Short text of an error stanza: `<condition/> type=…`. */
export function describeError(el: XmlElement): string {
  const e = errorOf(el);
  return `<${e.condition ?? '(no condition)'}/> type=${e.type ?? '(none)'}`;
}

/**
 * Asserts that `el` is an error stanza with the defined condition
 * `condition` and the error type `type`; `what` says which request and which
 * section of the XEP it checks.
 */
export function assertError(el: XmlElement | undefined, condition: string, type: string, what: string): void {
  assert.ok(el, `${what}: no answer`);
  assert.equal(el.attrs.type, 'error', `${what}: expected an error (<${condition}/> type=${type}), got ${el.toString()}`);
  const e = errorOf(el);
  assert.equal(e.condition, condition, `${what}: expected <${condition}/> type=${type}, got ${describeError(el)}: ${el.toString()}`);
  assert.equal(e.type, type, `${what}: <${condition}/> must have error type '${type}', got '${e.type}': ${el.toString()}`);
}

/** Asserts that an iq answer is a result. */
export function assertResult(el: XmlElement, what: string): void {
  assert.equal(el.attrs.type, 'result', `${what}: expected a result, got ${el.attrs.type === 'error' ? describeError(el) : ''} ${el.toString()}`);
}

// ---------------------------------------------------------------------------
// muc#user extended information.

export interface MucItem {
  affiliation?: string;
  role?: string;
  jid?: string;
  nick?: string;
  actor?: { nick?: string; jid?: string };
  reason?: string;
}

export interface MucUser {
  /** How many <x xmlns='…muc#user'/> the stanza has (§7.2.3: at most one). */
  count: number;
  items: MucItem[];
  codes: number[];
  destroy?: { jid?: string; reason?: string; password?: string };
  invites: Array<{ from?: string; to?: string; reason?: string }>;
  declines: Array<{ from?: string; to?: string; reason?: string }>;
  password?: string;
}

function parseItem(i: XmlElement): MucItem {
  const out: MucItem = {};
  for (const k of ['affiliation', 'role', 'jid', 'nick'] as const) {
    const v = i.attrs[k];
    if (v !== undefined) out[k] = v;
  }
  const actor = i.getChild('actor');
  if (actor) out.actor = { nick: actor.attrs.nick, jid: actor.attrs.jid };
  const reason = i.getChild('reason');
  if (reason) out.reason = reason.text();
  return out;
}

/** The muc#user payload of a stanza, or null when it has none. */
export function mucUser(el: XmlElement): MucUser | null {
  const xs = el.getChildren('x', MUC_NS.user);
  const x = xs[0];
  if (!x) return null;
  const out: MucUser = {
    count: xs.length,
    items: x.getChildren('item').map(parseItem),
    codes: x.getChildren('status').map((s) => Number(s.attrs.code)),
    invites: x.getChildren('invite').map((i) => ({ from: i.attrs.from, to: i.attrs.to, reason: i.getChild('reason')?.text() })),
    declines: x.getChildren('decline').map((i) => ({ from: i.attrs.from, to: i.attrs.to, reason: i.getChild('reason')?.text() })),
  };
  const d = x.getChild('destroy');
  if (d) out.destroy = { jid: d.attrs.jid, reason: d.getChild('reason')?.text(), password: d.getChild('password')?.text() };
  const pw = x.getChild('password');
  if (pw) out.password = pw.text();
  return out;
}

/** Status codes of a stanza's muc#user payload (empty when none). */
export function statusCodes(el: XmlElement): number[] {
  return mucUser(el)?.codes ?? [];
}

/** The first muc#user item of a stanza. */
export function itemOf(el: XmlElement): MucItem | undefined {
  return mucUser(el)?.items[0];
}

/** Short text of a MUC presence for messages: `nick type item{…} codes[…]`. */
export function describePresence(el: XmlElement): string {
  const u = mucUser(el);
  const it = u?.items[0];
  const item = it ? `item{${Object.entries(it).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ')}}` : 'no item';
  return `${el.attrs.from} ${el.attrs.type ?? 'available'} ${item} codes[${(u?.codes ?? []).join(',')}]`;
}

/** Predicate: presence from occupant JID `room/nick` of `type` (undefined = available). */
export function presenceOf(room: string, nick: string, type?: string): (el: XmlElement) => boolean {
  return (el) => el.name === 'presence' && el.attrs.type === type && sameJid(el.attrs.from, `${room}/${nick}`);
}

/** Predicate: a presence from the room (any occupant JID) of `type` carrying status code `code`. */
export function presenceWithCode(room: string, code: number, type?: string): (el: XmlElement) => boolean {
  return (el) => el.name === 'presence' && el.attrs.type === type && fromRoom(el, room) && statusCodes(el).includes(code);
}

// ---------------------------------------------------------------------------
// Joining and leaving.

export interface HistoryRequest {
  maxstanzas?: number;
  maxchars?: number;
  seconds?: number;
  since?: string;
}

export interface JoinOptions {
  password?: string;
  history?: HistoryRequest;
  /** Join without the <x xmlns='http://jabber.org/protocol/muc'/> (groupchat 1.0, §7.2.20). */
  noMucX?: boolean;
  show?: string;
  status?: string;
  id?: string;
  timeoutMs?: number;
}

export interface Joined {
  room: string;
  nick: string;
  /** The occupant JID `room/nick`. */
  jid: string;
  /** Everything the room sent from the join until the subject message (inclusive), in arrival order. */
  stanzas: XmlElement[];
  /** What arrived before the self-presence: the presence of every existing occupant (§7.2.3). */
  others: XmlElement[];
  /** The self-presence (status 110). */
  self: XmlElement;
  codes: number[];
  item: MucItem | undefined;
  /** What arrived between the self-presence and the subject: the discussion history (§7.2.12). */
  history: XmlElement[];
  /** The subject message (§7.2.15), last. */
  subject: XmlElement;
}

/** The join presence (§7.2.1): to `room/nick` (`nick` '' → the bare room JID). */
export function joinPresence(room: string, nick: string, opts: JoinOptions = {}): XmlElement {
  const children: XmlElement[] = [];
  if (!opts.noMucX) {
    const h = opts.history;
    const hAttrs: Record<string, string> = {};
    if (h?.maxstanzas !== undefined) hAttrs.maxstanzas = String(h.maxstanzas);
    if (h?.maxchars !== undefined) hAttrs.maxchars = String(h.maxchars);
    if (h?.seconds !== undefined) hAttrs.seconds = String(h.seconds);
    if (h?.since !== undefined) hAttrs.since = h.since;
    children.push(
      xml(
        'x',
        { xmlns: MUC_NS.muc },
        opts.password !== undefined ? xml('password', {}, opts.password) : null,
        h ? xml('history', hAttrs) : null,
      ),
    );
  }
  if (opts.show !== undefined) children.push(xml('show', {}, opts.show));
  if (opts.status !== undefined) children.push(xml('status', {}, opts.status));
  const attrs: Record<string, string> = { to: nick === '' ? room : `${room}/${nick}` };
  if (opts.id !== undefined) attrs.id = opts.id;
  return xml('presence', attrs, ...children);
}

/** A message that sets or announces the subject: groupchat with <subject/> and no <body/> (§8.1). */
export function isSubjectMessage(el: XmlElement, room: string): boolean {
  return el.name === 'message' && el.attrs.type === 'groupchat' && fromRoom(el, room) && el.getChild('subject') !== undefined && el.getChild('body') === undefined;
}

export type JoinOutcome = { ok: true; joined: Joined } | { ok: false; error: XmlElement };

/**
 * Sends the join presence and waits for the self-presence (status 110) or an
 * error presence from the room. On success also waits for the subject
 * message and returns everything in between (§7.2.2 order of events); those
 * stanzas are removed from the session's inbox.
 */
export async function tryJoin(s: Session, room: string, nick: string, opts: JoinOptions = {}): Promise<JoinOutcome> {
  track(s);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const start = mark(s);
  const target = nick === '' ? room : `${room}/${nick}`;
  const fresh = (el: XmlElement): boolean => seqOf(s, el) > start;
  const isError = (el: XmlElement): boolean => el.name === 'presence' && el.attrs.type === 'error' && fromRoom(el, room) && fresh(el);
  const isSelf = (el: XmlElement): boolean =>
    el.name === 'presence' && el.attrs.type === undefined && fromRoom(el, room) && statusCodes(el).includes(110) && fresh(el);
  await s.send(joinPresence(room, nick, opts));
  const first = await s.waitFor((el) => isError(el) || isSelf(el), timeoutMs, `the self-presence (status 110) or an error presence from ${target}`);
  if (first.attrs.type === 'error') return { ok: false, error: first };
  const selfSeq = seqOf(s, first);
  const subject = await s
    .waitFor((el) => isSubjectMessage(el, room) && seqOf(s, el) > selfSeq, timeoutMs, `the subject message from ${room} (XEP-0045 §7.2.2: sent to every joining occupant, after the history)`)
    .catch((err: Error) => {
      const early = receivedSince(s, start, (el) => isSubjectMessage(el, room) && seqOf(s, el) < selfSeq);
      if (early.length) throw new Error(`XEP-0045 §7.2.2: the subject message arrived before the self-presence at ${s.jid}: ${early[0]!.toString()}`);
      const got = receivedSince(s, selfSeq, (el) => fromRoom(el, room)).map((e) => e.toString().slice(0, 200));
      throw new Error(`${err.message}; received from the room after the self-presence: ${got.length ? got.join(' | ') : 'nothing'}`);
    });
  const subjectSeq = seqOf(s, subject);
  const stanzas = receivedSince(s, start, (el) => fromRoom(el, room) && seqOf(s, el) <= subjectSeq);
  const taken = new Set(stanzas);
  s.drain((el) => taken.has(el));
  const u = mucUser(first);
  const joinedNick = nickOf(first) ?? nick;
  return {
    ok: true,
    joined: {
      room,
      nick: joinedNick,
      jid: `${room}/${joinedNick}`,
      stanzas,
      others: stanzas.filter((el) => seqOf(s, el) < selfSeq),
      self: first,
      codes: u?.codes ?? [],
      item: u?.items[0],
      history: stanzas.filter((el) => seqOf(s, el) > selfSeq && seqOf(s, el) < subjectSeq),
      subject,
    },
  };
}

/** Joins (see tryJoin); throws with the error condition when the room refuses. */
export async function join(s: Session, room: string, nick: string, opts: JoinOptions = {}): Promise<Joined> {
  const r = await tryJoin(s, room, nick, opts);
  if (!r.ok) throw new Error(`join of ${room}/${nick} by ${s.jid} refused: ${describeError(r.error)}: ${r.error.toString()}`);
  return r.joined;
}

/** A join that must fail: returns the error presence (fails if the user entered the room). */
export async function joinError(s: Session, room: string, nick: string, opts: JoinOptions = {}): Promise<XmlElement> {
  const r = await tryJoin(s, room, nick, opts);
  if (r.ok) throw new assert.AssertionError({ message: `${s.jid} entered ${room} as ${nick} but was expected to be refused: ${describePresence(r.joined.self)}` });
  return r.error;
}

/** Exits the room (§7.14) and returns the self unavailable presence (status 110). */
export async function leave(s: Session, room: string, nick: string, status?: string, timeoutMs = 10_000): Promise<XmlElement> {
  await s.send(xml('presence', { to: `${room}/${nick}`, type: 'unavailable' }, status !== undefined ? xml('status', {}, status) : null));
  return s.waitFor((el) => presenceOf(room, nick, 'unavailable')(el) && statusCodes(el).includes(110), timeoutMs, `the self unavailable presence (110) from ${room}/${nick}`);
}

// ---------------------------------------------------------------------------
// Messages.

/** Sends a groupchat message to the room (§7.4); returns its id. */
export async function sendGroupchat(s: Session, room: string, body: string, id = uniqueName('gc')): Promise<string> {
  await s.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, body)));
  return id;
}

/** Predicate: a groupchat message reflected by the room with this id (any occupant JID). */
export function reflectionOf(room: string, id: string): (el: XmlElement) => boolean {
  return (el) => el.name === 'message' && el.attrs.type === 'groupchat' && el.attrs.id === id && fromRoom(el, room) && nickOf(el) !== undefined;
}

/** Predicate: a message of type error with this id. */
export function messageErrorFor(id: string): (el: XmlElement) => boolean {
  return (el) => el.name === 'message' && el.attrs.type === 'error' && el.attrs.id === id;
}

/** Sends a groupchat message and waits for its reflection at the sender; returns the reflection. */
export async function say(s: Session, room: string, body: string, timeoutMs = 10_000): Promise<XmlElement> {
  const id = await sendGroupchat(s, room, body);
  const el = await s.waitFor((e) => reflectionOf(room, id)(e) || messageErrorFor(id)(e), timeoutMs, `the reflection of groupchat ${id} by ${room}`);
  if (el.attrs.type === 'error') throw new Error(`groupchat ${id} to ${room} refused: ${describeError(el)}: ${el.toString()}`);
  return el;
}

/** Sends a subject change (§8.1); returns its id. */
export async function sendSubject(s: Session, room: string, subject: string, id = uniqueName('subj')): Promise<string> {
  await s.send(xml('message', { to: room, type: 'groupchat', id }, xml('subject', {}, subject)));
  return id;
}

/** Sets the subject and waits for its broadcast back to the sender; throws on an error. */
export async function setSubject(s: Session, room: string, subject: string, timeoutMs = 10_000): Promise<XmlElement> {
  const id = await sendSubject(s, room, subject);
  const el = await s.waitFor(
    (e) => (isSubjectMessage(e, room) && (e.getChildText('subject') ?? '') === subject) || messageErrorFor(id)(e),
    timeoutMs,
    `the broadcast of subject ${JSON.stringify(subject)} in ${room}`,
  );
  if (el.attrs.type === 'error') throw new Error(`subject change in ${room} refused: ${describeError(el)}: ${el.toString()}`);
  return el;
}

// ---------------------------------------------------------------------------
// XEP-0004 data forms.

export interface FormField {
  var: string;
  type: string | undefined;
  label: string | undefined;
  values: string[];
  /** Option values (list-single / list-multi). */
  options: string[];
}

export interface DataForm {
  type: string | undefined;
  /** Fields with a var, by var. */
  fields: Map<string, FormField>;
  /** Every <field/> in document order (including fixed ones without a var). */
  all: FormField[];
  formType: string | undefined;
  el: XmlElement;
}

export function parseForm(x: XmlElement): DataForm {
  const all = x.getChildren('field').map((f) => ({
    var: f.attrs.var ?? '',
    type: f.attrs.type,
    label: f.attrs.label,
    values: f.getChildren('value').map((v) => v.text()),
    options: f.getChildren('option').map((o) => o.getChildText('value') ?? ''),
  }));
  const fields = new Map<string, FormField>();
  for (const f of all) if (f.var) fields.set(f.var, f);
  return { type: x.attrs.type, fields, all, formType: fields.get('FORM_TYPE')?.values[0], el: x };
}

/** The value of a field (first <value/>), or undefined. */
export function fieldValue(form: DataForm, v: string): string | undefined {
  return form.fields.get(v)?.values[0];
}

/** XEP-0004 boolean: '1'/'true' → true, '0'/'false' → false, anything else → undefined. */
export function formBoolean(v: string | undefined): boolean | undefined {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/** Room configuration values by field; short names ('roomname') get the 'muc#roomconfig_' prefix. */
export type ConfigFields = Record<string, string | number | boolean | readonly string[]>;

/** The full var of a configuration field: 'roomname' → 'muc#roomconfig_roomname'; vars with '#' are kept. */
export function configVar(name: string): string {
  return name.includes('#') || name === 'FORM_TYPE' ? name : `muc#roomconfig_${name}`;
}

function formValues(v: string | number | boolean | readonly string[]): string[] {
  if (typeof v === 'boolean') return [v ? '1' : '0'];
  if (typeof v === 'number') return [String(v)];
  if (typeof v === 'string') return [v];
  return [...v];
}

/** A submitted muc#roomconfig form (§10.1.3) with the given fields (and FORM_TYPE). */
export function configForm(fields: ConfigFields): XmlElement {
  return xml(
    'x',
    { xmlns: MUC_NS.data, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, MUC_NS.roomconfig)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: configVar(k) }, ...formValues(v).map((s) => xml('value', {}, s)))),
  );
}

// ---------------------------------------------------------------------------
// muc#owner.

/** An iq to the room with a muc#owner query holding `children`. */
export function ownerIq(room: string, type: 'get' | 'set', ...children: XmlElement[]): XmlElement {
  return xml('iq', { to: room, type }, xml('query', { xmlns: MUC_NS.owner }, ...children));
}

/** Asks for the configuration form (§10.1.3 / §10.2); returns the answer. */
export function ownerGet(s: Session, room: string): Promise<XmlElement> {
  return s.iq(ownerIq(room, 'get'));
}

/** The configuration form of a muc#owner result, or null. */
export function configFormOf(answer: XmlElement): DataForm | null {
  const x = answer.getChild('query', MUC_NS.owner)?.getChild('x', MUC_NS.data);
  return x ? parseForm(x) : null;
}

/** Gets the configuration form; throws unless the answer is a result with a form. */
export async function getConfig(s: Session, room: string): Promise<DataForm> {
  const res = await ownerGet(s, room);
  assertResult(res, `configuration form request to ${room}`);
  const form = configFormOf(res);
  if (!form) throw new Error(`configuration form request to ${room}: result without a jabber:x:data form: ${res.toString()}`);
  return form;
}

/** Submits a configuration form with `fields`; returns the answer. */
export function submitConfig(s: Session, room: string, fields: ConfigFields): Promise<XmlElement> {
  return s.iq(ownerIq(room, 'set', configForm(fields)));
}

/** Submits a configuration that must be accepted. */
export async function configure(s: Session, room: string, fields: ConfigFields): Promise<void> {
  assertResult(await submitConfig(s, room, fields), `configuration of ${room} with ${JSON.stringify(fields)}`);
}

/** Accepts the default configuration (instant room, §10.1.2): an empty submitted form. */
export function submitInstant(s: Session, room: string): Promise<XmlElement> {
  return s.iq(ownerIq(room, 'set', xml('x', { xmlns: MUC_NS.data, type: 'submit' })));
}

/** Cancels the (initial) configuration (§10.1.3). */
export function cancelConfig(s: Session, room: string): Promise<XmlElement> {
  return s.iq(ownerIq(room, 'set', xml('x', { xmlns: MUC_NS.data, type: 'cancel' })));
}

/** Destroys the room (§10.9); returns the answer. */
export function destroyRoom(s: Session, room: string, opts: { jid?: string; reason?: string; password?: string } = {}): Promise<XmlElement> {
  const attrs: Record<string, string> = {};
  if (opts.jid !== undefined) attrs.jid = opts.jid;
  return s.iq(
    ownerIq(
      room,
      'set',
      xml(
        'destroy',
        attrs,
        opts.reason !== undefined ? xml('reason', {}, opts.reason) : null,
        opts.password !== undefined ? xml('password', {}, opts.password) : null,
      ),
    ),
  );
}

/**
 * Creates a room (§10.1): joins with the MUC <x/> (expecting status 201),
 * then accepts the default configuration (no `config`) or submits `config`
 * (a reserved room). Returns the creator's join.
 */
export async function createRoom(s: Session, room: string, nick: string, config?: ConfigFields, opts: JoinOptions = {}): Promise<Joined> {
  const joined = await join(s, room, nick, opts);
  if (!joined.codes.includes(201)) {
    throw new Error(`creating ${room}: the self-presence lacks status 201 (room created), so the room existed already: ${describePresence(joined.self)}`);
  }
  if (config === undefined) {
    assertResult(await submitInstant(s, room), `instant room ${room}`);
  } else {
    await getConfig(s, room);
    assertResult(await submitConfig(s, room, config), `initial configuration of ${room} with ${JSON.stringify(config)}`);
  }
  return joined;
}

// ---------------------------------------------------------------------------
// muc#admin.

export interface AdminItemSpec {
  nick?: string;
  jid?: string;
  role?: string;
  affiliation?: string;
  reason?: string;
}

export function adminItem(spec: AdminItemSpec): XmlElement {
  const attrs: Record<string, string> = {};
  for (const k of ['nick', 'jid', 'role', 'affiliation'] as const) {
    const v = spec[k];
    if (v !== undefined) attrs[k] = v;
  }
  return xml('item', attrs, spec.reason !== undefined ? xml('reason', {}, spec.reason) : null);
}

/** A muc#admin set with `items`; returns the answer. */
export function adminSet(s: Session, room: string, ...items: AdminItemSpec[]): Promise<XmlElement> {
  return s.iq(xml('iq', { to: room, type: 'set' }, xml('query', { xmlns: MUC_NS.admin }, ...items.map(adminItem))));
}

/** A muc#admin set that must succeed. */
export async function adminSetOk(s: Session, room: string, ...items: AdminItemSpec[]): Promise<void> {
  assertResult(await adminSet(s, room, ...items), `muc#admin set ${items.map((i) => adminItem(i).toString()).join('')} in ${room} by ${s.jid}`);
}

/** A muc#admin get of a list (`{affiliation}` or `{role}`, §9.2, §9.5, §8.5…); returns the answer and its items. */
export async function adminGet(s: Session, room: string, filter: { affiliation?: string; role?: string }): Promise<{ stanza: XmlElement; items: MucItem[] }> {
  const res = await s.iq(xml('iq', { to: room, type: 'get' }, xml('query', { xmlns: MUC_NS.admin }, adminItem(filter))));
  const q = res.getChild('query', MUC_NS.admin);
  return { stanza: res, items: q ? q.getChildren('item').map(parseItem) : [] };
}

/** Kicks an occupant (§8.2): role none by nick. */
export function kick(s: Session, room: string, nick: string, reason?: string): Promise<XmlElement> {
  return adminSet(s, room, { nick, role: 'none', reason });
}

// ---------------------------------------------------------------------------
// XEP-0030 disco and XEP-0059 result sets.

export interface DiscoInfo {
  stanza: XmlElement;
  identities: Array<{ category?: string; type?: string; name?: string }>;
  features: string[];
  forms: DataForm[];
}

/** disco#info of `to` (optionally a node); returns the raw answer. */
export function discoInfo(s: Session, to: string, node?: string): Promise<XmlElement> {
  const attrs: Record<string, string> = { xmlns: MUC_NS.discoInfo };
  if (node !== undefined) attrs.node = node;
  return s.iq(xml('iq', { to, type: 'get' }, xml('query', attrs)));
}

export function parseDiscoInfo(answer: XmlElement): DiscoInfo {
  const q = answer.getChild('query', MUC_NS.discoInfo);
  return {
    stanza: answer,
    identities: (q?.getChildren('identity') ?? []).map((i) => ({ category: i.attrs.category, type: i.attrs.type, name: i.attrs.name })),
    features: (q?.getChildren('feature') ?? []).map((f) => f.attrs.var ?? ''),
    forms: (q?.getChildren('x', MUC_NS.data) ?? []).map(parseForm),
  };
}

/** disco#info that must succeed, parsed. */
export async function roomInfo(s: Session, room: string): Promise<DiscoInfo> {
  const res = await discoInfo(s, room);
  assertResult(res, `disco#info of ${room}`);
  return parseDiscoInfo(res);
}

/** The muc#roominfo form of a room's disco#info (§6.4), or undefined. */
export function roomInfoForm(info: DiscoInfo): DataForm | undefined {
  return info.forms.find((f) => f.formType === MUC_NS.roominfo);
}

export interface RsmRequest {
  max?: number;
  after?: string;
  before?: string;
  index?: number;
}

export interface RsmResult {
  first?: string;
  firstIndex?: number;
  last?: string;
  count?: number;
}

export interface DiscoItems {
  stanza: XmlElement;
  items: Array<{ jid: string; name?: string; node?: string }>;
  /** The XEP-0059 <set/> of the answer, if any. */
  rsm?: RsmResult;
}

/** disco#items of `to`, optionally with an XEP-0059 <set/>; returns the raw answer. */
export function discoItems(s: Session, to: string, rsm?: RsmRequest): Promise<XmlElement> {
  const set = rsm
    ? xml(
        'set',
        { xmlns: MUC_NS.rsm },
        rsm.max !== undefined ? xml('max', {}, String(rsm.max)) : null,
        rsm.after !== undefined ? xml('after', {}, rsm.after) : null,
        rsm.before !== undefined ? xml('before', {}, rsm.before) : null,
        rsm.index !== undefined ? xml('index', {}, String(rsm.index)) : null,
      )
    : null;
  return s.iq(xml('iq', { to, type: 'get' }, xml('query', { xmlns: MUC_NS.discoItems }, set)));
}

export function parseDiscoItems(answer: XmlElement): DiscoItems {
  const q = answer.getChild('query', MUC_NS.discoItems);
  const out: DiscoItems = {
    stanza: answer,
    items: (q?.getChildren('item') ?? []).map((i) => ({ jid: i.attrs.jid ?? '', name: i.attrs.name, node: i.attrs.node })),
  };
  const set = q?.getChild('set', MUC_NS.rsm);
  if (set) {
    const first = set.getChild('first');
    const rsm: RsmResult = {};
    if (first) {
      rsm.first = first.text();
      if (first.attrs.index !== undefined) rsm.firstIndex = Number(first.attrs.index);
    }
    const last = set.getChild('last');
    if (last) rsm.last = last.text();
    const count = set.getChildText('count');
    if (count !== null) rsm.count = Number(count);
    out.rsm = rsm;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Cluster: which muc instance owns a room.

/**
 * The room-actor shard of a bare room JID: 32-bit FNV-1a of its UTF-8 bytes
 * mod `muc.shards` (default 64) — the same function as `userShard()`.
 */
export function mucShard(roomBare: string, shards = 64): number {
  return userShard(roomBare, shards);
}

/** The Redis key of a MUC shard's lease. */
export function mucLeaseKey(shard: number): string {
  return `hy:lease:{muc:shard:${shard}}`;
}

/** The node id holding the lease of `roomBare`'s shard, or null. */
export async function mucLeaseHolder(cluster: ClusterServer, roomBare: string, shards = 64): Promise<string | null> {
  const holder = await redisCommand(cluster.redis.port, ['GET', mucLeaseKey(mucShard(roomBare.toLowerCase(), shards))]);
  return typeof holder === 'string' ? holder : null;
}

/** Index in `cluster.muc` of the instance owning `roomBare` (its shard lease holder); -1 when none holds it. */
export async function mucOwner(cluster: ClusterServer, roomBare: string, shards = 64): Promise<number> {
  const holder = await mucLeaseHolder(cluster, roomBare, shards);
  return holder === null ? -1 : cluster.muc.findIndex((m) => m.nodeId === holder);
}

// ---------------------------------------------------------------------------
// Misc.

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
