/**
 * @hyphae/jid — JIDs per RFC 7622 (PRECIS profiles for local and resource
 * parts, UTS #46 for the domain) and their reversible encoding as NATS
 * subject tokens.
 */
export { JID, JidError, parseJid, tryParseJid, makeJid, prepLocal, prepDomain, prepResource } from './jid.js';
export type { JidPart } from './jid.js';
export { encodeToken, decodeToken } from './subject.js';
