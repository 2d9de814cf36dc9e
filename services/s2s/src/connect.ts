/**
 * Opening a stream to a remote domain as the initiating server: finding the
 * peer (RFC 6120 §3.2, XEP-0368), connecting to each candidate in turn, and
 * negotiating TLS (§5) and authentication — SASL EXTERNAL when the peer's
 * certificate checks out and it offers the mechanism (XEP-0178), otherwise
 * Server Dialback (XEP-0220), also after a failed EXTERNAL on the same stream.
 * The same negotiation, stopped after TLS, carries dialback verification
 * requests to an authoritative server (verify.ts). Every address a remote
 * domain resolves to passes the address policy (address-policy.ts) before
 * anything connects to it.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Resolver, lookup } from 'node:dns/promises';
import { Element } from 'ltx';
import { NS } from '@hyphae/stanza';
import { dialbackKey } from '@hyphae/pki';
import type { ServerCandidate } from '@hyphae/dns';
import { Link, NS_DIALBACK_FEATURE, isDialback } from './link.js';
import type { S2sContext } from './context.js';
import { AddressPolicy, isIpLiteralDomain } from './address-policy.js';

/** Why a stream could not be set up; `reason` is a metric label. */
export class ConnectError extends Error {
  constructor(
    readonly reason: 'dns' | 'connect' | 'tls' | 'stream' | 'auth' | 'timeout' | 'policy' | 'address',
    message: string,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

type Event = { kind: 'header'; name: string; attrs: Record<string, string> } | { kind: 'element'; el: Element } | { kind: 'closed'; reason: string };

/** What arrives on a stream being negotiated, awaited one event at a time. */
export class Inbox {
  private readonly items: Event[] = [];
  private readonly waiters: Array<(e: Event) => void> = [];
  private ended: Event | null = null;
  private sink: ((e: Event) => void) | null = null;

  /** Once negotiation is over: what arrives goes to `sink` (what is waiting already, first). */
  redirect(sink: (e: Event) => void): void {
    this.sink = sink;
    for (const e of this.items.splice(0)) sink(e);
    if (this.ended && !this.items.length) sink(this.ended);
  }

  push(e: Event): void {
    if (this.sink) return this.sink(e);
    if (this.ended) return;
    if (e.kind === 'closed') this.ended = e;
    const w = this.waiters.shift();
    if (w) w(e);
    else this.items.push(e);
    if (e.kind === 'closed') for (const rest of this.waiters.splice(0)) rest(e);
  }

  next(): Promise<Event> {
    const e = this.items.shift();
    if (e) return Promise.resolve(e);
    if (this.ended) return Promise.resolve(this.ended);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async header(): Promise<Record<string, string>> {
    const e = await this.next();
    if (e.kind === 'closed') throw new ConnectError('stream', `connection closed: ${e.reason}`);
    if (e.kind !== 'header') throw new ConnectError('stream', `expected a stream header, got <${e.el.name}/>`);
    if (e.name !== 'stream:stream' || e.attrs['xmlns:stream'] !== NS.stream) throw new ConnectError('stream', 'not an XMPP stream');
    if (e.attrs.xmlns !== NS.server) throw new ConnectError('stream', `wrong content namespace ${e.attrs.xmlns ?? '(none)'}`);
    if (!/^1\.\d+$/.test(e.attrs.version ?? '')) throw new ConnectError('stream', 'the peer does not speak XMPP 1.0');
    return e.attrs;
  }

  async element(): Promise<Element> {
    const e = await this.next();
    if (e.kind === 'closed') throw new ConnectError('stream', `connection closed: ${e.reason}`);
    if (e.kind === 'header') throw new ConnectError('stream', 'unexpected stream header');
    if (e.el.name === 'stream:error') {
      const cond = e.el.getChildElements()[0]?.name ?? 'undefined-condition';
      throw new ConnectError(cond === 'connection-timeout' ? 'timeout' : 'stream', `stream error from the peer: ${cond}`);
    }
    return e.el;
  }
}

export type AuthMethod = 'external' | 'dialback';

export interface OpenStream {
  link: Link;
  inbox: Inbox;
  /** The stream id the peer gave (dialback keys are bound to it). */
  streamId: string;
  features: Element;
  candidate: ServerCandidate;
  /** Whether the peer's certificate authenticates the remote domain. */
  certOk: boolean;
}

async function addressesOf(ctx: S2sContext, host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  if (ctx.s2s.dnsServers.length === 0) {
    // The system resolver (and /etc/hosts), as net.connect would ask it: here, so each address is checked first.
    const found = await lookup(host, { all: true, verbatim: true }).catch(() => []);
    if (found.length === 0) throw new ConnectError('dns', `no address for ${host}`);
    return found.map((a) => a.address);
  }
  const r = new Resolver({ timeout: Math.min(5000, ctx.s2s.connectTimeoutMs), tries: 1 });
  r.setServers(ctx.s2s.dnsServers);
  const [v4, v6] = await Promise.all([r.resolve4(host).catch(() => []), r.resolve6(host).catch(() => [])]);
  const all = [...v4, ...v6];
  if (all.length === 0) throw new ConnectError('dns', `no address for ${host}`);
  return all;
}

function tcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ConnectError('timeout', `connecting to ${host}:${port} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(new ConnectError('connect', `${host}:${port}: ${err.message}`));
    });
  });
}

function directTls(ctx: S2sContext, host: string, port: number, remote: string, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port, ...ctx.trust.clientOptions(remote, true) });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ConnectError('timeout', `direct TLS to ${host}:${port} timed out`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(new ConnectError('tls', `${host}:${port}: ${err.message}`));
    });
  });
}

const policies = new WeakMap<S2sContext['s2s'], AddressPolicy>();

/** The candidate's addresses the policy lets us connect to (all of a static route's); none: ConnectError 'address'. */
async function permittedAddresses(ctx: S2sContext, remote: string, cand: ServerCandidate): Promise<string[]> {
  const all = await addressesOf(ctx, cand.host);
  if (cand.source === 'static') return all;
  let policy = policies.get(ctx.s2s);
  if (!policy) policies.set(ctx.s2s, (policy = AddressPolicy.of(ctx.s2s)));
  const refused: string[] = [];
  const ok = all.filter((a) => {
    const v = policy.check(a);
    if (!v.ok) refused.push(`${a} (${v.range})`);
    return v.ok;
  });
  if (refused.length > 0) ctx.logger.warn({ remote, host: cand.host, refused }, 's2s: refused to connect to addresses of a remote domain (s2s.allowedAddresses, s2s.refusePrivateAddresses)');
  if (ok.length === 0) throw new ConnectError('address', `${cand.host} has no address we may connect to (refused: ${refused.join(', ')})`);
  return ok;
}

/**
 * Connects to one candidate and negotiates up to (not including)
 * authentication: header, features, STARTTLS, the restarted stream.
 */
async function openOne(ctx: S2sContext, local: string, remote: string, cand: ServerCandidate): Promise<OpenStream> {
  const timeoutMs = ctx.s2s.connectTimeoutMs;
  let socket: Socket | null = null;
  let lastErr: unknown = null;
  for (const addr of await permittedAddresses(ctx, remote, cand)) {
    try {
      socket = cand.directTls ? await directTls(ctx, addr, cand.port, remote, timeoutMs) : await tcp(addr, cand.port, timeoutMs);
      break;
    } catch (err) {
      lastErr = err;
    }
  }
  if (!socket) throw lastErr instanceof ConnectError ? lastErr : new ConnectError('connect', String(lastErr));
  const inbox = new Inbox();
  const link = new Link(socket, ctx.limits, {
    onHeader: (name, attrs) => inbox.push({ kind: 'header', name, attrs }),
    onElement: (el) => inbox.push({ kind: 'element', el }),
    onClosed: (reason) => inbox.push({ kind: 'closed', reason }),
  }, ctx.logger);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    link.destroy('negotiation timed out');
  }, timeoutMs);
  try {
    link.sendHeader({ from: local, to: remote });
    let header = await inbox.header();
    let features = await inbox.element();
    if (!link.secure) {
      if (features.getChild('starttls', NS.tls)) {
        link.send(new Element('starttls', { xmlns: NS.tls }));
        const answer = await inbox.element();
        if (answer.name !== 'proceed') throw new ConnectError('tls', 'the peer refused STARTTLS');
        try {
          await link.startTlsClient(ctx.trust.clientOptions(remote, false));
        } catch (err) {
          throw new ConnectError('tls', `TLS handshake failed: ${(err as Error).message}`);
        }
        link.sendHeader({ from: local, to: remote });
        header = await inbox.header();
        features = await inbox.element();
      } else if (ctx.s2s.requireTls) {
        throw new ConnectError('policy', 'the peer does not offer STARTTLS and TLS is required');
      }
    }
    if (features.name !== 'stream:features') throw new ConnectError('stream', `expected stream features, got <${features.name}/>`);
    const check = link.secure ? ctx.trust.checkPeer(link.socket as TLSSocket, remote, 'out', cand.directTls) : { ok: false as const, reason: 'no TLS' };
    if (!check.ok) ctx.logger.debug({ remote, reason: check.reason }, 's2s: peer certificate does not authenticate the domain');
    return { link, inbox, streamId: header.id ?? '', features, candidate: cand, certOk: check.ok };
  } catch (err) {
    link.destroy('negotiation failed');
    if (timedOut) throw new ConnectError('timeout', `${cand.host}:${cand.port} did not complete the stream negotiation in ${timeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Tries the candidates in order (RFC 6120 §3.2.1: the next on failure). */
export async function openStream(ctx: S2sContext, local: string, remote: string): Promise<OpenStream> {
  let candidates: ServerCandidate[];
  try {
    candidates = await ctx.resolve(remote);
  } catch (err) {
    throw new ConnectError('dns', `cannot resolve ${remote}: ${(err as Error).message}`);
  }
  if (candidates.length === 0) throw new ConnectError('dns', `${remote} does not offer federation`);
  if (isIpLiteralDomain(remote) && !ctx.s2s.allowIpLiteralDomains && candidates.some((c) => c.source !== 'static')) {
    throw new ConnectError('address', `${remote} is an IP address (s2s.allowIpLiteralDomains is off)`);
  }
  let last: unknown = null;
  for (const cand of candidates) {
    try {
      return await openOne(ctx, local, remote, cand);
    } catch (err) {
      last = err;
      ctx.logger.debug({ err, remote, host: cand.host, port: cand.port }, 's2s: candidate failed');
    }
  }
  throw last instanceof ConnectError ? last : new ConnectError('connect', String(last));
}

function offersDialback(features: Element): boolean {
  return features.getChild('dialback', NS_DIALBACK_FEATURE) !== undefined;
}

function offersExternal(features: Element): boolean {
  const mechs = features.getChild('mechanisms', NS.sasl);
  return mechs?.getChildren('mechanism').some((m) => m.getText().trim() === 'EXTERNAL') ?? false;
}

/**
 * Authenticates the open stream for the pair (local, remote). Resolves with
 * the method used; the stream is then ready for stanzas.
 */
export async function authenticate(ctx: S2sContext, open: OpenStream, local: string, remote: string): Promise<AuthMethod> {
  const { link, inbox } = open;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    link.destroy('authentication timed out');
  }, ctx.s2s.connectTimeoutMs);
  try {
    const { features, streamId } = open;
    if (open.certOk && offersExternal(features)) {
      // XEP-0178 §3: the authorization identity is our domain.
      link.send(new Element('auth', { xmlns: NS.sasl, mechanism: 'EXTERNAL' }).t(Buffer.from(local).toString('base64')));
      const answer = await inbox.element();
      if (answer.name === 'success') {
        link.restart();
        link.sendHeader({ from: local, to: remote });
        await inbox.header();
        await inbox.element(); // the (empty) features of the authenticated stream
        return 'external';
      }
      ctx.logger.info({ remote, condition: answer.getChildElements()[0]?.name }, 's2s: SASL EXTERNAL refused; trying dialback');
    }
    if (!ctx.s2s.dialback) throw new ConnectError('auth', `cannot authenticate to ${remote}: the certificate is not accepted and dialback is off`);
    // Dialback is announced by the feature (XEP-0220 §2.1); peers that only
    // declare the namespace on their header get it tried anyway.
    if (!offersDialback(features) && !link.secure && ctx.s2s.requireTls) throw new ConnectError('auth', 'no authentication method in common');
    if (streamId === '') throw new ConnectError('stream', 'the peer gave no stream id (dialback needs one)');
    const key = dialbackKey(ctx.dialbackSecret, remote, local, streamId);
    link.send(new Element('db:result', { from: local, to: remote }).t(key));
    for (;;) {
      const el = await inbox.element();
      if (!isDialback(el, 'result')) continue;
      if (el.attrs.from !== remote || el.attrs.to !== local) continue;
      if (el.attrs.type === 'valid') return 'dialback';
      const cond = el.getChild('error')?.getChildElements()[0]?.name;
      throw new ConnectError('auth', `${remote} refused our dialback key${cond ? ` (${cond})` : ''}`);
    }
  } catch (err) {
    if (timedOut) throw new ConnectError('timeout', `${remote} did not complete authentication in ${ctx.s2s.connectTimeoutMs} ms`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
