/**
 * The wire contract between the router (anywhere) and c2s nodes: subjects and
 * headers of a delivery. The payload is the stamped stanza's XML; everything
 * else travels in headers (DESIGN.md "Messages on the bus").
 */
import { encodeToken } from '@hyphae/jid';

/** Header names. Short, lower-case, namespaced by `hy-`. */
export const H = {
  /** Target session id on the receiving node. */
  sid: 'hy-sid',
  /** 'stanza' (default) or 'control'. */
  kind: 'hy-kind',
  /** Control verb: 'close' (stream error to send, then close). */
  ctl: 'hy-ctl',
  /** Stream error condition for 'close'. */
  cond: 'hy-cond',
  /** Human-readable text for 'close'. */
  text: 'hy-text',
  /**
   * Reply header: 'ok' when handed to the stream, 'gone' when the session no
   * longer exists. A request naming no session is a liveness probe: a live
   * node answers it 'gone' (dead-nodes.ts, router.ts).
   */
  ack: 'hy-ack',
  /** Node that originated the message (tracing, loop checks). */
  origin: 'hy-origin',
  /** Trace id that follows a stanza across services. */
  trace: 'hy-trace',
} as const;

export type Ack = 'ok' | 'gone';

/** Deliveries to sessions held by connection-manager `node`. */
export function c2sSubject(node: string): string {
  return `xmpp.c2s.${encodeToken(node)}`;
}

/** Session and node lifecycle events, for caches and (later) presence. */
export const EVENTS = {
  sessionBound: 'xmpp.events.session.bound',
  sessionUnbound: 'xmpp.events.session.unbound',
  nodeDown: 'xmpp.events.node.down',
  /** A router found nobody holding a c2s node's subject: every process hides its sessions (dead-nodes.ts). */
  nodeUnreachable: 'xmpp.events.node.unreachable',
  /** A bare JID's registry entries changed (bind, unbind, presence): session caches drop it. */
  sessionChanged: 'xmpp.events.session.changed',
  accountDeleted: 'xmpp.events.account.deleted',
} as const;

export interface SessionEvent {
  bare: string;
  resource: string;
  sessionId: string;
  node: string;
  reason?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export function encodeEvent(ev: object): Uint8Array {
  return enc.encode(JSON.stringify(ev));
}
export function decodeEvent<T>(data: Uint8Array): T {
  return JSON.parse(dec.decode(data)) as T;
}
