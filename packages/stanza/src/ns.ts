/**
 * XML namespaces used across Hyphae. One table so that a typo in a namespace
 * string (which silently makes `getChild(name, ns)` miss) cannot happen twice.
 */
export const NS = {
  /** Content namespace of client-to-server streams (RFC 6120 §4.8.2). */
  client: 'jabber:client',
  /** Content namespace of server-to-server streams (RFC 6120 §4.8.2). */
  server: 'jabber:server',
  /** Content namespace of XEP-0114 external component streams. */
  componentAccept: 'jabber:component:accept',
  /** The stream namespace, bound to the `stream:` prefix (RFC 6120 §4.8.1). */
  stream: 'http://etherx.jabber.org/streams',
  /** Stream error conditions and their <text/> (RFC 6120 §4.9.3). */
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  /** Stanza error conditions and their <text/> (RFC 6120 §8.3.3). */
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  /** STARTTLS (RFC 6120 §5). */
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  /** SASL negotiation (RFC 6120 §6). */
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  /** Resource binding (RFC 6120 §7). */
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  /** Legacy session establishment (RFC 3921 §3, kept as optional by RFC 6121 Appendix E). */
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  /** XEP-0030 service discovery. */
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  /** XEP-0199 XMPP ping. */
  ping: 'urn:xmpp:ping',
  /** XEP-0092 software version. */
  version: 'jabber:iq:version',
  /** XEP-0077 in-band registration (the IQ payload). */
  register: 'jabber:iq:register',
  /** XEP-0077 stream feature advertising in-band registration. */
  registerFeature: 'http://jabber.org/features/iq-register',
  /** XEP-0203 delayed delivery (offline messages). */
  delay: 'urn:xmpp:delay',
  /** XEP-0004 data forms. */
  data: 'jabber:x:data',
  /** XEP-0066 out-of-band data. */
  oob: 'jabber:x:oob',
  /** XEP-0059 result set management. */
  rsm: 'http://jabber.org/protocol/rsm',
  /** XEP-0045 multi-user chat: the <x/> of a join presence. */
  muc: 'http://jabber.org/protocol/muc',
  /** XEP-0045 occupant extension (<x/> in room presence and messages). */
  mucUser: 'http://jabber.org/protocol/muc#user',
  /** XEP-0045 moderator and admin queries (roles, affiliations). */
  mucAdmin: 'http://jabber.org/protocol/muc#admin',
  /** XEP-0045 owner queries (configuration, destruction). */
  mucOwner: 'http://jabber.org/protocol/muc#owner',
} as const;

export type Namespace = (typeof NS)[keyof typeof NS];
