/**
 * One server-to-server connection at the XML-stream level (RFC 6120 §4):
 * the socket, the stream parser with its limits, batched writes, STARTTLS in
 * either role (§5), stream restarts, and closing with or without a stream
 * error. Inbound and outbound streams build their negotiation on it.
 */
import type { Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket, type ConnectionOptions, type TLSSocketOptions } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import { BatchedWriter, StreamParser, streamHeader, streamFooter, type StreamParserLimits, type XmlStreamError } from '@hyphae/xml';
import { NS, StreamError } from '@hyphae/stanza';
import type { Logger } from '@hyphae/observability';

/** XEP-0220: the dialback namespace, bound to the `db` prefix on our stream headers. */
export const NS_DIALBACK = 'jabber:server:dialback';
/** XEP-0220 §2.1: the stream feature announcing dialback (with error support). */
export const NS_DIALBACK_FEATURE = 'urn:xmpp:features:dialback';

export interface LinkHandlers {
  /** A stream header arrived (the first, or after a restart). */
  onHeader(name: string, attrs: Record<string, string>): void;
  /** A top-level element; handled one at a time, in order. */
  onElement(el: Element): Promise<void> | void;
  /** The connection is gone (closed, failed, or destroyed); called once. */
  onClosed(reason: string): void;
}

/** Whether `el` is the dialback element `name` ('result' or 'verify'), prefixed or not. */
export function isDialback(el: Element, name: 'result' | 'verify'): boolean {
  if (el.name === `db:${name}`) return true;
  return el.name === name && el.attrs.xmlns === NS_DIALBACK;
}

export class Link {
  readonly id = randomBytes(6).toString('hex');
  socket: Socket;
  private readonly writer: BatchedWriter;
  private readonly parser: StreamParser;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private closing = false;
  private headerSent = false;
  /** TLS is in place (direct TLS, or after STARTTLS). */
  secure: boolean;
  private readonly onData = (chunk: Buffer) => this.parser.write(chunk);

  constructor(
    socket: Socket,
    limits: StreamParserLimits,
    private readonly handlers: LinkHandlers,
    private readonly logger: Logger,
  ) {
    this.socket = socket;
    this.secure = socket instanceof TLSSocket;
    this.writer = new BatchedWriter(socket);
    this.parser = new StreamParser(
      {
        onStreamStart: (name, attrs) => {
          if (!this.closed) this.handlers.onHeader(name, attrs);
        },
        onStanza: (el) => this.enqueue(() => this.handlers.onElement(el)),
        onStreamEnd: () => this.enqueue(() => this.close()),
        onError: (err: XmlStreamError) => this.fail(new StreamError(err.condition, err.message)),
      },
      limits,
    );
    this.attach(socket);
  }

  get isClosed(): boolean {
    return this.closed || this.closing;
  }

  private readonly onError = (err: Error) => {
    this.logger.debug({ err, link: this.id }, 's2s socket error');
    this.teardown(`socket error: ${err.message}`);
  };
  private readonly onClose = () => this.teardown('connection closed');

  private attach(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** Only our listeners: the listener's own (the per-IP count) stay on the raw socket. */
  private detach(socket: Socket): void {
    socket.removeListener('data', this.onData);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
  }

  private enqueue(work: () => Promise<void> | void): void {
    this.queue = this.queue.then(work).catch((err: unknown) => {
      if (err instanceof StreamError) return this.fail(err);
      this.logger.error({ err, link: this.id }, 's2s stream processing failed');
      this.fail(new StreamError('internal-server-error'));
    });
  }

  /** Pauses reading for `ms` (rate limits). */
  pauseFor(ms: number, resumed?: () => void): void {
    const socket = this.socket;
    socket.pause();
    setTimeout(() => {
      socket.resume();
      resumed?.();
    }, ms).unref();
  }

  send(data: string | Element | Uint8Array): void {
    if (this.closed) return;
    this.writer.write(typeof data === 'string' || data instanceof Uint8Array ? data : data.toString());
  }

  /** Opens our side of the stream (RFC 6120 §4.7), with the dialback prefix declared (XEP-0220). */
  sendHeader(attrs: { from?: string; to?: string; id?: string }): void {
    this.headerSent = true;
    const a: Record<string, string> = {
      xmlns: NS.server,
      'xmlns:stream': NS.stream,
      'xmlns:db': NS_DIALBACK,
      version: '1.0',
    };
    if (attrs.from) a.from = attrs.from;
    if (attrs.to) a.to = attrs.to;
    if (attrs.id) a.id = attrs.id;
    this.send(streamHeader(a));
  }

  /** §5.4.3.3 / §6.4.6: a new stream follows on the same connection. */
  restart(): void {
    this.headerSent = false;
    this.parser.reset();
  }

  /** Server side of STARTTLS (§5.4.2.3): answers <proceed/> and wraps the socket (Trust.inboundSocketOptions). */
  startTlsServer(options: TLSSocketOptions): TLSSocket {
    this.send('<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>');
    this.writer.flush();
    const raw = this.socket;
    this.detach(raw);
    const tls = new TLSSocket(raw, options);
    this.switchTo(tls);
    return tls;
  }

  /** Client side of STARTTLS, after <proceed/>: resolves once the handshake is done. */
  startTlsClient(options: ConnectionOptions): Promise<TLSSocket> {
    const raw = this.socket;
    this.detach(raw);
    return new Promise((resolve, reject) => {
      const tls = tlsConnect({ ...options, socket: raw });
      const onError = (err: Error) => {
        this.teardown(`tls: ${err.message}`);
        reject(err);
      };
      tls.once('error', onError);
      tls.once('secureConnect', () => {
        tls.removeListener('error', onError);
        this.switchTo(tls);
        resolve(tls);
      });
    });
  }

  private switchTo(tls: TLSSocket): void {
    this.socket = tls;
    this.writer.setSocket(tls);
    this.secure = true;
    this.restart();
    this.attach(tls);
  }

  /** Ends the stream with a stream error (§4.9.1.1) and closes. */
  fail(err: StreamError, header?: { from?: string; to?: string; id?: string }): void {
    if (this.closed || this.closing) return;
    if (!this.headerSent) this.sendHeader(header ?? {}); // §4.9.1.2: a header precedes the error
    this.send(err.toElement());
    this.close(err.condition);
  }

  /** Closes our stream (§4.4) and the connection once flushed. */
  close(reason = 'stream closed'): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.headerSent) this.send(streamFooter);
    this.writer.flush();
    this.socket.end();
    // Don't wait forever for the peer's closing tag.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.handlers.onClosed(reason);
    this.closed = true;
  }

  /** Drops the connection at once. */
  destroy(reason: string): void {
    this.teardown(reason);
  }

  private teardown(reason: string): void {
    if (this.closed) {
      this.socket.destroy();
      return;
    }
    this.closed = true;
    this.socket.destroy();
    if (!this.closing) this.handlers.onClosed(reason);
  }
}

/** A random stream id (RFC 6120 §4.7.3: unique and unpredictable; dialback keys depend on it). */
export function newStreamId(): string {
  return randomBytes(16).toString('hex');
}
