import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { openLmdbModuleDatabases, type LmdbModuleDatabases } from './lmdb-module-keys.js';
import { LmdbModuleStorage } from './lmdb-module-storage.js';
import { LmdbOfflineStore } from './lmdb-offline.js';
import { LmdbPresenceStore } from './lmdb-presence.js';
import { LmdbRoomStore, type LmdbRoomDatabases } from './lmdb-rooms.js';
import { LmdbRosterStore } from './lmdb-rosters.js';
import { compositeKey, guard, keySuffix, prefixRange } from './lmdb-util.js';
import { MemoryCoordinationStore, MemoryLeases } from './memory-coordination.js';
import { MemorySessionStore } from './memory-sessions.js';
import { StoreError, type Account, type AccountStore, type RoomAffiliation, type RoomMeta, type RosterItem, type StoredCredentials, type Stores } from './types.js';

export interface EmbeddedStoreOptions {
  /** Directory of the LMDB environment; created if missing. */
  dir: string;
}

function accountKey(domain: string, username: string): Buffer {
  return compositeKey('account', domain, username);
}

function copyAccount(a: Account): Account {
  return { username: a.username, domain: a.domain, credentials: structuredClone(a.credentials), createdAt: a.createdAt };
}

/**
 * Accounts in LMDB. Writes that must be atomic (create only if absent,
 * update only if present) run as one LMDB write transaction: LMDB has a
 * single writer, so the check and the write cannot interleave with another.
 */
class LmdbAccountStore implements AccountStore {
  constructor(private readonly db: Database<Account, Buffer>) {}

  get(domain: string, username: string): Promise<Account | null> {
    return guard('get account', () => {
      const a = this.db.get(accountKey(domain, username));
      return a ? copyAccount(a) : null;
    });
  }

  create(account: Account): Promise<boolean> {
    return guard('create account', () => {
      const key = accountKey(account.domain, account.username);
      const value = copyAccount(account);
      return this.db.transaction(() => {
        if (this.db.get(key) !== undefined) return false;
        void this.db.put(key, value);
        return true;
      });
    });
  }

  setCredentials(domain: string, username: string, credentials: StoredCredentials): Promise<boolean> {
    return guard('set credentials', () => {
      const key = accountKey(domain, username);
      return this.db.transaction(() => {
        const cur = this.db.get(key);
        if (cur === undefined) return false;
        void this.db.put(key, { ...cur, credentials: structuredClone(credentials) });
        return true;
      });
    });
  }

  delete(domain: string, username: string): Promise<boolean> {
    return guard('delete account', () => {
      const key = accountKey(domain, username);
      return this.db.transaction(() => {
        if (this.db.get(key) === undefined) return false;
        void this.db.remove(key);
        return true;
      });
    });
  }

  list(domain: string): Promise<string[]> {
    return guard('list accounts', () => {
      // Account key: UTF-8(domain) NUL UTF-8(username), so this is one range
      // scan in code point order (the order Redis's ZRANGE gives too).
      return [...this.db.getKeys(prefixRange(domain))].map((k) => keySuffix(k, domain));
    });
  }
}

/**
 * Stores for one-process mode, store clock = this process's Date.now():
 * durable in LMDB under `dir` — accounts, rosters, offline queues,
 * pending-in subscription requests and MUC rooms (one environment, a named
 * database each); in memory — the session registry, directed presence, room
 * occupants, group memberships and leases, which describe live streams and
 * instances and would only be ghosts after a restart (see MemorySessionStore).
 *
 * | database    | key                      | value                 |
 * |-------------|--------------------------|-----------------------|
 * | accounts    | domain NUL user          | Account (JSON)        |
 * | rosters     | bare NUL contact         | RosterItem (JSON)     |
 * | rosterver   | bare                     | roster version        |
 * | offline     | bare NUL seq (6 B BE)    | stanza (string)       |
 * | pendingin   | bare NUL contact         | stanza (string)       |
 * | rooms       | room                     | RoomMeta (JSON)       |
 * | roomsubject | room                     | subject (string)      |
 * | roomaffs    | room NUL jid             | RoomAffiliation (JSON)|
 * | roomhist    | room NUL seq (6 B BE)    | history entry (string)|
 * | roomidx     | domain NUL room          | room name (all rooms) |
 * | roompubidx  | domain NUL room          | room name (public)    |
 * | roomowners  | owner NUL room           | '' (ownedBy index)    |
 * | modkv       | name NUL owner           | module keyval (JSON)  |
 * | modmap      | name NUL owner NUL key   | module map value (JSON)|
 * | modarch     | name NUL owner NUL id    | archive item [with, data] (JSON) |
 * | modarchwith | name NUL owner NUL with NUL id | '' (archive index by peer) |
 * | modarchlast | name NUL owner           | last archive id       |
 *
 * The module databases (lmdb-module-keys.ts) escape NUL inside a part, so
 * owners, map keys and peers may be any string.
 */
export async function openEmbeddedStores(opts: EmbeddedStoreOptions): Promise<Stores> {
  let root: RootDatabase;
  let accounts: Database<Account, Buffer>;
  let rosterItems: Database<RosterItem, Buffer>;
  let rosterVersions: Database<number, string>;
  let offline: Database<string, Buffer>;
  let pendingIn: Database<string, Buffer>;
  let rooms: LmdbRoomDatabases;
  let modules: LmdbModuleDatabases;
  try {
    mkdirSync(opts.dir, { recursive: true });
    // maxDbs: lmdb-js defaults to 12 named databases; we use 17 and leave
    // headroom for the next kind of record (a per-open setting, not stored).
    root = open({ path: opts.dir, maxDbs: 32 });
    // A named database per kind of record, all in one environment, so one
    // write transaction can span them (a roster item and its version).
    accounts = root.openDB<Account, Buffer>({ name: 'accounts', keyEncoding: 'binary', encoding: 'json' });
    rosterItems = root.openDB<RosterItem, Buffer>({ name: 'rosters', keyEncoding: 'binary', encoding: 'json' });
    rosterVersions = root.openDB<number, string>({ name: 'rosterver', encoding: 'json' });
    offline = root.openDB<string, Buffer>({ name: 'offline', keyEncoding: 'binary', encoding: 'string' });
    pendingIn = root.openDB<string, Buffer>({ name: 'pendingin', keyEncoding: 'binary', encoding: 'string' });
    rooms = {
      meta: root.openDB<RoomMeta, Buffer>({ name: 'rooms', keyEncoding: 'binary', encoding: 'json' }),
      subject: root.openDB<string, Buffer>({ name: 'roomsubject', keyEncoding: 'binary', encoding: 'string' }),
      affiliations: root.openDB<RoomAffiliation, Buffer>({ name: 'roomaffs', keyEncoding: 'binary', encoding: 'json' }),
      history: root.openDB<string, Buffer>({ name: 'roomhist', keyEncoding: 'binary', encoding: 'string' }),
      index: root.openDB<string, Buffer>({ name: 'roomidx', keyEncoding: 'binary', encoding: 'string' }),
      publicIndex: root.openDB<string, Buffer>({ name: 'roompubidx', keyEncoding: 'binary', encoding: 'string' }),
      owners: root.openDB<string, Buffer>({ name: 'roomowners', keyEncoding: 'binary', encoding: 'string' }),
    };
    modules = openLmdbModuleDatabases(root);
  } catch (err) {
    throw new StoreError(`cannot open the embedded store in ${opts.dir}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const leases = new MemoryLeases();
  let closed = false;
  return {
    kind: 'embedded',
    accounts: new LmdbAccountStore(accounts),
    sessions: new MemorySessionStore(Date.now, leases),
    rosters: new LmdbRosterStore(rosterItems, rosterVersions),
    offline: new LmdbOfflineStore(offline),
    presence: new LmdbPresenceStore(pendingIn),
    rooms: new LmdbRoomStore(rooms),
    coordination: new MemoryCoordinationStore(Date.now, leases),
    storage: new LmdbModuleStorage(modules, () => !closed),
    isReady: () => !closed,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await root.close();
    },
  };
}
