import { StoreError, type RosterItem, type SessionEntry, type SubscriptionState } from './types.js';

/**
 * Checks both backends apply identically, so a bad value fails the same way
 * in embedded and cluster mode instead of being stored by one of them
 * (a NaN priority would otherwise vanish in Redis's Lua JSON round trip).
 */
export function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < -128 || priority > 127) {
    throw new StoreError(`priority must be an integer in -128..127, got ${priority}`);
  }
}

export function checkEntry(entry: SessionEntry): void {
  checkPriority(entry.priority);
  if (!entry.sessionId) throw new StoreError('session entry without sessionId');
  if (!entry.node) throw new StoreError('session entry without node');
  if (entry.presence !== undefined && typeof entry.presence !== 'string') throw new StoreError('session presence must be a string');
}

/** A presence patch is a string ('' clears) or absent. */
export function checkPresencePatch(presence: string | undefined): void {
  if (presence !== undefined && typeof presence !== 'string') throw new StoreError('session presence must be a string');
}

/**
 * A fresh object with exactly the SessionEntry fields (no caller extras, no
 * aliasing). An empty presence counts as none and is dropped, so "cleared"
 * looks the same in both backends: the field is absent.
 */
export function copyEntry(e: SessionEntry): SessionEntry {
  const out: SessionEntry = {
    resource: e.resource,
    sessionId: e.sessionId,
    node: e.node,
    priority: e.priority,
    available: e.available,
    boundAt: e.boundAt,
  };
  if (typeof e.presence === 'string' && e.presence !== '') out.presence = e.presence;
  if (Array.isArray(e.flags) && e.flags.length > 0) out.flags = normalizeFlags(e.flags);
  return out;
}

/** Flags as both backends keep them: strings, sorted, without duplicates. */
export function normalizeFlags(flags: readonly string[]): string[] {
  for (const f of flags) {
    if (typeof f !== 'string' || f === '') throw new StoreError('session flags must be non-empty strings');
  }
  return [...new Set(flags)].sort();
}

/** A non-empty string key (bare JID, contact, group, lease name…). */
export function checkKey(what: string, v: string): void {
  if (typeof v !== 'string' || v === '') throw new StoreError(`${what} must be a non-empty string`);
  // NUL separates key parts in the embedded store; a prepared JID never holds one.
  if (v.includes('\u0000')) throw new StoreError(`${what} must not contain NUL`);
}

/** Splits a full JID (bare/resource) for the directed-presence keys. */
export function splitFull(full: string): { bare: string; resource: string } {
  checkKey('full JID', full);
  const slash = full.indexOf('/');
  if (slash <= 0 || slash === full.length - 1) throw new StoreError(`not a full JID: ${JSON.stringify(full)}`);
  return { bare: full.slice(0, slash), resource: full.slice(slash + 1) };
}

const SUBSCRIPTIONS: ReadonlySet<string> = new Set<SubscriptionState>(['none', 'to', 'from', 'both']);

export function checkRosterItem(item: RosterItem): void {
  if (typeof item !== 'object' || item === null) throw new StoreError('roster item must be an object');
  checkKey('roster item jid', item.jid);
  if (item.name !== undefined && typeof item.name !== 'string') throw new StoreError('roster item name must be a string');
  if (!Array.isArray(item.groups) || !item.groups.every((g) => typeof g === 'string')) {
    throw new StoreError('roster item groups must be an array of strings');
  }
  if (new Set(item.groups).size !== item.groups.length) throw new StoreError('roster item groups must not repeat');
  if (!SUBSCRIPTIONS.has(item.subscription)) throw new StoreError(`invalid subscription ${JSON.stringify(item.subscription)}`);
  if (typeof item.ask !== 'boolean' || typeof item.approved !== 'boolean') throw new StoreError('roster item ask/approved must be booleans');
}

/** Exactly the RosterItem fields, fresh arrays (name absent when none). */
export function copyRosterItem(i: RosterItem): RosterItem {
  const out: RosterItem = { jid: i.jid, groups: [...i.groups], subscription: i.subscription, ask: i.ask, approved: i.approved };
  if (i.name !== undefined) out.name = i.name;
  return out;
}

export function checkCap(cap: number): void {
  if (!Number.isInteger(cap) || cap < 0) throw new StoreError(`offline cap must be a non-negative integer, got ${cap}`);
}

export function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs < 0) throw new StoreError(`ttl must be a finite non-negative number of ms, got ${ttlMs}`);
}

export function checkStanza(stanza: string): void {
  if (typeof stanza !== 'string') throw new StoreError('stanza must be a string');
}

/** Unicode code point order (= UTF-8 byte order = LMDB key order), for backends that sort in JS. */
export function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
