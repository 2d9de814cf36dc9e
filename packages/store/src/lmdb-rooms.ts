import type { Database } from 'lmdb';
import { compositeKey, guard, keySuffix, prefixRange } from './lmdb-util.js';
import { StoreError, type RoomAffiliation, type RoomAffiliationKind, type RoomListing, type RoomMeta, type RoomStore, type StoredRoom } from './types.js';
import { byCodePoint, checkKey } from './validate.js';

// ---------------------------------------------------------------------------
// Checks and copies shared by both room backends (redis-rooms.ts imports
// them), so a bad value fails the same way in embedded and cluster mode.
// They would sit in validate.ts, which is outside this change's file set.
// ---------------------------------------------------------------------------

const AFFILIATIONS: ReadonlySet<string> = new Set<RoomAffiliationKind>(['owner', 'admin', 'member', 'outcast']);

/**
 * A room is addressed by its bare JID `room@service` (XEP-0045 §4.1): a
 * non-empty localpart, exactly one `@` (a prepared localpart or domainpart
 * cannot hold one, RFC 7622 §3.3), no resource. Returns the service
 * domain, under which list() indexes the room.
 */
export function roomDomain(room: string): string {
  checkKey('room JID', room);
  const at = room.indexOf('@');
  if (at <= 0 || at === room.length - 1 || room.indexOf('@', at + 1) >= 0 || room.includes('/')) {
    throw new StoreError(`not a bare room JID: ${JSON.stringify(room)}`);
  }
  return room.slice(at + 1);
}

export function checkRoomMeta(meta: RoomMeta): void {
  if (typeof meta !== 'object' || meta === null) throw new StoreError('room meta must be an object');
  if (typeof meta.config !== 'string') throw new StoreError('room config must be a string');
  if (typeof meta.public !== 'boolean' || typeof meta.persistent !== 'boolean') throw new StoreError('room public/persistent must be booleans');
  if (typeof meta.name !== 'string') throw new StoreError('room name must be a string');
  if (typeof meta.createdAt !== 'number' || !Number.isFinite(meta.createdAt)) throw new StoreError('room createdAt must be a finite number');
}

/** Exactly the RoomMeta fields (no caller extras, no aliasing). */
export function copyRoomMeta(m: RoomMeta): RoomMeta {
  return { config: m.config, public: m.public, name: m.name, persistent: m.persistent, createdAt: m.createdAt };
}

export function checkRoomAffiliation(aff: RoomAffiliation): void {
  if (typeof aff !== 'object' || aff === null) throw new StoreError('room affiliation must be an object');
  // 'none' is not stored (XEP-0045 §5.2: it is the absence of an affiliation); null removes one.
  if (!AFFILIATIONS.has(aff.affiliation)) throw new StoreError(`invalid room affiliation ${JSON.stringify(aff.affiliation)}`);
  if (aff.nick !== undefined && typeof aff.nick !== 'string') throw new StoreError('reserved nick must be a string');
  if (aff.reason !== undefined && typeof aff.reason !== 'string') throw new StoreError('affiliation reason must be a string');
}

/** Exactly the RoomAffiliation fields; nick and reason absent when not given. */
export function copyRoomAffiliation(a: RoomAffiliation): RoomAffiliation {
  const out: RoomAffiliation = { affiliation: a.affiliation };
  if (a.nick !== undefined) out.nick = a.nick;
  if (a.reason !== undefined) out.reason = a.reason;
  return out;
}

export function checkHistoryEntry(entry: string): void {
  if (typeof entry !== 'string') throw new StoreError('room history entry must be a string');
}

export function checkHistoryMax(max: number): void {
  if (!Number.isInteger(max) || max < 0) throw new StoreError(`history max must be a non-negative integer, got ${max}`);
}

export function checkListOptions(domain: string, opts: { after?: string; max: number; publicOnly: boolean }): void {
  checkKey('room service domain', domain);
  if (typeof opts !== 'object' || opts === null) throw new StoreError('list options must be an object');
  if (!Number.isInteger(opts.max) || opts.max < 0) throw new StoreError(`list max must be a non-negative integer, got ${opts.max}`);
  if (opts.after !== undefined && typeof opts.after !== 'string') throw new StoreError('list after must be a string');
  if (typeof opts.publicOnly !== 'boolean') throw new StoreError('list publicOnly must be a boolean');
}

/** Affiliations and occupants as load() returns them: a fresh Map in key code point order, the same in both backends. */
export function sortedMap<V>(entries: Iterable<[string, V]>): Map<string, V> {
  return new Map([...entries].sort((a, b) => byCodePoint(a[0], b[0])));
}

// ---------------------------------------------------------------------------

/** History sequence numbers: 6 bytes big-endian (byte order = numeric order), as in lmdb-offline.ts. */
const SEQ_BYTES = 6;

export interface LmdbRoomDatabases {
  /** `room` → RoomMeta (JSON) */
  meta: Database<RoomMeta, Buffer>;
  /** `room` → subject (string) */
  subject: Database<string, Buffer>;
  /** `room NUL jid` → RoomAffiliation (JSON) */
  affiliations: Database<RoomAffiliation, Buffer>;
  /** `room NUL seq` (6 B BE) → history entry (string) */
  history: Database<string, Buffer>;
  /** `domain NUL room` → room name, every room of the service domain */
  index: Database<string, Buffer>;
  /** `domain NUL room` → room name, the public rooms only */
  publicIndex: Database<string, Buffer>;
  /** `owner NUL room` → '' (ownedBy) */
  owners: Database<string, Buffer>;
}

/**
 * Rooms in the embedded mode. Durable in LMDB (one environment, so one
 * write transaction spans a room's record and its index entries, and the
 * indexes can never disagree with the rooms): meta, subject, affiliations
 * (+ owner index), history, and the per-domain listing. Occupants are live
 * state of this process's streams, so they are kept in memory and a
 * restart forgets them (their sessions ended with the process, which is a
 * service shutdown to them, XEP-0045 §11.2: they join again).
 *
 * Every key part is a prepared JID or a nick, so NUL never occurs in one
 * and `x NUL …` keys of one `x` are one range scan in code point order.
 */
export class LmdbRoomStore implements RoomStore {
  /** room → nick → occupant JSON */
  private readonly occupants = new Map<string, Map<string, string>>();

  constructor(private readonly db: LmdbRoomDatabases) {}

  load(room: string): Promise<StoredRoom | null> {
    return guard('load room', () => {
      roomDomain(room);
      const key = compositeKey('room', room);
      // One read transaction: meta, affiliations, subject and history are one snapshot.
      const transaction = this.db.meta.useReadTransaction();
      try {
        const meta = this.db.meta.get(key, { transaction });
        if (meta === undefined) return null;
        const range = { ...prefixRange(room), transaction };
        const affiliations = new Map<string, RoomAffiliation>();
        for (const { key: k, value } of this.db.affiliations.getRange(range)) affiliations.set(keySuffix(k, room), copyRoomAffiliation(value));
        return {
          meta: copyRoomMeta(meta),
          affiliations,
          subject: this.db.subject.get(key, { transaction }) ?? null,
          occupants: sortedMap(this.occupants.get(room) ?? []),
          history: [...this.db.history.getRange(range)].map((e) => e.value),
        };
      } finally {
        transaction.done();
      }
    });
  }

  putMeta(room: string, meta: RoomMeta): Promise<void> {
    return guard('put room meta', async () => {
      const domain = roomDomain(room);
      checkRoomMeta(meta);
      const value = copyRoomMeta(meta);
      const key = compositeKey('room', room);
      const idx = compositeKey('room index', domain, room);
      await this.db.meta.transaction(() => {
        void this.db.meta.put(key, value);
        // The listing carries the name so disco#items (XEP-0045 §6.3) needs no room load.
        void this.db.index.put(idx, value.name);
        if (value.public) void this.db.publicIndex.put(idx, value.name);
        else void this.db.publicIndex.remove(idx);
      });
    });
  }

  setAffiliation(room: string, jid: string, aff: RoomAffiliation | null): Promise<void> {
    return guard('set room affiliation', async () => {
      roomDomain(room);
      checkKey('affiliated JID', jid);
      if (aff !== null) checkRoomAffiliation(aff);
      const key = compositeKey('room affiliation', room, jid);
      const ownerKey = compositeKey('room owner', jid, room);
      await this.db.affiliations.transaction(() => {
        if (aff === null) void this.db.affiliations.remove(key);
        else void this.db.affiliations.put(key, copyRoomAffiliation(aff));
        // Same transaction: the owner index is exactly the owner affiliations.
        if (aff?.affiliation === 'owner') void this.db.owners.put(ownerKey, '');
        else void this.db.owners.remove(ownerKey);
      });
    });
  }

  setSubject(room: string, subject: string | null): Promise<void> {
    return guard('set room subject', async () => {
      roomDomain(room);
      if (subject !== null && typeof subject !== 'string') throw new StoreError('room subject must be a string or null');
      const key = compositeKey('room', room);
      if (subject === null) await this.db.subject.remove(key);
      else await this.db.subject.put(key, subject);
    });
  }

  async putOccupant(room: string, nick: string, occupant: string): Promise<void> {
    roomDomain(room);
    checkKey('occupant nick', nick);
    if (typeof occupant !== 'string') throw new StoreError('occupant must be a string');
    let nicks = this.occupants.get(room);
    if (!nicks) this.occupants.set(room, (nicks = new Map()));
    nicks.set(nick, occupant);
  }

  async removeOccupant(room: string, nick: string): Promise<void> {
    roomDomain(room);
    checkKey('occupant nick', nick);
    const nicks = this.occupants.get(room);
    if (!nicks) return;
    nicks.delete(nick);
    if (nicks.size === 0) this.occupants.delete(room);
  }

  pushHistory(room: string, entry: string, max: number): Promise<void> {
    return guard('push room history', async () => {
      roomDomain(room);
      checkHistoryEntry(entry);
      checkHistoryMax(max);
      const range = prefixRange(room);
      await this.db.history.transaction(() => {
        const keys = [...this.db.history.getKeys(range)];
        // max 0: history disabled (muc#roomconfig_historylength 0, XEP-0045 §7.2.13): keep nothing.
        if (max === 0) {
          for (const k of keys) void this.db.history.remove(k);
          return;
        }
        const last = keys.at(-1);
        let seq = 1;
        if (last !== undefined) {
          const k = Buffer.from(last);
          seq = k.readUIntBE(k.length - SEQ_BYTES, SEQ_BYTES) + 1;
        }
        const s = Buffer.alloc(SEQ_BYTES);
        s.writeUIntBE(seq, 0, SEQ_BYTES);
        void this.db.history.put(compositeKey('room history', room, s), entry);
        // keys.length + 1 entries now; drop the oldest beyond max (all of them existed before the put).
        for (const k of keys.slice(0, Math.max(0, keys.length + 1 - max))) void this.db.history.remove(k);
      });
    });
  }

  trimHistory(room: string, max: number): Promise<void> {
    return guard('trim room history', async () => {
      roomDomain(room);
      checkHistoryMax(max);
      const range = prefixRange(room);
      await this.db.history.transaction(() => {
        const keys = [...this.db.history.getKeys(range)];
        for (const k of keys.slice(0, Math.max(0, keys.length - max))) void this.db.history.remove(k);
      });
    });
  }

  destroy(room: string): Promise<void> {
    return guard('destroy room', async () => {
      const domain = roomDomain(room);
      const key = compositeKey('room', room);
      const idx = compositeKey('room index', domain, room);
      const range = prefixRange(room);
      // XEP-0045 §10.9: nothing of the room is left, and its occupants are gone with it.
      this.occupants.delete(room);
      await this.db.meta.transaction(() => {
        void this.db.meta.remove(key);
        void this.db.subject.remove(key);
        for (const { key: k, value } of [...this.db.affiliations.getRange(range)]) {
          if (value.affiliation === 'owner') void this.db.owners.remove(compositeKey('room owner', keySuffix(k, room), room));
          void this.db.affiliations.remove(k);
        }
        for (const k of [...this.db.history.getKeys(range)]) void this.db.history.remove(k);
        void this.db.index.remove(idx);
        void this.db.publicIndex.remove(idx);
      });
    });
  }

  list(domain: string, opts: { after?: string; max: number; publicOnly: boolean }): Promise<{ items: RoomListing[]; count: number }> {
    return guard('list rooms', () => {
      checkListOptions(domain, opts);
      const db = opts.publicOnly ? this.db.publicIndex : this.db.index;
      const range = prefixRange(domain);
      // XEP-0059 `after` is exclusive: the smallest key above `domain NUL after`
      // is that key plus a NUL (no room JID holds a NUL). Built by hand, not with
      // compositeKey: `after` is the client's cursor, not a key we store, so it
      // may be any string (even one too long to be a key).
      const start = opts.after ? Buffer.concat([range.start, Buffer.from(opts.after, 'utf8'), Buffer.from([0])]) : range.start;
      const transaction = db.useReadTransaction();
      try {
        const items =
          opts.max === 0
            ? []
            : [...db.getRange({ start, end: range.end, limit: opts.max, transaction })].map((e) => ({ room: keySuffix(e.key, domain), name: e.value }));
        return { items, count: db.getCount({ ...range, transaction }) };
      } finally {
        transaction.done();
      }
    });
  }

  ownedBy(jid: string): Promise<string[]> {
    return guard('list owned rooms', () => {
      checkKey('owner JID', jid);
      return [...this.db.owners.getKeys(prefixRange(jid))].map((k) => keySuffix(k, jid));
    });
  }
}
