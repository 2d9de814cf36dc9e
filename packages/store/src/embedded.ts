import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { MemorySessionStore } from './memory-sessions.js';
import { StoreError, type Account, type AccountStore, type StoredCredentials, type Stores } from './types.js';

export interface EmbeddedStoreOptions {
  /** Directory of the LMDB environment; created if missing. */
  dir: string;
}

/**
 * LMDB refuses keys longer than this (its compile-time MDB_MAXKEYSIZE as
 * built by lmdb-js). RFC 7622 allows 1023 bytes per JID part, so a pathological
 * domain + localpart pair can exceed it; we say so instead of failing obscurely.
 */
const MAX_KEY_BYTES = 1978;
const SEP = 0x00;

/**
 * Account key: UTF-8(domain) NUL UTF-8(username). NUL cannot occur in a
 * prepared JID part, so a domain's accounts are exactly the keys in
 * [domain NUL, domain \x01): list(domain) is one range scan, already in
 * UTF-8 byte order (= Unicode code point order, the order Redis's ZRANGE
 * gives too).
 */
function accountKey(domain: string, username: string): Buffer {
  if (domain.includes('\u0000') || username.includes('\u0000')) throw new StoreError('NUL in a JID part');
  const key = Buffer.concat([Buffer.from(domain, 'utf8'), Buffer.from([SEP]), Buffer.from(username, 'utf8')]);
  if (key.length > MAX_KEY_BYTES) throw new StoreError(`account key too long for the embedded store (${key.length} > ${MAX_KEY_BYTES} bytes)`);
  return key;
}

function domainRange(domain: string): { start: Buffer; end: Buffer } {
  const d = Buffer.from(domain, 'utf8');
  return { start: Buffer.concat([d, Buffer.from([SEP])]), end: Buffer.concat([d, Buffer.from([SEP + 1])]) };
}

async function guard<T>(op: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(`embedded store: ${op} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
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
      const { start, end } = domainRange(domain);
      const skip = start.length;
      return [...this.db.getKeys({ start, end })].map((k) => Buffer.from(k).subarray(skip).toString('utf8'));
    });
  }
}

/**
 * Stores for one-process mode: accounts durable in LMDB under `dir`, the
 * session registry and leases in memory (see MemorySessionStore for why),
 * store clock = this process's Date.now().
 */
export async function openEmbeddedStores(opts: EmbeddedStoreOptions): Promise<Stores> {
  let root: RootDatabase;
  let accounts: Database<Account, Buffer>;
  try {
    mkdirSync(opts.dir, { recursive: true });
    root = open({ path: opts.dir });
    // A named database per kind of record, so rosters, offline queues… can
    // join the same environment (and its transactions) later.
    accounts = root.openDB<Account, Buffer>({ name: 'accounts', keyEncoding: 'binary', encoding: 'json' });
  } catch (err) {
    throw new StoreError(`cannot open the embedded store in ${opts.dir}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  let closed = false;
  return {
    kind: 'embedded',
    accounts: new LmdbAccountStore(accounts),
    sessions: new MemorySessionStore(),
    isReady: () => !closed,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await root.close();
    },
  };
}
