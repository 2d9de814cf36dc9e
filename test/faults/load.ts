/**
 * The load of a fault scenario: real @xmpp/client sessions over TCP on a
 * cluster's two c2s nodes.
 *
 * - `pairs` user pairs, the two users of a pair on different c2s nodes and
 *   subscribed to each other, each sending the other chat messages (to the
 *   bare JID) at `chatPerSecond` with a sequence number in the id and body;
 * - the first `occupants` users (alternating nodes) in one persistent room,
 *   each sending groupchat at `groupchatPerSecond`;
 * - every user changing its presence (show and a numbered status) every
 *   `presenceEveryMs`.
 *
 * Every send and every receipt goes into the scenario's journal
 * (account.ts). A client whose connection breaks logs in again on its own
 * node at once and retries until it can (a real client would), then rejoins
 * the room. `cycle()` logs every client out and back in, which collects
 * what went to offline storage.
 */
import { LoginError, NS, login, register, sleep, uniqueName, xml, type Session, type XmlElement } from '../harness/clients.js';
import { acceptRosterPushes, rosterGet, subscribeBothWays } from '../harness/im.js';
import { fromRoom, getConfig, newRoomJid, nickOf, pool, statusCodes, submitConfig, tryJoin } from '../harness/muc.js';
import type { ClusterServer } from '../harness/server.js';
import type { Bounce, Conn, Journal, Kind, Received, Sent, Stay } from './account.js';

export interface LoadShape {
  /** User pairs; the two users of a pair are on different c2s nodes. */
  pairs: number;
  /** Chat messages per second in each direction of a pair. */
  chatPerSecond: number;
  /** Users in the room (the first ones, so both nodes have some). */
  occupants: number;
  /** Groupchat messages per second of each occupant. */
  groupchatPerSecond: number;
  /** How often each user changes its presence. */
  presenceEveryMs: number;
}

interface User {
  readonly idx: number;
  readonly username: string;
  readonly password: string;
  readonly bare: string;
  /** Its home c2s node: where it logs in, also after a fault. */
  readonly node: number;
  /** The other user of its pair. */
  readonly peer: number;
  readonly occupant: boolean;
  session: Session | null;
  /** Index of the current connection in the journal. */
  conn: number;
  /** Being logged out by the harness: the closing is not a fault. */
  closing: boolean;
  connecting: boolean;
  /** Subscribed both ways to its peer, as its last roster get said. */
  subscribed: boolean;
  stay: Stay | null;
  /** Its nick in the room while it is there. */
  nick: string;
  joining: boolean;
  joins: number;
  chatSeq: number;
  gcSeq: number;
  presSeq: number;
}

/** The journal of the running scenario, with the indexes `stable()` needs. */
class Recorder implements Journal {
  readonly conns: Conn[] = [];
  readonly stays: Stay[] = [];
  readonly sent: Sent[] = [];
  readonly received: Received[] = [];
  readonly bounces: Bounce[] = [];
  /** First arrival of each chat id (live only) and of each groupchat copy (`id@user`). */
  readonly firstLive = new Map<string, number>();
  constructor(
    readonly users: number,
    readonly tag: string,
  ) {}

  receipt(r: Received): void {
    this.received.push(r);
    if (r.delayed) return;
    const k = r.kind === 'groupchat' ? `${r.id}@${r.by}` : r.id;
    if (!this.firstLive.has(k)) this.firstLive.set(k, r.at);
  }
}

const DELAY_NS = NS.delay;
/** Generous: CI machines are shared, and a login under a fault may wait for a backend. */
const LOGIN_TIMEOUT_MS = 10_000;
const RETRY_MS = 300;

export class LoadWorld {
  private readonly users: User[] = [];
  private rec: Recorder = new Recorder(0, 'none');
  private running = false;
  private loops: Promise<void>[] = [];
  /** Reconnections and rejoins in progress: stop() waits for them. */
  private readonly pending = new Set<Promise<void>>();
  /** Each session's connection index in the current journal (begin() renumbers the live ones). */
  private readonly connIndex = new WeakMap<Session, { index: number }>();
  private drainTimer: NodeJS.Timeout | null = null;
  /** The room all occupants are in. */
  readonly room: string;
  /** Accounts registered again because a Redis that lost its data lost them. */
  accountsRecreated = 0;

  constructor(
    private readonly cluster: ClusterServer,
    readonly shape: LoadShape,
  ) {
    this.room = newRoomJid(cluster, 'faults');
  }

  /** Registers the accounts, logs everyone in, subscribes each pair both ways and fills the room. */
  async setup(): Promise<void> {
    const n = this.shape.pairs * 2;
    const tag = uniqueName('').slice(-6);
    for (let i = 0; i < n; i++) {
      const username = `fl${tag}${i}`;
      const password = `pw-${uniqueName('')}`;
      this.users.push({
        idx: i,
        username,
        password,
        bare: `${username}@${this.cluster.domain}`,
        node: i % 2,
        peer: i % 2 === 0 ? i + 1 : i - 1,
        occupant: i < this.shape.occupants,
        session: null,
        conn: -1,
        closing: false,
        connecting: false,
        subscribed: false,
        stay: null,
        nick: '',
        joining: false,
        joins: 0,
        chatSeq: 0,
        gcSeq: 0,
        presSeq: 0,
      });
    }
    await pool(this.users, 4, (u) => register(this.cluster, u.username, u.password));
    this.drainTimer = setInterval(() => this.drainInboxes(), 1_000);
    this.drainTimer.unref();
    await this.ready();
  }

  /**
   * Brings the world back to its initial state after a scenario: processes
   * that are not running started again (their names returned), every user
   * connected (accounts registered again if the store lost them), each
   * pair subscribed both ways, the room there (created again if it was
   * lost) with every occupant in it.
   */
  async ready(deadlineMs = 90_000): Promise<string[]> {
    const restarted: string[] = [];
    for (const st of this.cluster.exitStatus()) {
      if (st.code === null && st.signal === null) continue;
      restarted.push(`${st.name} (exited ${st.code ?? st.signal})`);
      await this.cluster.restartProcess(st.name);
    }
    const deadline = Date.now() + deadlineMs;
    await pool(this.users, 5, (u) => (u.session?.isOnline ? Promise.resolve() : this.connectUntil(u, deadline)));
    for (const u of this.users) {
      if (u.idx % 2 !== 0) continue;
      const v = this.user(u.peer);
      if (u.subscribed && v.subscribed) continue;
      await subscribeBothWays(this.online(u), this.online(v), 15_000);
      u.subscribed = v.subscribed = true;
    }
    // The first occupant first: if the room is gone it creates it again.
    const occupants = this.users.filter((u) => u.occupant);
    for (const u of occupants.slice(0, 1)) if (!u.stay) await this.joinUntil(u, deadline);
    await pool(occupants.slice(1), 5, (u) => (u.stay ? Promise.resolve() : this.joinUntil(u, deadline)));
    return restarted;
  }

  /** Starts a fresh journal: every current connection and stay is opened in it now. */
  begin(): void {
    // Ids carry the scenario's tag: a straggler of an earlier scenario is not counted in this one.
    const tag = `s${uniqueName('').slice(-8)}`;
    this.rec = new Recorder(this.users.length, tag);
    const now = Date.now();
    for (const u of this.users) {
      u.chatSeq = u.gcSeq = u.presSeq = 0;
      if (!u.session) throw new Error(`${u.bare} is not connected at the start of a scenario`);
      u.conn = 0;
      const held = this.connIndex.get(u.session);
      if (held) held.index = 0;
      this.rec.conns.push({ user: u.idx, index: 0, node: u.node, openedAt: now, closedAt: null, closedByHarness: false });
      if (u.stay) {
        u.stay = { user: u.idx, conn: 0, joinedAt: now, leftAt: null, endedBy: null };
        this.rec.stays.push(u.stay);
      }
    }
  }

  journal(): Journal {
    return this.rec;
  }

  /** Starts the senders. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const s = this.shape;
    for (const u of this.users) {
      const jitter = Math.random() * 1_000;
      this.loops.push(this.every(1_000 / s.chatPerSecond, jitter / s.chatPerSecond, () => this.sendChat(u)));
      if (u.occupant && s.groupchatPerSecond > 0) {
        this.loops.push(this.every(1_000 / s.groupchatPerSecond, jitter / s.groupchatPerSecond, () => this.sendGroupchat(u)));
      }
      this.loops.push(this.every(s.presenceEveryMs, jitter * (s.presenceEveryMs / 1_000), () => this.sendPresenceUpdate(u)));
    }
  }

  /** Stops the senders (reconnections stop too). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops.splice(0));
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Runs `task` in the background; stop() waits for it. */
  private background(task: () => Promise<void>): void {
    const p = task().catch(() => undefined);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /**
   * Whether everything flowed in the last `windowMs` up to `flowMs` ago:
   * every user connected (and the occupants in the room), and every
   * message sent in that window delivered live within `flowMs`.
   */
  stable(windowMs: number, flowMs: number): boolean {
    const now = Date.now();
    const from = now - flowMs - windowMs;
    const to = now - flowMs;
    if (this.users.some((u) => !u.session?.isOnline || u.connecting || (u.occupant && !u.stay))) return false;
    let seen = 0;
    for (let i = this.rec.sent.length - 1; i >= 0; i--) {
      const s = this.rec.sent[i] as Sent;
      if (s.at < from) break;
      if (s.at > to) continue;
      if (s.kind === 'chat') {
        const at = this.rec.firstLive.get(s.id);
        if (at === undefined || at - s.at > flowMs) return false;
        seen++;
      } else if (s.kind === 'groupchat') {
        for (const st of this.rec.stays) {
          if (st.joinedAt > s.at || (st.leftAt !== null && st.leftAt <= s.at)) continue;
          const at = this.rec.firstLive.get(`${s.id}@${st.user}`);
          if (at === undefined || at - s.at > flowMs) return false;
        }
      }
    }
    return seen > 0;
  }

  /**
   * Logs every client out, then back in (roster get, presence): what was
   * kept in offline storage arrives now. Resolves once no message has
   * arrived for `quietMs` (at most `maxMs`).
   */
  async cycle(quietMs = 700, maxMs = 20_000): Promise<void> {
    await pool(this.users, 20, (u) => this.logout(u));
    const deadline = Date.now() + 90_000;
    await pool(this.users, 20, (u) => this.connectUntil(u, deadline));
    const start = Date.now();
    let count = -1;
    let since = Date.now();
    while (Date.now() - start < maxMs) {
      const n = this.rec.received.length;
      if (n !== count) {
        count = n;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) {
        break;
      }
      await sleep(100);
    }
  }

  /** Logs everyone out and stops the inbox drain. */
  async close(): Promise<void> {
    await this.stop();
    if (this.drainTimer) clearInterval(this.drainTimer);
    await pool(this.users, 10, (u) => this.logout(u));
  }

  /** Users currently connected / in the room, for the report. */
  counts(): { users: number; connected: number; occupants: number; inRoom: number } {
    return {
      users: this.users.length,
      connected: this.users.filter((u) => u.session?.isOnline).length,
      occupants: this.users.filter((u) => u.occupant).length,
      inRoom: this.users.filter((u) => u.stay).length,
    };
  }

  // -------------------------------------------------------------------------

  private user(i: number): User {
    const u = this.users[i];
    if (!u) throw new Error(`no user ${i}`);
    return u;
  }

  private online(u: User): Session {
    if (!u.session) throw new Error(`${u.bare} is not connected`);
    return u.session;
  }

  private every(everyMs: number, phaseMs: number, fn: () => Promise<void>): Promise<void> {
    return (async () => {
      await sleep(phaseMs);
      let next = Date.now();
      while (this.running) {
        await fn().catch(() => undefined);
        next += everyMs;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        else next = Date.now();
      }
    })();
  }

  private async sendChat(u: User): Promise<void> {
    const s = u.session;
    if (!s?.isOnline || u.connecting) return;
    const seq = u.chatSeq + 1;
    const id = `c.${this.rec.tag}.${u.idx}.${u.peer}.${seq}`;
    const at = Date.now();
    const conn = u.conn;
    await s.send(xml('message', { to: this.user(u.peer).bare, type: 'chat', id }, xml('body', {}, `${seq}`)));
    u.chatSeq = seq;
    this.rec.sent.push({ id, kind: 'chat', from: u.idx, to: u.peer, seq, at, conn });
  }

  private async sendGroupchat(u: User): Promise<void> {
    const s = u.session;
    if (!s?.isOnline || !u.stay || u.connecting) return;
    const seq = u.gcSeq + 1;
    const id = `g.${this.rec.tag}.${u.idx}.${seq}`;
    const at = Date.now();
    const conn = u.conn;
    await s.send(xml('message', { to: this.room, type: 'groupchat', id }, xml('body', {}, `${seq}`)));
    u.gcSeq = seq;
    this.rec.sent.push({ id, kind: 'groupchat', from: u.idx, to: -1, seq, at, conn });
  }

  private async sendPresenceUpdate(u: User): Promise<void> {
    const s = u.session;
    if (!s?.isOnline || u.connecting) return;
    await this.presence(u, s);
  }

  /** A presence broadcast with the next numbered status (`p.<tag>.<seq>`). */
  private async presence(u: User, s: Session): Promise<void> {
    const seq = u.presSeq + 1;
    const status = `p.${this.rec.tag}.${seq}`;
    const at = Date.now();
    const conn = u.conn;
    await s.send(xml('presence', {}, xml('show', {}, seq % 2 === 0 ? 'chat' : 'away'), xml('status', {}, status)));
    u.presSeq = seq;
    this.rec.sent.push({ id: status, kind: 'presence', from: u.idx, to: u.peer, seq, at, conn });
  }

  /** Logs `u` in on its node, retrying until `deadline`; a refused login (the account lost with a Redis's data) registers it again. */
  private async connectUntil(u: User, deadline: number): Promise<void> {
    let last = '';
    while (u.connecting && Date.now() < deadline) await sleep(50);
    while (Date.now() < deadline) {
      if (u.session?.isOnline) return;
      try {
        await this.connect(u);
        return;
      } catch (err) {
        last = (err as Error).message;
        if (err instanceof LoginError && err.condition === 'not-authorized') {
          await register(this.cluster, u.username, u.password).then(
            () => this.accountsRecreated++,
            () => undefined,
          );
        }
      }
      await sleep(RETRY_MS);
    }
    throw new Error(`${u.bare} could not log in again on c2s node ${u.node}: ${last}`);
  }

  private async connect(u: User): Promise<void> {
    // PLAIN (over TLS): @xmpp/client's SCRAM awaits one WebCrypto HMAC per PBKDF2 round, 4,096 thread-pool
    // round trips per login, which made logging everyone in again most of a short scenario's time.
    const s = acceptRosterPushes(
      await login(this.cluster, { username: u.username, password: u.password, node: u.node, mechanism: 'PLAIN', timeoutMs: LOGIN_TIMEOUT_MS }),
    );
    // Its index in the journal once it is adopted (connections of a user are made one at a time).
    const held = { index: this.rec.conns.filter((c) => c.user === u.idx).length };
    this.connIndex.set(s, held);
    s.client.prependListener('stanza', (el: XmlElement) => this.onStanza(u, s, held.index, el));
    const closed = (): void => this.onClosed(u, s);
    s.client.on('disconnect', closed);
    s.client.on('offline', closed);
    s.client.on('close', closed);
    try {
      const roster = await rosterGet(s, undefined, LOGIN_TIMEOUT_MS);
      const peer = this.user(u.peer).bare;
      u.subscribed = (roster.items ?? []).some((i) => i.jid === peer && i.subscription === 'both' && i.ask === undefined);
    } catch {
      // A roster instance may be failing over: presence still goes out, and ready() checks the subscription again.
      u.subscribed = false;
    }
    if (!s.isOnline) throw new Error(`${u.bare} was disconnected while logging in`);
    u.session = s;
    u.closing = false;
    u.conn = held.index = this.rec.conns.filter((c) => c.user === u.idx).length;
    this.rec.conns.push({ user: u.idx, index: u.conn, node: u.node, openedAt: Date.now(), closedAt: null, closedByHarness: false });
    await this.presence(u, s);
  }

  private onClosed(u: User, s: Session): void {
    if (u.session !== s) return;
    const now = Date.now();
    u.session = null;
    const byHarness = u.closing;
    const c = this.rec.conns.find((x) => x.user === u.idx && x.index === u.conn);
    if (c && c.closedAt === null) {
      c.closedAt = now;
      c.closedByHarness = byHarness;
    }
    if (u.stay) {
      u.stay.leftAt = now;
      u.stay.endedBy = byHarness ? 'harness' : 'connection';
      u.stay = null;
    }
    if (!byHarness && this.running) this.background(() => this.reconnect(u));
  }

  /** After a fault broke its connection: log in again on the home node as soon as it lets us, then rejoin the room. */
  private async reconnect(u: User): Promise<void> {
    if (u.connecting) return;
    u.connecting = true;
    try {
      while (this.running && !u.session) {
        try {
          await this.connect(u);
        } catch {
          await sleep(RETRY_MS);
        }
      }
    } finally {
      u.connecting = false;
    }
    if (u.session && u.occupant && this.running) await this.rejoin(u);
  }

  private async logout(u: User): Promise<void> {
    const s = u.session;
    if (!s) return;
    u.closing = true;
    await s.stop();
    // The close events may come after stop() resolves: the harness closed it either way.
    this.onClosed(u, s);
  }

  /** Enters the room (no history: XEP-0045 §7.2.13); creates it, persistent, when it does not exist. */
  private async join(u: User): Promise<boolean> {
    const s = u.session;
    if (!s || u.stay || u.joining) return Boolean(u.stay);
    u.joining = true;
    try {
      const nick = `n${u.idx}x${++u.joins}`;
      const r = await tryJoin(s, this.room, nick, { history: { maxstanzas: 0 }, timeoutMs: LOGIN_TIMEOUT_MS });
      if (!r.ok) return false;
      if (r.joined.codes.includes(201)) {
        // The room was gone (or never existed): make it again (XEP-0045 §10.1.3), persistent so it outlives logouts.
        await getConfig(s, this.room);
        const answer = await submitConfig(s, this.room, { persistentroom: true });
        if (answer.attrs.type !== 'result') return false;
      }
      if (u.session !== s) return false;
      u.nick = r.joined.nick;
      u.stay = { user: u.idx, conn: u.conn, joinedAt: Date.now(), leftAt: null, endedBy: null };
      this.rec.stays.push(u.stay);
      return true;
    } catch {
      return false;
    } finally {
      u.joining = false;
    }
  }

  private async joinUntil(u: User, deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      if (await this.join(u)) return;
      await sleep(500);
    }
    throw new Error(`${u.bare} could not enter ${this.room}`);
  }

  /** While the load runs: back into the room after the connection or the room dropped us. */
  private async rejoin(u: User): Promise<void> {
    while (this.running && u.session && !u.stay) {
      if (await this.join(u)) return;
      await sleep(500);
    }
  }

  private onStanza(u: User, s: Session, conn: number, el: XmlElement): void {
    // Before adoption (between login and presence) a session is not u.session yet; an old one is closed.
    if (u.session !== null && u.session !== s) return;
    const now = Date.now();
    const tag = this.rec.tag;
    if (el.name === 'message') {
      const id = el.attrs.id ?? '';
      const parts = id.split('.');
      if (parts[1] !== tag) return;
      const kind: Kind | null = parts[0] === 'c' ? 'chat' : parts[0] === 'g' ? 'groupchat' : null;
      if (!kind) return;
      if (el.attrs.type === 'error') {
        const err = el.getChild('error');
        const cond = err?.getChildElements().find((c) => c.attrs.xmlns === NS.stanzas);
        this.rec.bounces.push({ id, kind, at: now, condition: cond?.name ?? null, type: err?.attrs.type ?? null });
        return;
      }
      const from = Number(parts[2]);
      const seq = Number(kind === 'chat' ? parts[4] : parts[3]);
      if (kind === 'groupchat' && (el.attrs.type !== 'groupchat' || !fromRoom(el, this.room))) return;
      if (kind === 'chat' && el.attrs.type !== 'chat') return;
      const delayed = el.getChild('delay', DELAY_NS) !== undefined;
      this.rec.receipt({ id, kind, from, by: u.idx, seq, at: now, conn, delayed });
      return;
    }
    if (el.name !== 'presence') return;
    if (fromRoom(el, this.room)) {
      // The room removed us (XEP-0045 §7.2.10 self-presence of type unavailable, e.g. a shutdown): rejoin as a client would.
      if (el.attrs.type === 'unavailable' && statusCodes(el).includes(110) && u.stay && nickOf(el) === u.nick) {
        u.stay.leftAt = now;
        u.stay.endedBy = 'room';
        u.stay = null;
        if (this.running) this.background(() => this.rejoin(u));
      }
      return;
    }
    const status = el.getChildText('status') ?? '';
    const p = status.split('.');
    if (p[0] !== 'p' || p[1] !== tag || el.attrs.type !== undefined) return;
    const peer = this.user(u.peer);
    if ((el.attrs.from ?? '').split('/')[0] !== peer.bare) return;
    this.rec.receipt({ id: status, kind: 'presence', from: peer.idx, by: u.idx, seq: Number(p[2]), at: now, conn, delayed: false });
  }

  /** The sessions buffer every stanza: drop what the journal has taken, so a long run does not pile them up. */
  private drainInboxes(): void {
    for (const u of this.users) {
      u.session?.drain((el) => {
        if (el.name === 'message') return /^[cg]\./.test(el.attrs.id ?? '');
        return el.name === 'presence' && /^p\./.test(el.getChildText('status') ?? '') && !fromRoom(el, this.room);
      });
    }
  }
}
