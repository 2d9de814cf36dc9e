/**
 * What carries a client stream: bytes in, elements out of its framing, and
 * the framing of our side. The stream layer (stream.ts) only talks to this
 * interface, so TCP/TLS (tcp-transport.ts), RFC 7395 WebSocket and XEP-0206
 * BOSH can each carry the same negotiation, features and stanzas.
 *
 * Framing differs per transport: over TCP the stream is one XML document
 * opened by `<stream:stream>` and closed by `</stream:stream>`; over a
 * WebSocket every message is one element and the stream is opened and closed
 * by `<open/>` and `<close/>` (RFC 7395 §3.3); BOSH wraps elements in
 * `<body/>` requests (XEP-0206 §5). Each transport parses its own framing and
 * reports what it found through `TransportEvents`; the stream layer decides
 * what to answer.
 */
import type { Element } from 'ltx';
import type { StreamErrorCondition } from '@hyphae/stanza';

/** A stream error the transport found in its framing (not-well-formed XML, a size limit…). */
export interface FramingError {
  condition: StreamErrorCondition;
  text?: string;
}

/** What a transport reports to the stream layer, in the order it happened. */
export interface TransportEvents {
  /** Bytes arrived from the client (before parsing): the idle timer, the rate limit, lastReceivedAt. */
  onBytes(count: number): void;
  /** The client opened a stream (or restarted it): the name and attributes of its stream element. */
  onStreamStart(name: string, attrs: Record<string, string>): void;
  /** One complete top-level element of the stream (stanza or nonza). */
  onElement(el: Element): void;
  /** The client closed its stream (`</stream:stream>`, `<close/>`). */
  onStreamEnd(): void;
  /** The input broke the framing or a limit: the stream ends with this error. */
  onError(err: FramingError): void;
  /** The connection is gone (closed by the peer, by us, or failed with `err`). */
  onClosed(reason: string, err?: unknown): void;
}

export interface ClientTransport {
  /** Label for metrics and logs, fixed for the connection's life ('tcp', 'tls', 'websocket', …). */
  readonly name: string;
  readonly remoteAddress: string;
  /** The bytes are encrypted (TLS, or wss://). */
  readonly secure: boolean;
  /** The transport can be upgraded in place with STARTTLS (RFC 6120 §5). */
  readonly canStartTls: boolean;

  /** Starts reading; events go to `events` from now on. */
  start(events: TransportEvents): void;

  /**
   * Checks the client's stream element (name, namespaces) against this
   * framing: `<stream:stream xmlns='jabber:client'>` over TCP, `<open
   * xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>` over a WebSocket. The
   * stream layer checks `to` and `version` itself. Null when acceptable.
   */
  checkStreamStart(name: string, attrs: Readonly<Record<string, string>>): FramingError | null;
  /** Writes our stream header with these attributes (id, version, xml:lang, from), in this framing. */
  openStream(attrs: Record<string, string>): void;
  /** Writes the end of our stream (`</stream:stream>`, `<close/>`). */
  closeStream(): void;
  /** The client opens a new stream next (after STARTTLS or SASL success, RFC 6120 §4.3.3). */
  restartStream(): void;

  /** Bytes handed to the connection and not yet sent: what a client that reads slowly, or not at all, has piled up. */
  readonly backlog: number;
  /** Queues whole elements (serialized) for the client; written together once per event-loop turn. */
  write(data: string | Uint8Array): void;
  /** Writes everything queued now. */
  flush(): void;
  /**
   * Upgrades the connection to TLS in place (RFC 6120 §5.4.3.3), after the
   * stream layer has written `<proceed/>`; only when `canStartTls`.
   */
  startTls?(): void;

  /** Stops and resumes reading (the inbound rate limit). */
  pause(): void;
  resume(): void;
  /** Flushes, ends the connection, and destroys it if the peer does not close its side soon. */
  close(): void;
  /** Drops the connection now. */
  destroy(): void;
}
