/**
 * RFC 6120 over TCP: the stream is one XML document on the socket, parsed
 * with @hyphae/xml's StreamParser (limits, no DTDs); STARTTLS upgrades the
 * socket in place (§5.4.3.3), and XEP-0368 direct TLS arrives already
 * encrypted. Writes are batched per event-loop turn with TCP_NODELAY on
 * (DESIGN.md Operations).
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { guardHandshake, type HandshakeFailure } from '@hyphae/pki';
import { BatchedWriter, StreamParser, streamHeader, streamFooter, type StreamParserLimits, type XmlStreamError } from '@hyphae/xml';
import { NS } from '@hyphae/stanza';
import type { ClientTransport, FramingError, TransportEvents } from './transport.js';

export interface TcpTransportOptions {
  /**
   * 'tcp' for the STARTTLS port, 'tls' for the direct-TLS port: the socket
   * is the raw TCP one either way, wrapped here, so the connection exists
   * (and counts against the per-IP limit) from accept, not from the end of
   * its handshake.
   */
  kind: 'tcp' | 'tls';
  /** For direct TLS and STARTTLS (the TLS policy is in it). */
  secureContext: SecureContext;
  /** A handshake not finished this long after it began closes the connection. */
  handshakeTimeoutMs: number;
  /** A handshake timed out or failed (metrics). */
  onHandshakeFailure?: (reason: HandshakeFailure, kind: 'tls' | 'starttls', err?: Error) => void;
  limits: Partial<StreamParserLimits>;
  /** How long close() waits for the peer's side before destroying the socket. */
  closeTimeoutMs?: number;
}

const NO_EVENTS: TransportEvents = {
  onBytes: () => undefined, onStreamStart: () => undefined, onElement: () => undefined,
  onStreamEnd: () => undefined, onError: () => undefined, onClosed: () => undefined,
};

export class TcpTransport implements ClientTransport {
  readonly name: 'tcp' | 'tls';
  readonly remoteAddress: string;
  private socket: Socket | TLSSocket;
  private encrypted: boolean;
  private readonly writer: BatchedWriter;
  private readonly parser: StreamParser;
  private events: TransportEvents = NO_EVENTS;
  private readonly onData = (chunk: Buffer) => {
    this.events.onBytes(chunk.length);
    this.parser.write(chunk);
  };

  constructor(socket: Socket, private readonly opts: TcpTransportOptions) {
    this.name = opts.kind;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    // XEP-0368: direct TLS, ALPN 'xmpp-client'.
    this.socket = opts.kind === 'tls' ? this.wrap(socket, 'tls', ['xmpp-client']) : socket;
    this.encrypted = opts.kind === 'tls';
    this.writer = new BatchedWriter(this.socket);
    this.parser = new StreamParser(
      {
        onStreamStart: (name, attrs) => this.events.onStreamStart(name, attrs),
        onStanza: (el) => this.events.onElement(el),
        onStreamEnd: () => this.events.onStreamEnd(),
        onError: (err: XmlStreamError) => this.events.onError({ condition: err.condition, text: err.message }),
      },
      opts.limits,
    );
  }

  get secure(): boolean {
    return this.encrypted;
  }

  get canStartTls(): boolean {
    return !this.encrypted;
  }

  start(events: TransportEvents): void {
    this.events = events;
    this.attach(this.socket);
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', (err) => this.events.onClosed('socket error', err));
    socket.on('close', () => this.events.onClosed('closed'));
  }

  // --- framing (RFC 6120 §4.7, §4.8) -------------------------------------------

  checkStreamStart(name: string, attrs: Readonly<Record<string, string>>): FramingError | null {
    if (name !== 'stream:stream') {
      // §4.8.5: the stream element must use the 'stream' prefix.
      return { condition: name.endsWith(':stream') ? 'bad-namespace-prefix' : 'invalid-namespace' };
    }
    if (attrs['xmlns:stream'] !== NS.stream) return { condition: 'invalid-namespace' };
    if (attrs.xmlns !== NS.client) return { condition: 'invalid-namespace', text: 'This port serves jabber:client' };
    return null;
  }

  openStream(attrs: Record<string, string>): void {
    this.writer.write(streamHeader({ xmlns: NS.client, 'xmlns:stream': NS.stream, ...attrs }));
  }

  closeStream(): void {
    this.writer.write(streamFooter);
  }

  restartStream(): void {
    this.parser.reset();
  }

  // --- bytes -----------------------------------------------------------------------

  write(data: string | Uint8Array): void {
    this.writer.write(data);
  }

  get backlog(): number {
    return this.writer.backlog;
  }

  flush(): void {
    this.writer.flush();
  }

  startTls(): void {
    const raw = this.socket as Socket;
    raw.removeListener('data', this.onData);
    this.writer.flush(); // <proceed/> goes out in the clear, then the handshake
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    const tls = this.wrap(raw, 'starttls');
    this.socket = tls;
    this.writer.setSocket(tls);
    this.encrypted = true;
    this.attach(tls);
  }

  /** The server side of TLS on `raw`, closed if its handshake does not finish in time. */
  private wrap(raw: Socket, kind: 'tls' | 'starttls', alpn?: string[]): TLSSocket {
    const tls = new TLSSocket(raw, { isServer: true, secureContext: this.opts.secureContext, ...(alpn ? { ALPNProtocols: alpn } : {}) });
    guardHandshake(tls, this.opts.handshakeTimeoutMs, (reason, err) => this.opts.onHandshakeFailure?.(reason, kind, err));
    return tls;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.writer.flush();
    this.socket.end();
    // Don't wait forever for the peer's closing tag.
    setTimeout(() => this.socket.destroy(), this.opts.closeTimeoutMs ?? 2000).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
