/**
 * One client stream (RFC 6120), whatever carries it: stream header checks
 * (§4.7), the features pipeline — STARTTLS (§5), SASL (§6), bind (§7), module
 * features and nonzas — then stanzas stamped with the session's full JID
 * (§8.1.2.1) and handed on in the order received (stanza-out.ts). Bytes come
 * and go through a ClientTransport (transport.ts); nothing here knows TCP.
 */
import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import { StreamError, errorReply, canReplyWithError, type StanzaError, type StreamErrorCondition } from '@hyphae/stanza';
import type { JID } from '@hyphae/jid';
import type { SessionEntry } from '@hyphae/store';
import type { StreamStage } from '@hyphae/module-api';
import { newSaslState } from './features/index.js';
import { C2sSession, type SessionHost } from './client-session.js';
import { receive, type ReceivingStream } from './elements.js';
import { checkStreamStart, offerFeatures } from './stream-start.js';
import { Shaper } from './shaper.js';
import type { C2sRuntime } from './runtime.js';
import type { ClientTransport, FramingError } from './transport.js';

type State = 'header' | 'open' | 'closing' | 'closed';

export class ClientStream implements ReceivingStream, SessionHost {
  readonly id = randomBytes(8).toString('hex');
  readonly sasl = newSaslState();
  private state: State = 'header';
  private headerSent = false;
  private streamDomain: string | null = null;
  /** Authenticated account (localpart) once SASL succeeded. */
  username: string | null = null;
  /** Bound full JID, its registry entry and its module-facing session. */
  jid: JID | null = null;
  private entry: SessionEntry | null = null;
  session: C2sSession | null = null;
  lastReceivedAt = Date.now();
  /** Work on received elements runs one at a time, in order (RFC 6120 §10.1). */
  private queue: Promise<void> = Promise.resolve();
  private readonly idleTimer: NodeJS.Timeout;
  private authTimer: NodeJS.Timeout | null;
  private readonly shaper: Shaper;

  constructor(readonly rt: C2sRuntime, readonly transport: ClientTransport) {
    const c = rt.config.c2s;
    this.shaper = new Shaper(c.maxBytesPerSecond);
    this.idleTimer = setTimeout(() => this.fail('connection-timeout', 'Idle for too long'), c.idleTimeoutSeconds * 1000);
    this.authTimer = setTimeout(() => this.fail('connection-timeout', 'Authentication took too long'), c.authTimeoutSeconds * 1000);
    this.idleTimer.unref();
    this.authTimer.unref();
    transport.start({
      onBytes: (n) => this.onBytes(n),
      onStreamStart: (name, attrs) => this.onStreamStart(name, attrs),
      onElement: (el) => this.enqueue(() => (this.state === 'open' ? receive(this, el) : undefined)),
      onStreamEnd: () => this.enqueue(async () => this.end()),
      onError: (err: FramingError) => this.fail(err.condition, err.text),
      onClosed: (reason, err) => {
        if (err) rt.logger.debug({ err, conn: this.id }, 'socket error');
        this.teardown(reason);
      },
    });
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get tlsSatisfied(): boolean {
    return this.transport.secure || !this.rt.config.c2s.requireTls;
  }

  get domain(): string {
    return this.streamDomain ?? '';
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isBound(): boolean {
    return this.entry !== null && this.state === 'open';
  }

  get sessionId(): string | null {
    return this.entry?.sessionId ?? null;
  }

  get stage(): StreamStage {
    return this.username === null ? 'pre-auth' : this.entry === null ? 'post-auth' : 'bound';
  }

  private onBytes(count: number): void {
    this.lastReceivedAt = Date.now();
    this.idleTimer.refresh();
    const pause = this.shaper.take(count);
    if (pause > 0 && this.state !== 'closed') {
      this.transport.pause();
      setTimeout(() => this.transport.resume(), pause).unref();
    }
  }

  private enqueue(work: () => Promise<void> | void): void {
    this.queue = this.queue.then(work).catch((err: unknown) => {
      this.rt.logger.error({ err, conn: this.id }, 'stream processing failed');
      this.fail('internal-server-error');
    });
  }

  // --- output --------------------------------------------------------------

  send(data: Element | Uint8Array | string): void {
    if (this.state === 'closed') return;
    this.transport.write(typeof data === 'string' || data instanceof Uint8Array ? data : data.toString());
  }

  /** StreamContext.write, for modules. */
  write(data: Element | string): void {
    this.send(data);
  }

  sendError(el: Element, err: StanzaError): void {
    if (!canReplyWithError(el)) return;
    this.rt.metrics.stanzaErrors.inc({ condition: err.condition });
    const reply = errorReply(el, err);
    delete reply.attrs.from;
    delete reply.attrs.to;
    this.send(reply);
  }

  /** Writes bytes routed to this session as they are (DESIGN.md: no re-serialization). */
  deliver(data: Uint8Array): boolean {
    if (!this.isBound) return false;
    // A client that does not read: past the bound its stream ends and this
    // delivery is not acknowledged (the router stores it offline or answers
    // its sender), rather than this node's memory growing without end.
    if (this.transport.backlog > this.rt.config.c2s.maxWriteBufferBytes) {
      this.rt.metrics.overloadShed.inc({ queue: 'c2s-write', reason: 'full' });
      this.fail('resource-constraint', 'Too much unread data is queued for this stream');
      return false;
    }
    if (this.rt.deliverHooks && this.session) {
      this.session.deliverThroughHooks(data);
      return true;
    }
    this.rt.metrics.stanzas.inc({ direction: 'out', kind: 'delivered' });
    this.transport.write(data);
    return true;
  }

  private sendHeader(): void {
    if (this.headerSent || this.state === 'closed') return;
    this.headerSent = true;
    const attrs: Record<string, string> = { id: randomBytes(12).toString('base64url'), version: '1.0', 'xml:lang': 'en' };
    if (this.streamDomain) attrs.from = this.streamDomain;
    this.transport.openStream(attrs);
  }

  // --- ending ----------------------------------------------------------------

  /** Ends the stream with a stream error (RFC 6120 §4.9.1.1) and closes. */
  fail(condition: StreamErrorCondition, text?: string): void {
    this.failWith(new StreamError(condition, text));
  }

  /** StreamContext.close, for modules. */
  close(condition: StreamErrorCondition, text?: string): void {
    this.fail(condition, text);
  }

  failWith(err: StreamError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.rt.metrics.streamErrors.inc({ condition: err.condition });
    this.rt.logger.info({ conn: this.id, condition: err.condition, text: err.text, jid: this.jid?.toString() }, 'stream error');
    this.sendHeader(); // §4.9.1.2: a header must precede the error
    this.send(err.toElement());
    this.end();
  }

  /** Closes our stream (§4.4) and the connection once flushed. */
  end(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.sendHeader();
    this.transport.closeStream();
    this.transport.close();
    void this.unbind('stream closed');
  }

  private teardown(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
    this.transport.destroy();
    void this.unbind(reason);
    this.rt.connectionClosed(this);
  }

  /** First step of a drain (C2sSession.leaveRegistry). */
  async leaveRegistry(): Promise<void> {
    await this.session?.leaveRegistry();
  }

  private async unbind(reason: string): Promise<void> {
    const entry = this.entry;
    const jid = this.jid;
    const session = this.session;
    if (!entry || !jid) return;
    this.entry = null;
    this.session = null;
    await this.rt.sessionEnded(jid, entry, reason, session?.leftRegistry ?? false);
    if (session) {
      await this.rt.registry.lifecycle('session/unbound', { session, routing: this.rt.router, reason }, (err) => {
        this.rt.logger.error({ err, jid: jid.toString() }, 'a session/unbound hook failed');
      });
    }
  }

  // --- stream header (§4.7) ----------------------------------------------------

  private onStreamStart(name: string, attrs: Record<string, string>): void {
    const { domain, error } = checkStreamStart(this.rt, this.transport, this.streamDomain, name, attrs);
    this.streamDomain = domain;
    if (error) return this.fail(error.condition, error.text);
    this.state = 'open';
    this.sendHeader();
    this.send(offerFeatures(this, this.username === null ? 'pre-auth' : 'post-auth'));
  }

  // --- the features' callbacks (StreamInternals) --------------------------------

  upgradeTls(): void {
    this.transport.startTls?.();
    this.restart();
  }

  authenticated(localpart: string): void {
    this.username = localpart;
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = null;
    this.restart();
  }

  /** The client opens a new stream next, over the same connection. */
  private restart(): void {
    this.state = 'header';
    this.headerSent = false;
    this.transport.restartStream();
  }

  bound(jid: JID, entry: SessionEntry): void {
    this.jid = jid;
    this.entry = entry;
    this.session = new C2sSession(this.rt, this, jid, entry, this.remoteAddress);
    this.rt.sessionStarted(this);
  }

  /** The stream's copy of its registry entry (stanza-out.ts notes presence on it). */
  get registryEntry(): SessionEntry | null {
    return this.entry;
  }
}
