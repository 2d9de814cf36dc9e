/**
 * A room's state while its actor owns it: configuration, affiliations,
 * occupants, subject and history, cached in memory and written through to
 * the RoomStore on every change, so whichever instance owns the room next
 * loads exactly this (XEP-0045 rooms surviving failover).
 */
import type { RoomAffiliation, RoomStore, StoredRoom } from '@hyphae/store';
import { JID, parseJid } from '@hyphae/jid';
import type { Affiliation, Role } from './logic/roles.js';
import { defaultConfig, parseConfig, serializeConfig, type ConfigLimits, type RoomConfig } from './logic/config.js';
import type { HistoryEntry } from './logic/history.js';

/** One client session in the room under an occupant's nick. */
export interface OccupantSession {
  /** Real full JID. */
  jid: string;
  /** c2s node and session id from the registry, for direct delivery; null when unknown (remote user). */
  node: string | null;
  sessionId: string | null;
  /** The last presence this session sent to the room, without from/to/id and MUC extensions. */
  presence: string;
}

export interface Occupant {
  nick: string;
  /** Real bare JID. */
  bare: string;
  role: Role;
  /** Sessions of the same bare JID sharing the nick (multi-session nicks, as Prosody allows). */
  sessions: OccupantSession[];
}

export interface Subject {
  text: string;
  /** Nick of who set it ('' when set by the room). */
  nick: string;
  at: number;
}

interface MetaJson {
  locked: boolean;
  config: string;
}

export class Room {
  readonly jid: JID;
  readonly bare: string;
  config: RoomConfig;
  /** §10.1.1: a new room refuses other entrants until its owner configures it. */
  locked: boolean;
  createdAt: number;
  readonly affiliations: Map<string, RoomAffiliation>;
  readonly occupants: Map<string, Occupant>;
  /** Real full JID → nick. */
  readonly byJid = new Map<string, string>();
  subject: Subject | null;
  history: HistoryEntry[];
  /** Per real full JID: the message rate limiter's bucket (not persisted). */
  readonly buckets = new Map<string, { tokens: number; at: number }>();

  private constructor(jid: JID, config: RoomConfig, locked: boolean, createdAt: number, stored?: StoredRoom) {
    this.jid = jid;
    this.bare = jid.toBareString();
    this.config = config;
    this.locked = locked;
    this.createdAt = createdAt;
    this.affiliations = stored?.affiliations ?? new Map();
    this.occupants = new Map();
    this.subject = null;
    this.history = [];
    if (!stored) return;
    for (const [nick, json] of stored.occupants) {
      const o = JSON.parse(json) as Occupant;
      this.occupants.set(nick, o);
      for (const s of o.sessions) this.byJid.set(s.jid, nick);
    }
    if (stored.subject) this.subject = JSON.parse(stored.subject) as Subject;
    this.history = stored.history.map((h) => JSON.parse(h) as HistoryEntry);
  }

  static create(jid: JID, limits: ConfigLimits, locked: boolean, now: number): Room {
    return new Room(jid, defaultConfig(limits), locked, now);
  }

  static fromStore(jid: JID, stored: StoredRoom, limits: ConfigLimits): Room {
    const meta = JSON.parse(stored.meta.config) as MetaJson;
    return new Room(jid, parseConfig(meta.config, limits), meta.locked, stored.meta.createdAt, stored);
  }

  affiliationOf(bare: string): Affiliation {
    return this.affiliations.get(bare)?.affiliation ?? 'none';
  }

  occupantByJid(full: string): Occupant | undefined {
    const nick = this.byJid.get(full);
    return nick === undefined ? undefined : this.occupants.get(nick);
  }

  /** The occupant a bare JID is in the room as (any of its sessions), if any. */
  occupantByBare(bare: string): Occupant | undefined {
    for (const o of this.occupants.values()) if (o.bare === bare) return o;
    return undefined;
  }

  ownerCount(): number {
    let n = 0;
    for (const a of this.affiliations.values()) if (a.affiliation === 'owner') n++;
    return n;
  }

  /** Nick reserved by another user through its affiliation (§7.10 / §9.3). */
  reservedBy(nick: string): string | null {
    for (const [bare, a] of this.affiliations) if (a.nick === nick) return bare;
    return null;
  }

  occupantJid(nick: string): string {
    return `${this.bare}/${nick}`;
  }

  // --- write-through -------------------------------------------------------

  async saveMeta(store: RoomStore): Promise<void> {
    const meta: MetaJson = { locked: this.locked, config: serializeConfig(this.config) };
    await store.putMeta(this.bare, {
      config: JSON.stringify(meta),
      public: this.config.public && !this.locked,
      name: this.config.name,
      persistent: this.config.persistent,
      createdAt: this.createdAt,
    });
  }

  async setAffiliation(store: RoomStore, bare: string, aff: RoomAffiliation | null): Promise<void> {
    if (aff) this.affiliations.set(bare, aff);
    else this.affiliations.delete(bare);
    await store.setAffiliation(this.bare, bare, aff);
  }

  async putOccupant(store: RoomStore, o: Occupant): Promise<void> {
    this.occupants.set(o.nick, o);
    for (const s of o.sessions) this.byJid.set(s.jid, o.nick);
    await store.putOccupant(this.bare, o.nick, JSON.stringify(o));
  }

  async removeOccupant(store: RoomStore, o: Occupant): Promise<void> {
    this.occupants.delete(o.nick);
    for (const s of o.sessions) {
      this.byJid.delete(s.jid);
      this.buckets.delete(s.jid);
    }
    await store.removeOccupant(this.bare, o.nick);
  }

  async setSubject(store: RoomStore, subject: Subject): Promise<void> {
    this.subject = subject;
    await store.setSubject(this.bare, JSON.stringify(subject));
  }

  /**
   * Writes the whole room as this actor holds it, for a store that lost it
   * (Redis came back without its data): meta and listing, affiliations and
   * the owner index, subject, occupants, history. What the store has of the
   * room can only be older than this (every change is written through), so
   * put semantics make it equal; the history is replaced, not appended to.
   * Run where no handler of the room runs at the same time (its mailbox).
   */
  async rewrite(store: RoomStore): Promise<void> {
    await this.saveMeta(store);
    for (const [bare, aff] of this.affiliations) await store.setAffiliation(this.bare, bare, aff);
    await store.setSubject(this.bare, this.subject ? JSON.stringify(this.subject) : null);
    for (const o of this.occupants.values()) await store.putOccupant(this.bare, o.nick, JSON.stringify(o));
    await store.trimHistory(this.bare, 0);
    const max = this.config.historyLength;
    if (max > 0) for (const h of this.history.slice(-max)) await store.pushHistory(this.bare, JSON.stringify(h), max);
  }

  /**
   * Records a reflected message. The store write is not awaited: waiting for
   * a durable commit per message capped a room at the disk's commit rate.
   * Writes of one store keep their order (one Redis connection, one LMDB
   * write queue), and a shard's lease release is sent after them on the same
   * connection, so the next owner still loads every entry; only a crash can
   * lose the newest entries of the history, never a message in flight.
   */
  addHistory(store: RoomStore, entry: HistoryEntry, onError: (err: unknown) => void): void {
    const max = this.config.historyLength;
    if (max <= 0) return;
    this.history.push(entry);
    if (this.history.length > max) this.history.splice(0, this.history.length - max);
    store.pushHistory(this.bare, JSON.stringify(entry), max).catch(onError);
  }
}

export function bareOf(full: string): string {
  return parseJid(full).toBareString();
}
