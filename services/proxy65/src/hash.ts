import { createHash } from 'node:crypto';
import { encodeToken } from '@hyphae/jid';

/**
 * XEP-0065 §6.3.2 DST.ADDR: SHA1(SID + Requester JID + Target JID), hex in
 * lower case. The JIDs must already be prepared (stringprep/PRECIS): pass
 * `JID.toString()` of parsed JIDs.
 */
export function dstAddr(sid: string, requester: string, target: string): string {
  return createHash('sha1').update(sid + requester + target, 'utf8').digest('hex');
}

/** Bus subject of the instance holding the connections for `hash` (plain subscription). */
export function streamSubject(hash: string): string {
  return `xmpp.proxy65.stream.${hash}`;
}

/** Bus subject of the instances that know a stream with StreamID `sid` (plain subscriptions). */
export function sidSubject(sid: string): string {
  return `xmpp.proxy65.sid.${encodeToken(sid)}`;
}

/** Reply header of the stream and sid subjects. */
export const RESULT_HEADER = 'hy-result';
/** Request header of the stream subject: 'activate' (default) or 'locate'. */
export const OP_HEADER = 'hy-op';

/** Payload of a 'here' reply to 'locate' (JSON): the holder's listener, as other instances reach it. */
export interface LocateReply {
  host: string;
  port: number;
}

/** What the holder answers on `xmpp.proxy65.stream.<H>`. */
export type ActivateResult =
  /** Activated: bytes flow. */
  | 'ok'
  /** Only one of the two connections is there (XEP-0065 §6.3.5 not-allowed). */
  | 'one-side'
  /** Already activated. */
  | 'active'
  /** The requester has maxStreamsPerUser active streams here. */
  | 'limit'
  /** The stream ended while the request was on its way. */
  | 'gone';

/** What a holder answers on `xmpp.proxy65.sid.<sid>`: whether one of its streams with that sid has this requester. */
export type SidResult = 'requester' | 'other';

/** Payload of a request on the stream subject (JSON). */
export interface ActivateRequest {
  sid: string;
  /** The requester's full JID (the activate iq's stamped `from`). */
  requester: string;
  /** The requester's bare JID (per-user limit). */
  requesterBare: string;
  /** The target JID, prepared. */
  target: string;
}

/** Payload of a request on the sid subject (JSON). */
export interface SidRequest {
  requester: string;
}
