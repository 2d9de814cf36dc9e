/**
 * The subset of SOCKS5 (RFC 1928) that XEP-0065 uses: no authentication,
 * CONNECT only, ATYP 3 (DOMAINNAME) carrying the 40 hex digits of
 * SHA1(SID + Requester JID + Target JID), port 0 (XEP-0065 §5.3.2/§6.3.2,
 * §10.2 "SOCKS5 Parameter Mapping"). Pure functions over the bytes received
 * so far: each one says "need more", "done" (with what it consumed) or
 * "refuse" (with the reply to send, if RFC 1928 has one, and a reason for
 * the metrics).
 */

export const SOCKS_VERSION = 0x05;
/** RFC 1928 §3 METHOD values. */
export const METHOD_NO_AUTH = 0x00;
export const METHOD_NONE_ACCEPTABLE = 0xff;
/** RFC 1928 §4 CMD values. */
export const CMD_CONNECT = 0x01;
/** RFC 1928 §5 ATYP values. */
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAINNAME = 0x03;
export const ATYP_IPV6 = 0x04;

/** RFC 1928 §6 REP values. */
export const REP = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** Length of a hex SHA-1: the only DST.ADDR this proxy accepts. */
export const HASH_LENGTH = 40;
const HEX = /^[0-9a-fA-F]{40}$/;

/** Why a connection was refused (the `reason` label of hyphae_proxy65_refused_total). */
export type RefuseReason = 'version' | 'auth' | 'command' | 'address-type' | 'address' | 'port';

export type Step<T> =
  | { kind: 'more' }
  | { kind: 'done'; used: number; value: T }
  | { kind: 'refuse'; reason: RefuseReason; reply: Uint8Array | null };

const MORE = { kind: 'more' } as const;

/**
 * The greeting, RFC 1928 §3: VER NMETHODS METHODS. The proxy answers
 * METHOD 0 (no authentication) when offered, else X'FF' and closes (the
 * client MUST close then too). A VER other than 5 is not SOCKS5: no reply
 * can be understood, the connection is just closed.
 */
export function parseGreeting(buf: Uint8Array): Step<null> {
  if (buf.length < 1) return MORE;
  if (buf[0] !== SOCKS_VERSION) return { kind: 'refuse', reason: 'version', reply: null };
  if (buf.length < 2) return MORE;
  const n = buf[1] as number;
  if (buf.length < 2 + n) return MORE;
  for (let i = 0; i < n; i++) {
    if (buf[2 + i] === METHOD_NO_AUTH) return { kind: 'done', used: 2 + n, value: null };
  }
  return { kind: 'refuse', reason: 'auth', reply: methodReply(METHOD_NONE_ACCEPTABLE) };
}

export function methodReply(method: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, method);
}

/** A CONNECT request the proxy accepts. */
export interface ConnectRequest {
  /** DST.ADDR as sent (echoed in BND.ADDR). */
  addr: string;
  /** DST.ADDR in lower case: the key connections are paired by. */
  hash: string;
}

/**
 * The request, RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT. Refused as
 * soon as the bytes seen show it cannot be accepted (nothing waits for
 * bytes that would not change the answer):
 *
 * - VER ≠ 5 → REP 1 (general failure: RFC 1928 names no better code);
 * - CMD ≠ CONNECT (BIND, UDP ASSOCIATE: not offered) → REP 7;
 * - ATYP ≠ DOMAINNAME (XEP-0065 §10.2: "hardcoded to 3") → REP 8;
 * - DST.ADDR not 40 hex digits (no SHA-1 can name it) → REP 4 (host unreachable);
 * - DST.PORT ≠ 0 (XEP-0065: "The port MUST be 0") → REP 2 (not allowed by ruleset).
 *
 * RSV is not checked (RFC 1928 only reserves it).
 */
export function parseRequest(buf: Uint8Array): Step<ConnectRequest> {
  if (buf.length < 1) return MORE;
  if (buf[0] !== SOCKS_VERSION) return refuse('version', REP.generalFailure);
  if (buf.length < 2) return MORE;
  if (buf[1] !== CMD_CONNECT) return refuse('command', REP.commandNotSupported);
  if (buf.length < 4) return MORE;
  if (buf[3] !== ATYP_DOMAINNAME) return refuse('address-type', REP.addressTypeNotSupported);
  if (buf.length < 5) return MORE;
  const len = buf[4] as number;
  if (len !== HASH_LENGTH) return refuse('address', REP.hostUnreachable);
  const end = 5 + len + 2;
  if (buf.length < 5 + len) return MORE;
  const addr = Buffer.from(buf.buffer, buf.byteOffset + 5, len).toString('latin1');
  if (!HEX.test(addr)) return refuse('address', REP.hostUnreachable);
  if (buf.length < end) return MORE;
  if (buf[5 + len] !== 0 || buf[6 + len] !== 0) return refuse('port', REP.notAllowed);
  return { kind: 'done', used: end, value: { addr, hash: addr.toLowerCase() } };
}

function refuse(reason: RefuseReason, rep: number): Step<never> {
  return { kind: 'refuse', reason, reply: failureReply(rep) };
}

/**
 * RFC 1928 §6 reply. Success (XEP-0065 §6.3.2): BND.ADDR/BND.PORT are the
 * DST.ADDR/DST.PORT of the request (ATYP 3, the hash, port 0).
 */
export function successReply(addr: string): Uint8Array {
  const a = Buffer.from(addr, 'latin1');
  const out = Buffer.alloc(5 + a.length + 2);
  out[0] = SOCKS_VERSION;
  out[1] = REP.succeeded;
  out[2] = 0;
  out[3] = ATYP_DOMAINNAME;
  out[4] = a.length;
  a.copy(out, 5);
  // port 0: the two bytes are already zero
  return out;
}

/** A CONNECT request for `addr` (ATYP 3, port 0), as a client sends it. */
export function connectRequest(addr: string): Uint8Array {
  const a = Buffer.from(addr, 'latin1');
  const out = Buffer.alloc(5 + a.length + 2);
  out[0] = SOCKS_VERSION;
  out[1] = CMD_CONNECT;
  out[2] = 0;
  out[3] = ATYP_DOMAINNAME;
  out[4] = a.length;
  a.copy(out, 5);
  return out;
}

/** A failure reply: no address is bound, so BND is IPv4 0.0.0.0:0. */
export function failureReply(rep: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, rep, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0);
}

/** The longest handshake (greeting with 255 methods, request with a 255-byte name) a client can send. */
export const MAX_HANDSHAKE_BYTES = 2 + 255 + 4 + 1 + 255 + 2;
