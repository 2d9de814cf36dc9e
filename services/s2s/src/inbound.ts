/**
 * One inbound server-to-server stream (we are the receiving server):
 * header checks, STARTTLS, SASL EXTERNAL (XEP-0178) for a peer whose
 * certificate authenticates its domain, dialback (XEP-0220) both as the
 * receiving server (<db:result/>, verified with the authoritative server on
 * a separate connection) and as the authoritative one (<db:verify/>), then
 * stanzas: each one's 'from' and 'to' domains must be a pair this stream
 * authenticated (RFC 6120 §4.9.3.9; DESIGN.md invariant 3: the edge checks
 * identity), and it is handed to the local services.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Element } from 'ltx';
import { tryParseJid, prepDomain } from '@hyphae/jid';
import { NS, StreamError } from '@hyphae/stanza';
import { dialbackKey, guardHandshake } from '@hyphae/pki';
import { Link, NS_DIALBACK_FEATURE, isDialback, newStreamId } from './link.js';
import { verifyKey } from './verify.js';
import type { S2sContext } from './context.js';

const STANZAS = new Set(['message', 'presence', 'iq']);
const INBOUND_PRESENCE = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe']);
const enc = new TextEncoder();

/** Inbound streams per remote domain on this instance (maxInboundPerDomain). */
export class InboundCounts {
  private readonly counts = new Map<string, number>();
  add(domain: string): number {
    const n = (this.counts.get(domain) ?? 0) + 1;
    this.counts.set(domain, n);
    return n;
  }
  remove(domain: string): void {
    const n = (this.counts.get(domain) ?? 1) - 1;
    if (n <= 0) this.counts.delete(domain);
    else this.counts.set(domain, n);
  }
}

function dialbackError(name: 'result' | 'verify', attrs: Record<string, string>, condition: string): Element {
  const el = new Element(`db:${name}`, { ...attrs, type: 'error' });
  el.c('error', { type: 'cancel' }).c(condition, { xmlns: NS.stanzas });
  return el;
}

function keysEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class InboundStream {
  private readonly link: Link;
  private streamId = newStreamId();
  /** Our domain the peer addressed (stream header 'to'). */
  private local: string | null = null;
  /** The peer's claimed domain (stream header 'from'), if given. */
  private peer: string | null = null;
  private saslDone = false;
  /** Authenticated pairs `${remote} ${local}`. */
  private readonly pairs = new Set<string>();
  /** Remote domains counted in InboundCounts for this stream. */
  private readonly counted = new Set<string>();
  private readonly authTimer: NodeJS.Timeout;
  private readonly idleTimer: NodeJS.Timeout;
  private tokens: number;
  private lastRefill = performance.now();
  private paused = false;
  private closed = false;

  /**
   * `socket` is the raw TCP connection as accepted, on either port: on the
   * direct-TLS port it is wrapped here, so the connection exists (and is
   * counted) from accept, not from the end of a handshake that may never come.
   */
  constructor(
    private readonly ctx: S2sContext,
    socket: Socket,
    private readonly counts: InboundCounts,
    readonly transport: 'tcp' | 'tls',
  ) {
    this.tokens = ctx.s2s.maxStanzasPerSecond * 2;
    if (transport === 'tls') socket = this.guarded(new TLSSocket(socket, ctx.trust.inboundSocketOptions(true)), 'tls');
    this.link = new Link(socket, ctx.limits, {
      onHeader: (name, attrs) => this.onHeader(name, attrs),
      onElement: (el) => this.onElement(el),
      onClosed: (reason) => this.onClosed(reason),
    }, ctx.logger);
    // Neither authentication nor silence may hold a connection forever (RFC 6120 §13.12).
    this.authTimer = setTimeout(() => this.fail('connection-timeout', 'Authentication took too long'), ctx.s2s.connectTimeoutMs * 3);
    this.idleTimer = setTimeout(() => this.link.close('idle'), ctx.s2s.idleTimeoutMs);
    this.authTimer.unref();
    this.idleTimer.unref();
  }

  /** The TLS socket, closed if its handshake does not finish within tls.handshakeTimeoutMs. */
  private guarded(tls: TLSSocket, kind: 'tls' | 'starttls'): TLSSocket {
    guardHandshake(tls, this.ctx.config.tls.handshakeTimeoutMs, (reason, err) => {
      this.ctx.metrics.tlsHandshakeFailures.inc({ listener: `s2s-${kind}`, reason });
      this.ctx.logger.debug({ err, reason, kind, peer: this.peer }, 's2s: inbound TLS handshake failed');
    });
    return tls;
  }

  /** Ends the stream at once with a stream error (a limit of the listener). */
  refuse(condition: ConstructorParameters<typeof StreamError>[0], text: string): void {
    this.fail(condition, text);
  }

  private fail(condition: ConstructorParameters<typeof StreamError>[0], text?: string): void {
    this.ctx.metrics.s2sFailures.inc({ direction: 'in', reason: condition });
    this.ctx.logger.info({ peer: this.peer, local: this.local, condition, text }, 's2s: inbound stream error');
    this.link.fail(new StreamError(condition, text), { ...(this.local ? { from: this.local } : {}), id: this.streamId });
  }

  private onClosed(_reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.authTimer);
    clearTimeout(this.idleTimer);
    for (const d of this.counted) {
      this.counts.remove(d);
      this.ctx.metrics.s2sStreams.dec({ direction: 'in', remote: d });
    }
    this.counted.clear();
  }

  // --- stream header (RFC 6120 §4.7) -----------------------------------------

  private onHeader(name: string, attrs: Record<string, string>): void {
    if (name !== 'stream:stream') return this.fail(name.endsWith(':stream') ? 'bad-namespace-prefix' : 'invalid-namespace');
    if (attrs['xmlns:stream'] !== NS.stream) return this.fail('invalid-namespace');
    if (attrs.xmlns !== NS.server) return this.fail('invalid-namespace', 'This port serves jabber:server');
    let to: string | null = null;
    try {
      to = attrs.to ? prepDomain(attrs.to) : null;
    } catch {
      to = null;
    }
    // §4.7.1: the receiving server must know which domain is asked for.
    if (!to || !this.ctx.served(to)) return this.fail('host-unknown', 'This server does not serve that domain');
    if (this.local !== null && this.local !== to) return this.fail('not-authorized', "The 'to' address must stay the same across stream restarts");
    this.local = to;
    let from: string | null = null;
    if (attrs.from) {
      try {
        from = prepDomain(attrs.from);
      } catch {
        return this.fail('invalid-from', 'Not a domain');
      }
      if (this.ctx.blocked(from)) return this.fail('policy-violation', 'Federation with this domain is not allowed');
    }
    this.peer = from;
    if (!/^1\.\d+$/.test(attrs.version ?? '')) return this.fail('unsupported-version', 'XMPP 1.0 is required');
    this.streamId = newStreamId();
    this.link.sendHeader({ from: to, ...(from ? { to: from } : {}), id: this.streamId });
    this.link.send(this.features());
  }

  private peerCheck(domain: string): { ok: true } | { ok: false; reason: string } {
    if (!this.link.secure) return { ok: false, reason: 'no TLS' };
    return this.ctx.trust.checkPeer(this.link.socket as TLSSocket, domain, 'in', this.transport === 'tls');
  }

  private features(): Element {
    const f = new Element('stream:features');
    const { s2s } = this.ctx;
    if (!this.link.secure) {
      const st = f.c('starttls', { xmlns: NS.tls });
      if (s2s.requireTls) {
        st.c('required');
        return f;
      }
    }
    if (this.saslDone) return f;
    if (this.link.secure && this.peer && this.peerCheck(this.peer).ok) {
      f.c('mechanisms', { xmlns: NS.sasl }).c('mechanism').t('EXTERNAL');
    }
    if (s2s.dialback) f.c('dialback', { xmlns: NS_DIALBACK_FEATURE }).c('errors');
    return f;
  }

  // --- elements ----------------------------------------------------------------

  private async onElement(el: Element): Promise<void> {
    if (this.closed) return;
    this.idleTimer.refresh();
    const xmlns = el.attrs.xmlns as string | undefined;
    if (el.name === 'starttls' && xmlns === NS.tls) {
      if (this.link.secure) return this.fail('policy-violation', 'TLS is already in place');
      this.guarded(this.link.startTlsServer(this.ctx.trust.inboundSocketOptions(false)), 'starttls');
      return;
    }
    if (el.name === 'auth' && xmlns === NS.sasl) return this.external(el);
    if (isDialback(el, 'result')) return this.dialbackResult(el);
    if (isDialback(el, 'verify')) return this.dialbackVerify(el);
    if (STANZAS.has(el.name)) return this.stanza(el);
    return this.fail('unsupported-stanza-type', `<${el.name}/> is not expected here`);
  }

  private saslFailure(condition: string, text?: string): void {
    const f = new Element('failure', { xmlns: NS.sasl });
    f.c(condition);
    if (text) f.c('text').t(text);
    this.link.send(f);
  }

  /** XEP-0178 §3 / RFC 6120 §6.4: SASL EXTERNAL with the peer's certificate. */
  private external(el: Element): void {
    if (!this.link.secure) return this.saslFailure('encryption-required');
    if (this.saslDone) return this.fail('policy-violation', 'Already authenticated');
    if (el.attrs.mechanism !== 'EXTERNAL') return this.saslFailure('invalid-mechanism');
    const text = el.getText().trim();
    let domain = this.peer;
    if (text !== '' && text !== '=') {
      const authzid = Buffer.from(text, 'base64').toString('utf8');
      let prepped: string;
      try {
        prepped = prepDomain(authzid);
      } catch {
        return this.saslFailure('invalid-authzid');
      }
      if (this.peer && prepped !== this.peer) return this.saslFailure('invalid-authzid', 'The authorization identity must be the stream\'s from domain');
      domain = prepped;
    }
    if (!domain || !this.local) return this.saslFailure('not-authorized', 'No domain to authenticate');
    if (this.ctx.blocked(domain)) return this.saslFailure('not-authorized', 'Federation with this domain is not allowed');
    const check = this.peerCheck(domain);
    if (!check.ok) {
      this.ctx.metrics.s2sFailures.inc({ direction: 'in', reason: 'external' });
      // The stream stays open: dialback may follow on it (XEP-0178 §3, as ejabberd expects).
      return this.saslFailure('not-authorized', check.reason);
    }
    if (!this.authorize(domain, this.local, 'external')) return;
    this.saslDone = true;
    this.peer = domain;
    this.link.send(new Element('success', { xmlns: NS.sasl }));
    this.link.restart(); // §6.4.6: the peer restarts the stream
  }

  /** Records an authenticated pair; false (and the stream failed) past the per-domain limit. */
  private authorize(remote: string, local: string, method: 'external' | 'dialback'): boolean {
    if (!this.counted.has(remote)) {
      if (this.counts.add(remote) > this.ctx.s2s.maxInboundPerDomain) {
        this.counts.remove(remote);
        this.fail('policy-violation', 'Too many streams from your domain');
        return false;
      }
      this.counted.add(remote);
      this.ctx.metrics.s2sStreams.inc({ direction: 'in', remote });
    }
    this.pairs.add(`${remote} ${local}`);
    clearTimeout(this.authTimer);
    this.ctx.metrics.s2sAuth.inc({ direction: 'in', method });
    this.ctx.logger.info({ remote, local, method }, 's2s: inbound stream authenticated');
    return true;
  }

  /** XEP-0220 §2.1.2: a dialback key from the originating server. */
  private dialbackResult(el: Element): void {
    const from = el.attrs.from as string | undefined;
    const to = el.attrs.to as string | undefined;
    if (!from || !to) return this.fail('improper-addressing', 'Dialback needs from and to');
    if (el.attrs.type) return; // results are ours to send here, not to receive
    const reply = { from: to, to: from };
    if (!this.ctx.served(to)) return this.link.send(dialbackError('result', reply, 'item-not-found'));
    if (!this.ctx.s2s.dialback) return this.link.send(dialbackError('result', reply, 'not-allowed'));
    if (!this.link.secure && this.ctx.s2s.requireTls) return this.fail('policy-violation', 'TLS is required first');
    let remote: string;
    try {
      remote = prepDomain(from);
    } catch {
      return this.link.send(dialbackError('result', reply, 'jid-malformed'));
    }
    if (this.ctx.blocked(remote)) return this.link.send(dialbackError('result', reply, 'forbidden'));
    const key = el.getText().trim();
    const streamId = this.streamId;
    // Verified off the stream's queue: other pairs and stanzas need not wait for it.
    void (async () => {
      // XEP-0344 §2.2: a certificate that already authenticates the domain makes the round trip unnecessary.
      const outcome = this.peerCheck(remote).ok ? 'valid' : await verifyKey(this.ctx, { receiving: to, originating: remote, streamId, key });
      if (this.closed) return;
      if (outcome === 'error') {
        this.ctx.metrics.s2sFailures.inc({ direction: 'in', reason: 'dialback' });
        return this.link.send(dialbackError('result', reply, 'remote-server-not-found'));
      }
      if (outcome === 'valid' && !this.authorize(remote, to, 'dialback')) return;
      if (outcome === 'invalid') this.ctx.metrics.s2sFailures.inc({ direction: 'in', reason: 'dialback-invalid' });
      this.link.send(new Element('db:result', { ...reply, type: outcome }));
    })().catch((err: unknown) => this.ctx.logger.warn({ err, remote }, 's2s: dialback failed'));
  }

  /** XEP-0220 §2.4: as the authoritative server, is this key one of ours? */
  private dialbackVerify(el: Element): void {
    const from = el.attrs.from as string | undefined; // the receiving server asking
    const to = el.attrs.to as string | undefined; // us, the originating server
    const id = el.attrs.id as string | undefined;
    if (!from || !to || !id) return this.fail('improper-addressing', 'db:verify needs from, to and id');
    const reply = { from: to, to: from, id };
    if (!this.ctx.served(to)) return this.link.send(dialbackError('verify', reply, 'item-not-found'));
    const expected = dialbackKey(this.ctx.dialbackSecret, from, to, id);
    const valid = keysEqual(expected, el.getText().trim());
    this.link.send(new Element('db:verify', { ...reply, type: valid ? 'valid' : 'invalid' }));
  }

  // --- stanzas -------------------------------------------------------------------

  private async stanza(el: Element): Promise<void> {
    // §4.9.3.12: nothing but negotiation before the stream is authenticated.
    if (this.pairs.size === 0) return this.fail('not-authorized', 'Authenticate first');
    const fromAttr = el.attrs.from as string | undefined;
    const toAttr = el.attrs.to as string | undefined;
    // RFC 6120 §8.1.1.2 / §8.1.2.2: both are required on server-to-server streams.
    if (!fromAttr || !toAttr) return this.fail('improper-addressing', "Stanzas need 'from' and 'to'");
    const from = tryParseJid(fromAttr);
    if (!from) return this.fail('invalid-from', "Malformed 'from'");
    const to = tryParseJid(toAttr);
    if (!to) return this.fail('improper-addressing', "Malformed 'to'");
    if (!this.ctx.served(to.domain)) return this.fail('host-unknown', `${to.domain} is not served here`);
    // §4.9.3.9: a 'from' this stream did not authenticate (for that 'to').
    if (!this.pairs.has(`${from.domain} ${to.domain}`)) return this.fail('invalid-from', `${from.domain} is not authenticated on this stream`);
    this.throttle();
    this.ctx.metrics.stanzas.inc({ direction: 'in', kind: el.name });
    // §4.8.3: the content namespace is the receiving stream's business.
    if (el.attrs.xmlns === NS.server) delete el.attrs.xmlns;
    const type = el.attrs.type as string | undefined;
    if (el.name === 'presence' && type && INBOUND_PRESENCE.has(type) && to.local !== '' && this.ctx.config.domains.includes(to.domain)) {
      // Subscriptions and probes are the user's actor's (RFC 6121 §3, §4.3).
      await this.ctx.actors.send(to.bare(), 'presence-in', enc.encode(el.toString()));
      return;
    }
    await this.ctx.router.route(el, from);
  }

  /** maxStanzasPerSecond: a token bucket; reading pauses while it is empty. */
  private throttle(): void {
    const rate = this.ctx.s2s.maxStanzasPerSecond;
    if (rate === 0) return;
    const now = performance.now();
    this.tokens = Math.min(rate * 2, this.tokens + ((now - this.lastRefill) / 1000) * rate);
    this.lastRefill = now;
    this.tokens -= 1;
    // One pause at a time: it lasts until the bucket is back above zero.
    if (this.tokens < 0 && !this.paused) {
      this.paused = true;
      this.link.pauseFor(Math.ceil((-this.tokens / rate) * 1000), () => (this.paused = false));
    }
  }
}
