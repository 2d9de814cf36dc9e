/**
 * Redis key builders (the scheme is documented at the top of redis.ts).
 *
 * Redis Cluster hashes only the part between the first `{` and the next `}`,
 * so keys that one Lua script touches together carry the same tag. A JID
 * part may contain braces (a localpart may hold `{` and `}`), which would cut
 * the tag short and make two different (domain, user) pairs spell the same
 * key; tag() therefore escapes `%`, `{` and `}` percent-style, which keeps
 * every key unambiguous and every tag whole.
 */
export function tag(s: string): string {
  return s.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

export interface RedisKeys {
  account(domain: string, username: string): string;
  accountsOf(domain: string): string;
  sessions(bare: string): string;
  nodeSessions(node: string): string;
  nodes: string;
  sessionNodes: string;
  lease(name: string): string;
  roster(bare: string): string;
  rosterVersion(bare: string): string;
  offline(bare: string): string;
  pendingIn(bare: string): string;
  directed(bare: string, resource: string): string;
  directedIndex(bare: string): string;
  group(group: string): string;
  /** The epoch of the live state (one key: a hash with id, at, lost). */
  epoch: string;
  room(room: string): string;
  roomAffiliations(room: string): string;
  roomOccupants(room: string): string;
  roomHistory(room: string): string;
  roomsOf(domain: string): string;
  publicRoomsOf(domain: string): string;
  roomNamesOf(domain: string): string;
  ownedRooms(bare: string): string;
  /** Module storage (module-storage.ts): `name` is [a-z0-9_-]+, so it needs no escaping and holds no ':'. */
  moduleKeyval(name: string, owner: string): string;
  moduleMap(name: string, owner: string): string;
  archive(name: string, owner: string): string;
  archiveWith(name: string, owner: string): string;
  archiveData(name: string, owner: string): string;
  archiveLast(name: string, owner: string): string;
  archiveOwners(name: string): string;
}

export function redisKeys(prefix: string): RedisKeys {
  return {
    account: (domain, username) => `${prefix}:acct:{${tag(domain)}}:${username}`,
    accountsOf: (domain) => `${prefix}:accts:{${tag(domain)}}`,
    sessions: (bare) => `${prefix}:sess:{${tag(bare)}}`,
    nodeSessions: (node) => `${prefix}:node:{${tag(node)}}:sess`,
    nodes: `${prefix}:nodes`,
    sessionNodes: `${prefix}:sessnodes`,
    lease: (name) => `${prefix}:lease:{${tag(name)}}`,
    roster: (bare) => `${prefix}:roster:{${tag(bare)}}`,
    rosterVersion: (bare) => `${prefix}:rosterver:{${tag(bare)}}`,
    offline: (bare) => `${prefix}:offline:{${tag(bare)}}`,
    pendingIn: (bare) => `${prefix}:pendin:{${tag(bare)}}`,
    // Tagged by the full JID's bare part, so the index and every resource's
    // set share one slot and deleteAll(bare) can drop them in one script.
    directed: (bare, resource) => `${prefix}:dir:{${tag(bare)}}:${resource}`,
    directedIndex: (bare) => `${prefix}:dirs:{${tag(bare)}}`,
    group: (group) => `${prefix}:group:{${tag(group)}}`,
    epoch: `${prefix}:epoch`,
    // Every key of one room carries the room's bare JID as its tag, so a
    // MULTI over them (load, destroy, history push + trim) is one slot.
    room: (room) => `${prefix}:room:{${tag(room)}}`,
    roomAffiliations: (room) => `${prefix}:roomaff:{${tag(room)}}`,
    roomOccupants: (room) => `${prefix}:roomocc:{${tag(room)}}`,
    roomHistory: (room) => `${prefix}:roomhist:{${tag(room)}}`,
    // The listing of a service domain: one slot per domain, so list() reads
    // rooms, count and names in one script.
    roomsOf: (domain) => `${prefix}:rooms:{${tag(domain)}}`,
    publicRoomsOf: (domain) => `${prefix}:pubrooms:{${tag(domain)}}`,
    roomNamesOf: (domain) => `${prefix}:roomnames:{${tag(domain)}}`,
    ownedRooms: (bare) => `${prefix}:owned:{${tag(bare)}}`,
    // Module storage: tagged by the owner, so every key of one owner's
    // archive (items, with-index, data, last id) is in one slot for one script.
    moduleKeyval: (name, owner) => `${prefix}:kv:${name}:{${tag(owner)}}`,
    moduleMap: (name, owner) => `${prefix}:map:${name}:{${tag(owner)}}`,
    archive: (name, owner) => `${prefix}:arch:${name}:{${tag(owner)}}`,
    archiveWith: (name, owner) => `${prefix}:archw:${name}:{${tag(owner)}}`,
    archiveData: (name, owner) => `${prefix}:archd:${name}:{${tag(owner)}}`,
    archiveLast: (name, owner) => `${prefix}:archlast:${name}:{${tag(owner)}}`,
    archiveOwners: (name) => `${prefix}:archowners:{${name}}`,
  };
}

/** The part of a key Redis Cluster hashes (its hash tag, or the whole key). */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
}

/** Member of a node's session index: which (bare, resource) slot it held, and with which session. */
export function indexMember(bare: string, resource: string, sessionId: string): string {
  return JSON.stringify([bare, resource, sessionId]);
}

export function parseIndexMember(m: string): { bare: string; resource: string; sessionId: string } | null {
  try {
    const v: unknown = JSON.parse(m);
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'string')) {
      return { bare: v[0] as string, resource: v[1] as string, sessionId: v[2] as string };
    }
  } catch {
    // fall through: a foreign or corrupt member is ignored, not fatal
  }
  return null;
}
