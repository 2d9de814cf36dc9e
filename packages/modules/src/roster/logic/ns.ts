/** Namespaces of RFC 6121 that @hyphae/stanza's NS table does not (yet) hold. */
export const ROSTER_NS = {
  /** Roster management (RFC 6121 §2). */
  roster: 'jabber:iq:roster',
  /** Stream feature advertising roster versioning (RFC 6121 §2.6.1). */
  rosterVer: 'urn:xmpp:features:rosterver',
  /** Stream feature advertising subscription pre-approval (RFC 6121 §3.4). */
  preApproval: 'urn:xmpp:features:pre-approval',
} as const;
