/**
 * A group of benchmark clients living in one worker thread: logs them in,
 * joins rooms, sends paced groupchat messages and counts every delivery.
 * The runner (main thread) drives groups through `GroupCommands`
 * (worker.ts is the message loop around this class).
 *
 * Hot path: each client's `fast` hook reads room messages and presences with
 * string searches (no XML tree). A bench message body is
 * `hyb1 <run> <sender> <seq> <sendNs>[ padding]`; the receive time is the
 * arrival of the TCP chunk that carried it (client.rxAt).
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import type { Element } from 'ltx';
import { BenchClient, NS, errorCondition, loginClient, nextId, nowNs, type Endpoint, type LoginTimings } from './client.js';
import type { ScramMechanism } from './scram.js';
import { attr, escapeXml } from './framing.js';
import { mapLimit } from './provision.js';
import { encodeHistogram, newHistogram, recordMs } from './stats.js';
import { overloadWave, type OverloadOutcome, type OverloadPlan } from './overload-wave.js';

export const BODY_MARK = 'hyb1 ';

/**
 * The contacts of member `i` of `n`: its ring neighbours i±1 … i±k/2, so
 * that contact lists are symmetric (a roster of mutual subscriptions) and
 * every member has k of them (k even, n > k).
 */
export function contactsOf(i: number, n: number, k: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= k / 2; d++) out.push((i + d) % n, (i - d + n) % n);
  return out;
}

export interface Member {
  idx: number;
  username: string;
  password: string;
  endpoint: Endpoint;
}

export interface GroupInit {
  domain: string;
  /** Total occupants of the run (sender indices are 0 … occupants-1). */
  occupants: number;
  timeoutMs: number;
  mechanism: ScramMechanism;
  resource: string;
}

export interface LoginOutcome {
  idx: number;
  timings?: LoginTimings;
  error?: string;
}

export interface JoinOutcome {
  idx: number;
  /** Presence sent → self-presence (status 110) received. */
  selfPresenceMs: number;
  /** Presence sent → room subject received (null when create does not wait for it). */
  subjectMs: number | null;
  /** Status codes of the self-presence. */
  codes: number[];
  /** muc#owner configuration round trip (room creation only). */
  configureMs?: number;
}

/**
 * What a send phase sends:
 * - groupchat: `<message type="groupchat">` to `room`, delivered to every occupant;
 * - chat: `<message type="chat">` to a contact's bare JID, the contacts of a sender taken in turn;
 * - presence: a presence broadcast (RFC 6121 §4.4.2) with the mark in `<status/>`, delivered to every contact.
 */
export type SendKind = 'groupchat' | 'chat' | 'presence';

export interface SendPlan {
  kind: SendKind;
  run: string;
  /** groupchat: the room's bare JID. */
  room: string;
  /** chat: every member's bare JID, by index (recipients are `contactsOf(sender)`). */
  jids: string[];
  /** chat and presence: contacts per member (see contactsOf). */
  contacts: number;
  /** Indices of this group's senders. */
  senders: number[];
  /** This group's share of the offered rate, messages/s. */
  rate: number;
  /** Common start (nowNs) of every group. */
  startNs: number;
  /** Sending stops at startNs + durationMs … */
  durationMs: number;
  /** … or after this many messages from this group (0: no limit). */
  maxMessages: number;
  /** Deliveries of messages sent before this are not in the latency histogram. */
  warmupEndNs: number;
  /** Characters of padding after the body's fields. */
  bodyBytes: number;
}

export interface SendOutcome {
  sent: number;
  /** Encoded histogram of how late (µs) each send was against its schedule. */
  lag: string;
  firstSendNs: number;
  lastSendNs: number;
}

export interface Progress {
  sent: number;
  received: number;
  errors: number;
  /** Largest delivery latency since the previous progress call, ms. */
  recentMaxMs: number;
  disconnected: number;
  /** Event-loop utilization of this worker since the previous progress call. */
  elu: number;
  /** Bytes queued in user space on the sockets (write backpressure). */
  writeQueueBytes: number;
}

/** What a login wave did in one worker (histograms of ms steps, encoded). */
export interface WaveOutcome {
  attempted: number;
  completed: number;
  failed: number;
  errors: Record<string, number>;
  /** total, connect, tls, auth, bind, roster: encoded µs histograms. */
  hist: Record<string, string>;
  firstDoneNs: number;
  lastDoneNs: number;
}

function finishWave(out: WaveOutcome, steps: Record<string, Histogram>): WaveOutcome {
  for (const [k, h] of Object.entries(steps)) {
    out.hist[k] = encodeHistogram(h);
    h.destroy();
  }
  return out;
}

export interface GroupStats {
  /** Per sender index: messages sent, refused with an error, and delivered to this group's members. */
  sentBySender: number[];
  errorsBySender: number[];
  receivedFromSender: number[];
  outOfOrderFromSender: number[];
  duplicatesFromSender: number[];
  errorsByCondition: Record<string, number>;
  /** Encoded latency histogram (µs) of measured deliveries. */
  latency: string;
  /** Deliveries received in the measurement window. */
  windowDeliveries: number;
  firstRxNs: number;
  lastRxNs: number;
  /** Bench messages of another run (stragglers), ignored. */
  stray: number;
  /** Event-loop utilization of this worker during the send phase (0…1). */
  elu: number;
  /** Event-loop delay of this worker during the send and drain phases, ms (how late any timer or I/O callback ran). */
  loopDelay: { p50: number; p99: number; max: number };
  disconnected: number;
  disconnectReasons: string[];
  /** Room stanzas the hot path did not recognise, by kind. */
  other: Record<string, number>;
}

interface JoinWait {
  room: string;
  nick: string;
  t0: number;
  selfAt: number;
  codes: number[];
  needSubject: boolean;
  resolve: (o: JoinOutcome) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class Occupant {
  client: BenchClient | null = null;
  /** Highest sequence number seen per sender (-1: none yet). */
  lastSeq: Int32Array;
  /** Available room presences received (one per occupant when all have joined). */
  roomPresences = 0;
  join: JoinWait | null = null;
  room = '';
  /** Contacts (bare JIDs) this occupant has asked for a subscription. */
  readonly subscribing = new Set<string>();
  /** Available presences received from contacts (not rooms), and the distinct contacts they came from. */
  contactPresences = 0;
  readonly contactsSeen = new Set<string>();
  disconnectReason: string | null = null;
  constructor(
    readonly m: Member,
    occupants: number,
  ) {
    this.lastSeq = new Int32Array(occupants).fill(-1);
  }
}

export class ClientGroup {
  private init!: GroupInit;
  /** Approve subscription requests and ask back (the presence scenario's roster setup). */
  private autoAccept = false;
  private readonly members = new Map<number, Occupant>();
  private run = '';
  private warmupEndNs = 0;
  private windowStartNs = 0;
  private windowEndNs = 0;
  private sentBySender: Float64Array = new Float64Array(0);
  private errorsBySender: Float64Array = new Float64Array(0);
  private receivedFromSender: Float64Array = new Float64Array(0);
  private oooFromSender: Float64Array = new Float64Array(0);
  private dupFromSender: Float64Array = new Float64Array(0);
  private errorsByCondition: Record<string, number> = {};
  private other: Record<string, number> = {};
  private latency: Histogram = newHistogram();
  private windowDeliveries = 0;
  private firstRxNs = 0;
  private lastRxNs = 0;
  private stray = 0;
  private totalSent = 0;
  private totalReceived = 0;
  private totalErrors = 0;
  private recentMaxUs = 0;
  private eluMark = performance.eventLoopUtilization();
  private sendElu: ReturnType<typeof performance.eventLoopUtilization> | null = null;
  private sendEluStart = performance.eventLoopUtilization();
  private loopDelay: IntervalHistogram | null = null;
  /** Sessions of the overload scenario, held open until closeAll. */
  private readonly held: BenchClient[] = [];

  setup(init: GroupInit): void {
    this.init = init;
    this.resetCounters();
  }

  private resetCounters(): void {
    const n = this.init.occupants;
    this.sentBySender = new Float64Array(n);
    this.errorsBySender = new Float64Array(n);
    this.receivedFromSender = new Float64Array(n);
    this.oooFromSender = new Float64Array(n);
    this.dupFromSender = new Float64Array(n);
    this.errorsByCondition = {};
    this.other = {};
    this.latency.destroy();
    this.latency = newHistogram();
    this.windowDeliveries = 0;
    this.firstRxNs = 0;
    this.lastRxNs = 0;
    this.stray = 0;
    this.totalSent = 0;
    this.totalReceived = 0;
    this.totalErrors = 0;
    this.recentMaxUs = 0;
    this.sendElu = null;
  }

  private occupant(idx: number): Occupant {
    const o = this.members.get(idx);
    if (!o || !o.client) throw new Error(`occupant ${idx} is not logged in in this group`);
    return o;
  }

  /** Logs the members in, `concurrency` at a time. */
  async login(a: { members: Member[]; concurrency: number }): Promise<LoginOutcome[]> {
    return mapLimit(a.members, a.concurrency, async (m) => {
      const o = new Occupant(m, this.init.occupants);
      this.members.set(m.idx, o);
      try {
        const { client, timings } = await loginClient(
          { endpoint: m.endpoint, domain: this.init.domain, timeoutMs: this.init.timeoutMs },
          { username: m.username, password: m.password, resource: this.init.resource, mechanism: this.init.mechanism },
        );
        o.client = client;
        client.fast = (xml) => this.fast(o, client, xml);
        client.onStanza = (el) => this.slow(o, client, el);
        client.onClose = (reason) => {
          o.disconnectReason = reason;
          if (o.join) {
            clearTimeout(o.join.timer);
            o.join.reject(new Error(`occupant ${m.idx} disconnected while joining: ${reason}`));
            o.join = null;
          }
        };
        return { idx: m.idx, timings };
      } catch (err) {
        this.members.delete(m.idx);
        return { idx: m.idx, error: (err as Error).message };
      }
    });
  }

  /** Hot path: room messages and presences. */
  private fast(o: Occupant, c: BenchClient, xml: string): boolean {
    if (xml.startsWith('<message')) {
      const type = attr(xml, 'type');
      if (type === 'chat') {
        const at = xml.indexOf('<body>');
        if (at < 0 || !xml.startsWith(BODY_MARK, at + 6)) return false;
        this.delivery(o, c, xml, at + 6 + BODY_MARK.length, '</body>');
        return true;
      }
      if (type !== 'groupchat') return false; // errors and the rest: slow path
      const bodyAt = xml.indexOf('<body>');
      if (bodyAt >= 0 && xml.startsWith(BODY_MARK, bodyAt + 6)) {
        this.delivery(o, c, xml, bodyAt + 6 + BODY_MARK.length, '</body>');
        return true;
      }
      if (bodyAt < 0 && xml.includes('<subject')) {
        const j = o.join;
        if (j && j.selfAt > 0 && attr(xml, 'from')?.startsWith(j.room)) this.joined(o, c.rxAt);
        return true;
      }
      this.other['groupchat-other'] = (this.other['groupchat-other'] ?? 0) + 1;
      return true;
    }
    if (xml.startsWith('<presence')) {
      const from = attr(xml, 'from');
      const type = attr(xml, 'type');
      if (type === 'error' || !from) return false;
      if (!o.room || !from.startsWith(`${o.room}/`)) {
        // A contact's presence (subscription requests and the rest go to the slow path).
        if (type !== undefined && type !== 'unavailable') return false;
        // RFC 6121 §4.2.2 and §4.4.2: the user's own resources get its presence too; not a contact's.
        if (from.startsWith(`${o.m.username}@`)) return true;
        const at = xml.indexOf('<status>');
        if (at >= 0 && xml.startsWith(BODY_MARK, at + 8)) this.delivery(o, c, xml, at + 8 + BODY_MARK.length, '</status>');
        else if (type === undefined) {
          o.contactPresences++;
          const slash = from.indexOf('/');
          o.contactsSeen.add(slash < 0 ? from : from.slice(0, slash));
        }
        return true;
      }
      if (type === undefined) o.roomPresences++;
      const j = o.join;
      if (j && j.selfAt === 0 && from === `${j.room}/${j.nick}` && (xml.includes("code='110'") || xml.includes('code="110"'))) {
        j.selfAt = c.rxAt;
        for (const m of xml.matchAll(/<status\s+code=['"](\d+)['"]/g)) j.codes.push(Number(m[1]));
        if (!j.needSubject) this.joined(o, 0);
      }
      return true;
    }
    return false;
  }

  private delivery(o: Occupant, c: BenchClient, xml: string, at: number, endTag: string): void {
    const end = xml.indexOf(endTag, at);
    const f = xml.slice(at, end).split(' ');
    if (f[0] !== this.run) {
      this.stray++;
      return;
    }
    const sender = Number(f[1]);
    const seq = Number(f[2]);
    const sentNs = Number(f[3]);
    const rx = c.rxAt;
    this.totalReceived++;
    this.receivedFromSender[sender] = (this.receivedFromSender[sender] as number) + 1;
    const last = o.lastSeq[sender] as number;
    if (seq > last) o.lastSeq[sender] = seq;
    else if (seq === last) this.dupFromSender[sender] = (this.dupFromSender[sender] as number) + 1;
    else this.oooFromSender[sender] = (this.oooFromSender[sender] as number) + 1;
    const us = (rx - sentNs) / 1000;
    if (sentNs >= this.warmupEndNs) this.latency.recordValue(us < 1 ? 1 : Math.round(us));
    if (us > this.recentMaxUs) this.recentMaxUs = us;
    if (rx >= this.windowStartNs && rx <= this.windowEndNs) this.windowDeliveries++;
    if (this.firstRxNs === 0 || rx < this.firstRxNs) this.firstRxNs = rx;
    if (rx > this.lastRxNs) this.lastRxNs = rx;
  }

  /** Everything the hot path did not take, parsed. */
  private slow(o: Occupant, c: BenchClient, el: Element): void {
    const type = el.attrs.type as string | undefined;
    if (el.name === 'message' && type === 'error') {
      const id = String(el.attrs.id ?? '');
      const m = /^m(\d+)\.(\d+)$/.exec(id);
      const cond = errorCondition(el) ?? 'unknown';
      if (m) {
        this.errorsBySender[Number(m[1])] = (this.errorsBySender[Number(m[1])] as number) + 1;
        this.totalErrors++;
      }
      this.errorsByCondition[cond] = (this.errorsByCondition[cond] ?? 0) + 1;
      return;
    }
    if (el.name === 'presence' && type === 'error') {
      const j = o.join;
      const cond = errorCondition(el) ?? 'unknown';
      this.errorsByCondition[`presence:${cond}`] = (this.errorsByCondition[`presence:${cond}`] ?? 0) + 1;
      if (j && String(el.attrs.from ?? '').startsWith(j.room)) {
        clearTimeout(j.timer);
        o.join = null;
        j.reject(new Error(`occupant ${o.m.idx} could not join ${j.room}: ${cond}${cond === 'service-unavailable' ? ' (room full? raise muc#roomconfig_maxusers / muc.defaultMaxUsers)' : ''}`));
      }
      return;
    }
    if (el.name === 'presence' && type === 'subscribe' && this.autoAccept) {
      // RFC 6121 §3.1.4 approve, and §3.1.1 ask back unless already subscribed or asked.
      const from = String(el.attrs.from ?? '').split('/')[0] as string;
      const c2 = escapeXml(from);
      c.send(`<presence to="${c2}" type="subscribed"/>`);
      const sub = c.roster.get(from);
      if (sub !== 'to' && sub !== 'both' && !o.subscribing.has(from)) {
        o.subscribing.add(from);
        c.send(`<presence to="${c2}" type="subscribe"/>`);
      }
      return;
    }
    if (el.name === 'iq' && type === 'set' && el.getChild('query', NS.roster)) {
      // RFC 6121 §2.1.6 roster push: keep the roster, acknowledge.
      for (const item of el.getChild('query', NS.roster)?.getChildren('item') ?? []) {
        const sub = String(item.attrs.subscription ?? 'none');
        if (sub === 'remove') c.roster.delete(String(item.attrs.jid));
        else c.roster.set(String(item.attrs.jid), sub);
      }
      c.send(`<iq type="result" id="${escapeXml(String(el.attrs.id ?? ''))}"/>`);
      return;
    }
    if (el.name === 'presence' && (type === 'subscribed' || type === 'unsubscribe' || type === 'unsubscribed')) return;
    if (el.name === 'iq' && (type === 'get' || type === 'set')) {
      // A real client answers every request: pings with a result, the rest with an error.
      const id = escapeXml(String(el.attrs.id ?? ''));
      const to = el.attrs.from ? ` to="${escapeXml(String(el.attrs.from))}"` : '';
      if (type === 'get' && el.getChild('ping', 'urn:xmpp:ping')) c.send(`<iq type="result" id="${id}"${to}/>`);
      else c.send(`<iq type="error" id="${id}"${to}><error type="cancel"><service-unavailable xmlns="${NS.stanzas}"/></error></iq>`);
      return;
    }
    const key = `${el.name}${type ? `:${type}` : ''}`;
    this.other[key] = (this.other[key] ?? 0) + 1;
  }

  private joined(o: Occupant, subjectAt: number): void {
    const j = o.join;
    if (!j) return;
    clearTimeout(j.timer);
    o.join = null;
    j.resolve({ idx: o.m.idx, selfPresenceMs: (j.selfAt - j.t0) / 1e6, subjectMs: subjectAt > 0 ? (subjectAt - j.t0) / 1e6 : null, codes: j.codes });
  }

  private enter(o: Occupant, room: string, nick: string, needSubject: boolean): Promise<JoinOutcome> {
    const c = o.client as BenchClient;
    o.room = room;
    return new Promise<JoinOutcome>((resolve, reject) => {
      const j: JoinWait = {
        room,
        nick,
        t0: nowNs(),
        selfAt: 0,
        codes: [],
        needSubject,
        resolve,
        reject,
        timer: setTimeout(() => {
          o.join = null;
          reject(new Error(`occupant ${o.m.idx} (${c.jid}): no ${j.selfAt === 0 ? 'self-presence' : 'subject'} from ${room} within ${this.init.timeoutMs} ms`));
        }, this.init.timeoutMs),
      };
      o.join = j;
      c.send(`<presence to="${escapeXml(room)}/${escapeXml(nick)}"><x xmlns="${NS.muc}"/></presence>`);
    });
  }

  /**
   * XEP-0045 §10.1.2: enter a new room with the MUC `<x/>` (it is created
   * locked), then unlock it by submitting an empty configuration form.
   */
  async createRoom(a: { idx: number; room: string; nick: string }): Promise<JoinOutcome> {
    const o = this.occupant(a.idx);
    const c = o.client as BenchClient;
    const out = await this.enter(o, a.room, a.nick, false);
    if (!out.codes.includes(201)) throw new Error(`${a.room} already existed (self-presence status codes ${out.codes.join(',')}, no 201): use a fresh room name`);
    const id = nextId('cfg');
    const t0 = nowNs();
    const r = await c.iq(
      `<iq type="set" id="${id}" to="${escapeXml(a.room)}"><query xmlns="${NS.mucOwner}"><x xmlns="${NS.data}" type="submit"/></query></iq>`,
      id,
      `the configuration of ${a.room}`,
    );
    if (r.attrs.type !== 'result') throw new Error(`configuring ${a.room} failed: ${errorCondition(r)}: ${r.toString().slice(0, 300)}`);
    return { ...out, configureMs: (nowNs() - t0) / 1e6 };
  }

  /** Enters an existing room; resolves once the subject arrived (§7.2.15: it comes last). */
  join(a: { idx: number; room: string; nick: string }): Promise<JoinOutcome> {
    return this.enter(this.occupant(a.idx), a.room, a.nick, true);
  }

  /**
   * Mutual subscriptions (RFC 6121 §3.1) for the pairs whose first member
   * lives here: it asks, the other side approves and asks back (autoAccept
   * on every group). Pairs already `both` in the login's roster are skipped.
   */
  subscribe(a: { pairs: Array<[number, number]>; jids: string[] }): { asked: number; already: number } {
    this.autoAccept = true;
    let asked = 0;
    let already = 0;
    for (const [i, j] of a.pairs) {
      const o = this.members.get(i);
      if (!o?.client) continue;
      const jid = a.jids[j] as string;
      if (o.client.roster.get(jid) === 'both') {
        already++;
        continue;
      }
      if (o.subscribing.has(jid)) continue;
      o.subscribing.add(jid);
      o.client.send(`<presence to="${escapeXml(jid)}" type="subscribe"/>`);
      asked++;
    }
    return { asked, already };
  }

  /** Per member here: how many roster items are `both`. */
  rosterStatus(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [idx, o] of this.members) {
      let both = 0;
      for (const sub of o.client?.roster.values() ?? []) if (sub === 'both') both++;
      out[idx] = both;
    }
    return out;
  }

  /**
   * Available presences from contacts (not rooms, not bench marks) received
   * so far, in all, and the distinct (member, contact) pairs they covered: a
   * probe answer and a broadcast can both arrive when two contacts log in
   * at the same moment (RFC 6121 §4.3 and §4.2.2 race), so only the latter
   * has an exact expectation.
   */
  contactPresences(): { received: number; pairs: number } {
    let received = 0;
    let pairs = 0;
    for (const o of this.members.values()) {
      received += o.contactPresences;
      pairs += o.contactsSeen.size;
    }
    return { received, pairs };
  }

  /**
   * Open-loop logins: member k mod |members| starts logging in at
   * startNs + k/rate (a fresh resource each time), until durationMs; each
   * login closes its stream once the roster and initial presence are done.
   * At most `maxInFlight` at once (beyond that an attempt counts as failed:
   * the server is not keeping up).
   */
  async loginWave(a: { members: Member[]; rate: number; startNs: number; durationMs: number; resourcePrefix: string; maxInFlight: number }): Promise<WaveOutcome> {
    const steps = { total: newHistogram(), connect: newHistogram(), tls: newHistogram(), auth: newHistogram(), bind: newHistogram(), roster: newHistogram() };
    const out: WaveOutcome = { attempted: 0, completed: 0, failed: 0, errors: {}, hist: {}, firstDoneNs: 0, lastDoneNs: 0 };
    if (a.members.length === 0 || a.rate <= 0) return finishWave(out, steps);
    const intervalNs = 1e9 / a.rate;
    const total = Math.floor((a.durationMs * 1e6) / intervalNs);
    let started = 0;
    let inFlight = 0;
    const running: Promise<void>[] = [];
    const fail = (why: string): void => {
      out.failed++;
      const key = why.replace(/\d+/g, 'N').slice(0, 80);
      out.errors[key] = (out.errors[key] ?? 0) + 1;
    };
    const one = async (k: number): Promise<void> => {
      const m = a.members[k % a.members.length] as Member;
      inFlight++;
      try {
        const { client, timings } = await loginClient(
          { endpoint: m.endpoint, domain: this.init.domain, timeoutMs: this.init.timeoutMs },
          { username: m.username, password: m.password, resource: `${a.resourcePrefix}${k}`, mechanism: this.init.mechanism },
        );
        const now = nowNs();
        out.completed++;
        if (out.firstDoneNs === 0) out.firstDoneNs = now;
        out.lastDoneNs = now;
        recordMs(steps.total, timings.total);
        recordMs(steps.connect, timings.connect);
        recordMs(steps.tls, timings.tls);
        recordMs(steps.auth, timings.auth);
        recordMs(steps.bind, timings.bind);
        recordMs(steps.roster, timings.roster);
        inFlight--;
        await client.close(2_000).catch(() => undefined);
      } catch (err) {
        inFlight--;
        fail((err as Error).message);
      }
    };
    const wait = (a.startNs - nowNs()) / 1e6;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(Math.floor((nowNs() - a.startNs) / intervalNs) + 1, total);
        while (started < due) {
          out.attempted++;
          if (inFlight >= a.maxInFlight) fail(`more than ${a.maxInFlight} logins in flight`);
          else running.push(one(started));
          started++;
        }
        if (started >= total) return resolve();
        const next = (a.startNs + started * intervalNs - nowNs()) / 1e6;
        setTimeout(tick, next > 1 ? Math.floor(next) : 0);
      };
      tick();
    });
    await Promise.all(running);
    return finishWave(out, steps);
  }

  /** The overload scenario's logins (overload-wave.ts); the sessions stay open until closeAll. */
  overloadWave(p: OverloadPlan): Promise<OverloadOutcome> {
    return overloadWave(p, this.init, this.held);
  }

  /** Available room presences each member has received, by index. */
  presences(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [idx, o] of this.members) out[idx] = o.roomPresences;
    return out;
  }

  /** Sends paced groupchat messages; resolves when this group's share is sent. */
  async send(p: SendPlan): Promise<SendOutcome> {
    this.resetCounters();
    this.run = p.run;
    this.warmupEndNs = p.warmupEndNs;
    this.windowStartNs = p.warmupEndNs;
    this.windowEndNs = p.startNs + p.durationMs * 1e6;
    for (const o of this.members.values()) o.lastSeq.fill(-1);
    const senders = p.senders.map((i) => this.occupant(i));
    const lag = newHistogram();
    const seqs = new Int32Array(this.init.occupants);
    const room = escapeXml(p.room);
    const n = this.init.occupants;
    const recipients = p.kind === 'chat' ? p.senders.map((i) => contactsOf(i, n, p.contacts).map((j) => escapeXml(p.jids[j] as string))) : [];
    const rIdx = p.kind === 'chat' ? new Map(p.senders.map((i, k) => [i, k])) : new Map<number, number>();
    const stanza =
      p.kind === 'groupchat'
        ? (s: number, seq: number, mark: string): string => `<message to="${room}" type="groupchat" id="m${s}.${seq}"><body>${mark}</body></message>`
        : p.kind === 'chat'
          ? (s: number, seq: number, mark: string): string => {
              const to = recipients[rIdx.get(s) as number] as string[];
              return `<message to="${to[seq % to.length]}" type="chat" id="m${s}.${seq}"><body>${mark}</body></message>`;
            }
          : (_s: number, _seq: number, mark: string): string => `<presence><status>${mark}</status></presence>`;
    const pad = p.bodyBytes > 0 ? ' ' + 'x'.repeat(p.bodyBytes) : '';
    const intervalNs = 1e9 / p.rate;
    const endNs = this.windowEndNs;
    // Messages k = 0, 1, … are due at startNs + k·interval, for every k with that time before endNs.
    const total = Math.ceil((endNs - p.startNs) / intervalNs);
    let sent = 0;
    let rr = 0;
    let firstSendNs = 0;
    let lastSendNs = 0;
    if (senders.length === 0 || p.rate <= 0) return { sent: 0, lag: encodeHistogram(lag), firstSendNs, lastSendNs };
    const wait = (p.startNs - nowNs()) / 1e6;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.sendEluStart = performance.eventLoopUtilization();
    this.eluMark = this.sendEluStart;
    this.loopDelay?.disable();
    this.loopDelay = monitorEventLoopDelay({ resolution: 1 });
    this.loopDelay.enable();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = nowNs();
        // Open loop: send everything that is due by now, however late the timer fired.
        let due = Math.min(Math.floor((now - p.startNs) / intervalNs) + 1, total);
        if (p.maxMessages > 0 && due > p.maxMessages) due = p.maxMessages;
        while (sent < due) {
          const o = senders[rr] as Occupant;
          rr = (rr + 1) % senders.length;
          const s = o.m.idx;
          const seq = seqs[s] as number;
          seqs[s] = seq + 1;
          const t = nowNs();
          (o.client as BenchClient).send(stanza(s, seq, `${BODY_MARK}${p.run} ${s} ${seq} ${t}${pad}`));
          this.sentBySender[s] = (this.sentBySender[s] as number) + 1;
          this.totalSent++;
          const intended = p.startNs + sent * intervalNs;
          lag.recordValue(Math.max(1, Math.round((t - intended) / 1000)));
          if (firstSendNs === 0) firstSendNs = t;
          lastSendNs = t;
          sent++;
        }
        if (sent >= total || (p.maxMessages > 0 && sent >= p.maxMessages)) {
          resolve();
          return;
        }
        const next = (p.startNs + sent * intervalNs - nowNs()) / 1e6;
        setTimeout(tick, next > 1 ? Math.floor(next) : 0);
      };
      tick();
    });
    this.sendElu = performance.eventLoopUtilization(this.sendEluStart);
    const out = { sent, lag: encodeHistogram(lag), firstSendNs, lastSendNs };
    lag.destroy();
    return out;
  }

  progress(): Progress {
    const elu = performance.eventLoopUtilization(this.eluMark);
    this.eluMark = performance.eventLoopUtilization();
    let disconnected = 0;
    let writeQueueBytes = 0;
    for (const o of this.members.values()) {
      if (o.disconnectReason !== null) disconnected++;
      else if (o.client) writeQueueBytes += o.client.writableLength;
    }
    const out = { sent: this.totalSent, received: this.totalReceived, errors: this.totalErrors, recentMaxMs: this.recentMaxUs / 1000, disconnected, elu: elu.utilization, writeQueueBytes };
    this.recentMaxUs = 0;
    return out;
  }

  stats(): GroupStats {
    const reasons = new Set<string>();
    let disconnected = 0;
    for (const o of this.members.values()) {
      if (o.disconnectReason !== null) {
        disconnected++;
        reasons.add(o.disconnectReason);
      }
    }
    const elu = this.sendElu ?? performance.eventLoopUtilization(this.sendEluStart);
    const d = this.loopDelay;
    d?.disable();
    // The histogram is in nanoseconds and includes the 1 ms sampling resolution.
    const loopDelay = d && d.count > 0 ? { p50: d.percentile(50) / 1e6, p99: d.percentile(99) / 1e6, max: d.max / 1e6 } : { p50: 0, p99: 0, max: 0 };
    return {
      sentBySender: Array.from(this.sentBySender),
      errorsBySender: Array.from(this.errorsBySender),
      receivedFromSender: Array.from(this.receivedFromSender),
      outOfOrderFromSender: Array.from(this.oooFromSender),
      duplicatesFromSender: Array.from(this.dupFromSender),
      errorsByCondition: { ...this.errorsByCondition },
      latency: encodeHistogram(this.latency),
      windowDeliveries: this.windowDeliveries,
      firstRxNs: this.firstRxNs,
      lastRxNs: this.lastRxNs,
      stray: this.stray,
      elu: elu.utilization,
      loopDelay,
      disconnected,
      disconnectReasons: [...reasons].slice(0, 5),
      other: { ...this.other },
    };
  }

  /** Closes every stream (the server makes the occupants leave their rooms). */
  async closeAll(): Promise<{ closed: number }> {
    const list = [...this.members.values()];
    this.members.clear();
    const held = this.held.splice(0);
    await Promise.all([
      ...list.map(async (o) => {
        if (!o.client) return;
        o.client.onClose = null;
        await o.client.close(3_000).catch(() => undefined);
      }),
      ...held.map((c) => c.close(3_000).catch(() => undefined)),
    ]);
    return { closed: list.length + held.length };
  }
}
