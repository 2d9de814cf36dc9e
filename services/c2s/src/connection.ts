/**
 * One client stream (RFC 6120): stream header checks, STARTTLS (§5), SASL
 * (§6), resource binding (§7), then stanzas stamped with the session's full
 * JID (§8.1.2.1) and handed to the router in the order received.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { Element } from 'ltx';
import { newTraceId, runWithTrace } from '@hyphae/bus';
import { BatchedWriter, StreamParser, streamHeader, streamFooter, type XmlStreamError } from '@hyphae/xml';
import { NS, StreamError, StanzaError, errorReply, iqResult, validateIq, canReplyWithError, type StreamErrorCondition } from '@hyphae/stanza';
import { JID, prepLocal, prepResource } from '@hyphae/jid';
import { createMechanism, type SaslMechanismServer, type SaslStep, type MechanismName } from '@hyphae/sasl';
import type { SessionEntry } from '@hyphae/store';

import { Shaper } from './shaper.js';
import type { C2sRuntime } from './runtime.js';

type State = 'header' | 'open' | 'closing' | 'closed';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 6120 §6.4.5: a reasonable number of retries, then the stream ends. */
const MAX_AUTH_FAILURES = 3;
const STANZAS = new Set(['message', 'presence', 'iq']);
const ROSTER = 'jabber:iq:roster';

/**
 * jabber:iq:roster get/set handled by the server: no 'to', or a bare JID.
 * The user's actor answers the user's own and <forbidden/> for any other
 * account (RFC 6121 §2.1.5); one addressed to a full JID is an iq for that
 * client and is routed like any other.
 */
function isRosterQuery(iq: Element): boolean {
  const t = iq.attrs.type;
  if (t !== 'get' && t !== 'set') return false;
  if (!iq.getChild('query', ROSTER)) return false;
  const to = iq.attrs.to as string | undefined;
  return to === undefined || !to.includes('/');
}

/** A transient backend failure: RFC 6120 §8.3.3.5 with type 'wait' (retry later). */
function temporaryFailure(): StanzaError {
  return new StanzaError('internal-server-error', 'Temporary failure; try again', { type: 'wait' });
}

export class C2sConnection {
  readonly id = randomBytes(8).toString('hex');
  private socket: Socket | TLSSocket;
  private readonly writer: BatchedWriter;
  private readonly parser: StreamParser;
  private state: State = 'header';
  private headerSent = false;
  private secure: boolean;
  private domain: string | null = null;
  private mechanism: SaslMechanismServer | null = null;
  private authFailures = 0;
  /** Authenticated account (localpart) once SASL succeeded. */
  private username: string | null = null;
  /** Bound full JID and its registry entry. */
  jid: JID | null = null;
  private entry: SessionEntry | null = null;
  /** The registry entry was removed already (drain): the session end still tells the user actor. */
  private leftRegistry = false;
  /** Work on received elements runs one at a time, in order (RFC 6120 §10.1). */
  private queue: Promise<void> = Promise.resolve();
  private idleTimer: NodeJS.Timeout;
  private authTimer: NodeJS.Timeout | null;
  private readonly shaper: Shaper;
  private readonly onData = (chunk: Buffer) => {
    this.idleTimer.refresh();
    this.parser.write(chunk);
    const pause = this.shaper.take(chunk.length);
    if (pause > 0 && this.state !== 'closed') {
      const socket = this.socket;
      socket.pause();
      setTimeout(() => socket.resume(), pause).unref();
    }
  };

  constructor(
    private readonly rt: C2sRuntime,
    socket: Socket | TLSSocket,
    readonly remoteAddress: string,
    readonly transport: 'tcp' | 'tls',
  ) {
    this.socket = socket;
    this.secure = transport === 'tls';
    this.shaper = new Shaper(rt.config.c2s.maxBytesPerSecond);
    this.writer = new BatchedWriter(socket);
    const c = rt.config.c2s;
    this.parser = new StreamParser(
      {
        onStreamStart: (name, attrs) => this.onStreamStart(name, attrs),
        onStanza: (el) => this.enqueue(() => this.onElement(el)),
        onStreamEnd: () => this.enqueue(async () => this.close()),
        onError: (err: XmlStreamError) => this.fail(err.condition, err.message),
      },
      { maxStanzaBytes: c.maxStanzaBytes, maxDepth: c.maxDepth, maxAttributes: c.maxAttributes },
    );
    this.idleTimer = setTimeout(() => this.fail('connection-timeout', 'Idle for too long'), c.idleTimeoutSeconds * 1000);
    this.authTimer = setTimeout(() => this.fail('connection-timeout', 'Authentication took too long'), c.authTimeoutSeconds * 1000);
    this.idleTimer.unref();
    this.authTimer.unref();
    this.attach(socket);
  }

  get isBound(): boolean {
    return this.entry !== null && this.state === 'open';
  }

  get sessionId(): string | null {
    return this.entry?.sessionId ?? null;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', (err) => {
      this.rt.logger.debug({ err, conn: this.id }, 'socket error');
      this.teardown('socket error');
    });
    socket.on('close', () => this.teardown('closed'));
  }

  private enqueue(work: () => Promise<void> | void): void {
    this.queue = this.queue.then(work).catch((err: unknown) => {
      this.rt.logger.error({ err, conn: this.id }, 'stream processing failed');
      this.fail('internal-server-error');
    });
  }

  // --- output --------------------------------------------------------------

  /** Answers a stanza from this client with an error, unless it must not be (RFC 6120 §8.3.1). */
  private sendError(el: Element, err: StanzaError): void {
    if (!canReplyWithError(el)) return;
    const reply = errorReply(el, err);
    delete reply.attrs.from;
    delete reply.attrs.to;
    this.send(reply);
  }

  send(el: Element | string): void {
    if (this.state === 'closed') return;
    this.writer.write(typeof el === 'string' ? el : el.toString());
  }

  /** Writes bytes routed to this session as they are (DESIGN.md: no re-serialization). */
  deliver(data: Uint8Array): boolean {
    if (!this.isBound) return false;
    this.rt.metrics.stanzas.inc({ direction: 'out', kind: 'delivered' });
    this.writer.write(data);
    return true;
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    const attrs: Record<string, string> = {
      xmlns: NS.client,
      'xmlns:stream': NS.stream,
      id: randomBytes(12).toString('base64url'),
      version: '1.0',
      'xml:lang': 'en',
    };
    if (this.domain) attrs.from = this.domain;
    this.send(streamHeader(attrs));
  }

  /** Ends the stream with a stream error (RFC 6120 §4.9.1.1) and closes. */
  fail(condition: StreamErrorCondition, text?: string): void {
    this.failWith(new StreamError(condition, text));
  }

  failWith(err: StreamError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.rt.metrics.streamErrors.inc({ condition: err.condition });
    this.rt.logger.info({ conn: this.id, condition: err.condition, text: err.text, jid: this.jid?.toString() }, 'stream error');
    this.sendHeader(); // §4.9.1.2: a header must precede the error
    this.send(err.toElement());
    this.close();
  }

  /**
   * Ends the stream for a drain: the session leaves the registry first, so
   * whatever is routed to the user from now on finds another resource or
   * offline storage instead of this closing stream; then the stream error.
   */
  /**
   * First step of a drain: the session leaves the registry, so whatever is
   * routed to the user from now on finds another resource or offline
   * storage; the stream stays open meanwhile, so what was already on its
   * way here is still written to it (answering those 'gone' would send them
   * to offline storage behind later messages: out of order).
   */
  async leaveRegistry(): Promise<void> {
    const entry = this.entry;
    const jid = this.jid;
    if (!entry || !jid) return;
    this.leftRegistry = await this.rt.leaveRegistry(jid, entry);
  }

  /** Closes our stream (§4.4) and the connection once flushed. */
  close(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.sendHeader();
    this.send(streamFooter);
    this.writer.flush();
    this.socket.end();
    // Don't wait forever for the peer's closing tag.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    void this.unbind('stream closed');
  }

  private teardown(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.idleTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
    this.socket.destroy();
    void this.unbind(reason);
    this.rt.connectionClosed(this);
  }

  private async unbind(reason: string): Promise<void> {
    const entry = this.entry;
    const jid = this.jid;
    if (!entry || !jid) return;
    this.entry = null;
    await this.rt.sessionEnded(jid, entry, reason, this.leftRegistry);
  }

  // --- stream header (§4.7) -------------------------------------------------

  private onStreamStart(name: string, attrs: Record<string, string>): void {
    const to = attrs.to;
    let domain: string | null = null;
    if (to !== undefined) {
      try {
        domain = this.rt.prepDomain(to);
      } catch {
        domain = null;
      }
    }
    if (domain && this.rt.domains.has(domain) && (this.domain === null || this.domain === domain)) this.domain = domain;
    if (name !== 'stream:stream') {
      // §4.8.5: the stream element must use the 'stream' prefix.
      return this.fail(name.endsWith(':stream') ? 'bad-namespace-prefix' : 'invalid-namespace');
    }
    if (attrs['xmlns:stream'] !== NS.stream) return this.fail('invalid-namespace');
    if (attrs.xmlns !== NS.client) return this.fail('invalid-namespace', 'This port serves jabber:client');
    if (to === undefined) return this.fail('improper-addressing', "The stream header needs a 'to' address");
    if (!domain || !this.rt.domains.has(domain)) return this.fail('host-unknown', 'This server does not serve that domain');
    if (this.domain !== domain) return this.fail('not-authorized', "The 'to' address must stay the same across stream restarts");
    const version = attrs.version;
    // §4.7.5: no version means pre-1.0 (unsupported); a higher major version too.
    if (version === undefined || !/^1\.\d+$/.test(version)) {
      return this.fail('unsupported-version', 'XMPP 1.0 is required');
    }
    this.state = 'open';
    this.sendHeader();
    this.send(this.features());
  }

  private features(): Element {
    const f = new Element('stream:features');
    const c = this.rt.config;
    if (this.username === null) {
      if (!this.secure) {
        const st = f.c('starttls', { xmlns: NS.tls });
        if (c.c2s.requireTls) st.c('required');
      }
      if (this.secure || !c.c2s.requireTls) {
        const mechs = f.c('mechanisms', { xmlns: NS.sasl });
        for (const m of this.offeredMechanisms()) mechs.c('mechanism').t(m);
        if (c.registration.open) f.c('register', { xmlns: NS.registerFeature });
      }
    } else {
      f.c('bind', { xmlns: NS.bind });
      // RFC 6121 §2.6.1 roster versioning; §3.4 subscription pre-approval.
      f.c('ver', { xmlns: 'urn:xmpp:features:rosterver' });
      f.c('sub', { xmlns: 'urn:xmpp:features:pre-approval' });
      // RFC 6121 legacy session establishment, advertised as optional (RFC 6121 Appendix E).
      f.c('session', { xmlns: NS.session }).c('optional');
    }
    return f;
  }

  private offeredMechanisms(): MechanismName[] {
    // PLAIN sends the password itself: only over TLS (RFC 6120 §13.8).
    return this.rt.config.c2s.saslMechanisms.filter((m) => m !== 'PLAIN' || this.secure);
  }

  // --- elements ---------------------------------------------------------------

  private async onElement(el: Element): Promise<void> {
    if (this.state !== 'open') return;
    this.rt.metrics.stanzas.inc({ direction: 'in', kind: STANZAS.has(el.name) ? el.name : 'nonza' });
    if (this.username === null) return this.beforeAuth(el);
    if (this.entry === null) return this.beforeBind(el);
    return this.onStanza(el);
  }

  private async beforeAuth(el: Element): Promise<void> {
    const xmlns = el.attrs.xmlns as string | undefined;
    if (el.name === 'starttls' && xmlns === NS.tls) return this.startTls();
    if (xmlns === NS.sasl && (el.name === 'auth' || el.name === 'response' || el.name === 'abort')) {
      if (!this.secure && this.rt.config.c2s.requireTls) {
        // §5.3.1: TLS is mandatory-to-negotiate here.
        return this.saslFailure('encryption-required', 'Use STARTTLS first');
      }
      return this.sasl(el);
    }
    if (el.name === 'iq' && el.getChild('query', NS.register) && this.rt.config.registration.open &&
        (this.secure || !this.rt.config.c2s.requireTls)) {
      const invalid = validateIq(el);
      if (invalid) return this.sendError(el, invalid);
      delete el.attrs.from;
      let answer: Element;
      try {
        answer = await this.rt.register.preAuth(el, this.domain ?? '', this.remoteAddress);
      } catch (err) {
        this.rt.logger.warn({ err, conn: this.id }, 'registration failed');
        return this.sendError(el, temporaryFailure());
      }
      delete answer.attrs.to;
      this.rt.metrics.registrations.inc({ result: answer.attrs.type === 'result' ? 'ok' : 'refused' });
      return this.send(answer);
    }
    // §4.9.3.12: stanzas before authentication.
    this.fail('not-authorized', 'Authenticate first');
  }

  private startTls(): void {
    if (this.secure) return this.fail('policy-violation', 'TLS is already in place');
    this.socket.removeListener('data', this.onData);
    this.writer.write(new Element('proceed', { xmlns: NS.tls }).toString());
    this.writer.flush();
    const raw = this.socket as Socket;
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    const tls = new TLSSocket(raw, { isServer: true, secureContext: this.rt.secureContext });
    this.socket = tls;
    this.writer.setSocket(tls);
    this.secure = true;
    this.headerSent = false;
    this.state = 'header';
    this.parser.reset(); // §5.4.3.3: a new stream follows
    this.attach(tls);
  }

  // --- SASL (§6) ---------------------------------------------------------------

  private saslFailure(condition: string, text?: string): void {
    const f = new Element('failure', { xmlns: NS.sasl });
    f.c(condition);
    if (text) f.c('text', { 'xml:lang': 'en' }).t(text);
    this.send(f);
  }

  private async sasl(el: Element): Promise<void> {
    if (el.name === 'abort') {
      this.mechanism = null;
      return this.saslFailure('aborted');
    }
    let data: Buffer | null = null;
    const text = el.getText();
    if (text !== '') {
      // §6.4.2: '=' is an empty response; anything else must be valid base64.
      if (text === '=') data = Buffer.alloc(0);
      else if (BASE64.test(text)) data = Buffer.from(text, 'base64');
      else {
        this.mechanism = null;
        return this.authFailed('incorrect-encoding');
      }
    }
    let step: SaslStep;
    if (el.name === 'auth') {
      const name = el.attrs.mechanism as string | undefined;
      const offered = this.offeredMechanisms() as string[];
      if (!name || !offered.includes(name)) return this.authFailed('invalid-mechanism');
      this.mechanism = createMechanism(name as MechanismName, {
        lookup: (username) => this.rt.lookupCredentials(this.domain ?? '', username),
        authorize: (username, authzid) => this.authorizeAs(username, authzid),
        // Same fake salt for an unknown user on every node: no account enumeration.
        unknownUserSecret: this.rt.unknownUserSecret,
        unknownUserIterations: this.rt.config.c2s.scramIterations,
      });
      step = await this.mechanism.start(data);
    } else {
      if (!this.mechanism) return this.authFailed('malformed-request');
      step = await this.mechanism.step(data ?? Buffer.alloc(0));
    }
    switch (step.kind) {
      case 'challenge':
        return this.send(new Element('challenge', { xmlns: NS.sasl }).t(step.data.length ? step.data.toString('base64') : '='));
      case 'failure':
        this.mechanism = null;
        return this.authFailed(step.condition, step.text);
      case 'success': {
        const mechanism = this.mechanism?.name ?? 'unknown';
        this.mechanism = null;
        let local: string;
        try {
          local = prepLocal(step.username);
        } catch {
          return this.authFailed('not-authorized');
        }
        this.username = local;
        this.rt.metrics.logins.inc({ result: 'ok', mechanism });
        const success = new Element('success', { xmlns: NS.sasl });
        if (step.data && step.data.length) success.t(step.data.toString('base64'));
        this.send(success);
        if (this.authTimer) clearTimeout(this.authTimer);
        this.authTimer = null;
        // §6.4.6: the client opens a new stream over the same connection.
        this.state = 'header';
        this.headerSent = false;
        this.parser.reset();
        return;
      }
    }
  }

  private authorizeAs(username: string, authzid: string): boolean {
    try {
      return authzid === `${prepLocal(username)}@${this.domain ?? ''}`;
    } catch {
      return false;
    }
  }

  private authFailed(condition: string, text?: string): void {
    this.rt.metrics.logins.inc({ result: 'failed', mechanism: condition });
    this.saslFailure(condition, text);
    if (++this.authFailures >= MAX_AUTH_FAILURES) this.fail('policy-violation', 'Too many failed authentication attempts');
  }

  // --- resource binding (§7) -------------------------------------------------

  private async beforeBind(el: Element): Promise<void> {
    if (el.name === 'iq') {
      const invalid = validateIq(el);
      if (invalid) return this.sendError(el, invalid);
      const bind = el.getChild('bind', NS.bind);
      if (bind && el.attrs.type === 'set') return this.bind(el, bind);
      // Legacy session before bind is out of order; everything else too.
      return this.sendError(el, new StanzaError('not-allowed', 'Bind a resource first'));
    }
    this.fail('not-authorized', 'Bind a resource first');
  }

  private async bind(iq: Element, bind: Element): Promise<void> {
    const domain = this.domain ?? '';
    const requested = bind.getChildText('resource');
    let resource: string;
    if (requested) {
      try {
        resource = prepResource(requested);
      } catch {
        // §7.7.2.1: a resource that cannot be prepared.
        return this.sendError(iq, new StanzaError('bad-request', 'That resource is not allowed'));
      }
    } else {
      resource = `hyphae-${randomBytes(6).toString('hex')}`; // §7.6: server-generated
    }
    const jid = new JID(this.username ?? '', domain, resource);
    const entry: SessionEntry = {
      resource,
      sessionId: randomBytes(16).toString('hex'),
      node: this.rt.nodeId,
      priority: 0,
      available: false,
      boundAt: Date.now(),
    };
    let replaced: SessionEntry | null;
    try {
      replaced = await this.rt.stores.sessions.bind(jid.toBareString(), entry);
    } catch (err) {
      // Outcome unknown (the store was unreachable): take back whatever may
      // have been written; the client may try binding again.
      this.rt.logger.warn({ err, jid: jid.toString() }, 'bind failed');
      this.rt.stores.sessions.unbind(jid.toBareString(), resource, entry.sessionId).catch(() => undefined);
      return this.sendError(iq, temporaryFailure());
    }
    if (this.state !== 'open') {
      // The connection went away while we were binding: leave no ghost behind.
      this.rt.stores.sessions.unbind(jid.toBareString(), resource, entry.sessionId).catch(() => undefined);
      return;
    }
    this.jid = jid;
    this.entry = entry;
    this.rt.sessionStarted(this);
    // §7.7.2.2: the new session wins; the old one ends with <conflict/>, wherever it is.
    if (replaced && replaced.sessionId !== entry.sessionId) this.rt.closeSession(replaced, 'conflict', 'Replaced by a new connection');
    const res = new Element('bind', { xmlns: NS.bind });
    res.c('jid').t(jid.toString());
    const reply = iqResult(iq, res);
    delete reply.attrs.from;
    this.send(reply);
    this.rt.logger.info({ jid: jid.toString(), conn: this.id, ip: this.remoteAddress }, 'session bound');
  }

  // --- stanzas (§8) -------------------------------------------------------------

  private async onStanza(el: Element): Promise<void> {
    const jid = this.jid;
    if (!jid || !this.entry) return;
    if (!STANZAS.has(el.name)) return this.fail('unsupported-stanza-type', `<${el.name}/> is not a stanza`);
    const xmlns = el.attrs.xmlns as string | undefined;
    if (xmlns !== undefined) {
      if (xmlns !== NS.client) return this.fail('invalid-namespace');
      delete el.attrs.xmlns; // the stream's default namespace; every edge writes stanzas without it
    }
    if (el.name === 'iq') {
      const invalid = validateIq(el);
      if (invalid) return this.sendError(el, invalid);
      // RFC 6121 Appendix E: legacy session establishment is a no-op.
      if (el.attrs.type === 'set' && !el.attrs.to && el.getChild('session', NS.session)) {
        const r = iqResult(el);
        delete r.attrs.from;
        return this.send(r);
      }
      if (el.getChild('bind', NS.bind)) {
        return this.sendError(el, new StanzaError('not-allowed', 'A resource is bound already'));
      }
    }
    // §8.1.2.1: the server stamps (or overrides) 'from' with the full JID.
    el.attrs.from = jid.toString();
    const started = performance.now();
    // One trace id per stanza, carried in bus headers to every service it crosses.
    const routed = await runWithTrace(newTraceId(), () => this.dispatch(el, jid));
    if (routed) this.rt.metrics.routingLatency.observe({ path: el.name }, (performance.now() - started) / 1000);
  }

  /** Hands the stanza on; false when it was refused or failed (answered with an error). */
  private async dispatch(el: Element, jid: JID): Promise<boolean> {
    const entry = this.entry;
    if (!entry) return false;
    // Checked first: the fields would otherwise be built for every stanza.
    if (this.rt.logger.isLevelEnabled('debug')) this.rt.logger.debug({ jid: jid.toString(), kind: el.name, to: el.attrs.to, id: el.attrs.id }, 'stanza in');
    try {
      if (el.name === 'presence') {
        // Presence is the user actor's business (roster service): broadcast,
        // probes, subscriptions, directed presence (RFC 6121 §3, §4).
        if (!el.attrs.to && !this.notePresence(el)) return false;
        await this.rt.toUserActor(jid, 'presence-out', el, entry.sessionId);
      } else if (el.name === 'iq' && isRosterQuery(el)) {
        await this.rt.toUserActor(jid, 'roster-iq', el);
      } else {
        await this.rt.router.route(el, jid);
      }
    } catch (err) {
      // A store or bus outage fails this stanza, not the stream: the sender
      // is told to retry (invariant 2: answered, never silently lost).
      this.rt.logger.warn({ err, jid: jid.toString(), kind: el.name }, 'routing failed');
      this.sendError(el, temporaryFailure());
      return false;
    }
    return true;
  }

  /**
   * Checks the priority of a broadcast presence (RFC 6121 §4.7.2.3) and notes
   * availability on our copy of the entry (the user actor records it in the
   * registry). False when the stanza was refused.
   */
  private notePresence(el: Element): boolean {
    const entry = this.entry;
    if (!entry) return false;
    const type = el.attrs.type as string | undefined;
    if (type !== undefined && type !== 'unavailable') return true;
    const raw = el.getChildText('priority');
    let priority = 0;
    if (raw !== null) {
      const n = Number(raw.trim());
      if (!Number.isInteger(n) || n < -128 || n > 127) {
        this.sendError(el, new StanzaError('bad-request', 'Priority must be an integer from -128 to 127'));
        return false;
      }
      priority = n;
    }
    entry.available = type === undefined;
    if (entry.available) {
      entry.priority = priority;
      // Kept too, so a re-record after a registry outage (rebind) still
      // answers contacts' probes (RFC 6121 §4.3.2).
      entry.presence = el.toString();
    } else {
      delete entry.presence;
    }
    return true;
  }

  /** Re-records this session in the registry (after the registry lost it). */
  async rebind(): Promise<void> {
    const entry = this.entry;
    const jid = this.jid;
    if (!entry || !jid || this.state !== 'open') return;
    const replaced = await this.rt.stores.sessions.bind(jid.toBareString(), entry);
    if (replaced && replaced.sessionId !== entry.sessionId) {
      // Someone bound the resource while we were cut off: they win.
      this.fail('conflict', 'Replaced by a new connection');
    }
  }
}
