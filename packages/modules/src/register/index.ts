/**
 * XEP-0077 In-Band Registration: new accounts before authentication (through
 * c2s, which calls preAuth), and password change and cancellation after it.
 * Passwords are turned into SCRAM credentials at once and never stored.
 *
 * A PBKDF2 derivation costs milliseconds of CPU: every refusal that can be
 * decided without one is decided first — the stream's attempt count, the
 * form, a taken username, the per-IP rate limit — so a refused attempt
 * never hashes (XEP-0077 §10 leaves abuse to the server; Prosody and
 * ejabberd also check their limits before creating the account).
 */
import { Element } from 'ltx';
import { BlockList, isIP } from 'node:net';
import { NS, StanzaError, iqResult, errorReply } from '@hyphae/stanza';
import { prepLocal, parseJid, JidError } from '@hyphae/jid';
import { deriveCredentials } from '@hyphae/sasl';
import type { AccountStore } from '@hyphae/store';
import type { RegistrationConfig } from '@hyphae/config';
import { defineModule, type IqRequest, type IqReply, type ModuleInstance, type Routing, type StreamContext } from '@hyphae/module-api';

/** Turns a password into SCRAM credentials (the PBKDF2 derivation): injectable so tests can count the calls. */
export type DeriveCredentials = typeof deriveCredentials;

export interface RegisterOptions {
  accounts: AccountStore;
  config: RegistrationConfig;
  iterations: number;
  /** Ends every session of `bare` on every node with the given stream error. */
  closeSessions(bare: string, condition: 'not-authorized', text: string, routing: Routing): Promise<void>;
  now?: () => number;
  /** Default: @hyphae/sasl's deriveCredentials. */
  derive?: DeriveCredentials;
}

/** What preAuth needs of the stream: the attempt count is kept per stream, and the stream closed past it. */
export type RegistrationStream = Pick<StreamContext, 'close'>;

export interface RegisterInstance extends ModuleInstance {
  /**
   * Handles a jabber:iq:register iq on a stream that is not authenticated
   * yet; `stream` keys the per-stream attempt limit (registration.maxAttemptsPerStream).
   */
  preAuth(iq: Element, domain: string, ip: string, stream: RegistrationStream): Promise<Element>;
}

/** Fixed-window counter per source address, exempting the allowlist. */
class RateLimiter {
  private readonly allow = new BlockList();
  private readonly windows = new Map<string, { start: number; count: number }>();
  constructor(private readonly cfg: RegistrationConfig, private readonly now: () => number) {
    for (const entry of cfg.allowlist) {
      const [addr, bits] = entry.split('/');
      const family = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.allow.addAddress(addr ?? '', family);
      else this.allow.addSubnet(addr ?? '', Number(bits), family);
    }
  }
  private allowed(ip: string): boolean {
    const v4mapped = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    const family = isIP(v4mapped) === 6 ? 'ipv6' : 'ipv4';
    return this.allow.check(v4mapped, family);
  }
  /** Counts one registration; false when over the limit. */
  take(ip: string): boolean {
    if (this.allowed(ip)) return true;
    const t = this.now();
    const windowMs = this.cfg.windowSeconds * 1000;
    let w = this.windows.get(ip);
    if (!w || t - w.start >= windowMs) {
      w = { start: t, count: 0 };
      this.windows.set(ip, w);
      if (this.windows.size > 100_000) this.prune(t, windowMs);
    }
    if (w.count >= this.cfg.maxPerIp) return false;
    w.count++;
    return true;
  }
  private prune(t: number, windowMs: number): void {
    for (const [ip, w] of this.windows) if (t - w.start >= windowMs) this.windows.delete(ip);
  }
}

function fieldsForm(): Element {
  const q = new Element('query', { xmlns: NS.register });
  q.c('instructions').t('Choose a username and password for use with this service.');
  q.c('username');
  q.c('password');
  return q;
}

function readCredentials(q: Element): { username: string; password: string } {
  const username = q.getChildText('username');
  const password = q.getChildText('password');
  // §3.1: required information missing → <not-acceptable/>.
  if (!username || !password) throw new StanzaError('not-acceptable', 'Username and password are required');
  return { username, password };
}

function prepUsername(raw: string): string {
  try {
    return prepLocal(raw);
  } catch (e) {
    if (e instanceof JidError) throw new StanzaError('not-acceptable', 'That username is not allowed');
    throw e;
  }
}

export function registerInstance(opts: RegisterOptions): RegisterInstance {
  const limiter = new RateLimiter(opts.config, opts.now ?? Date.now);
  const derive = opts.derive ?? deriveCredentials;
  /** Registration submissions per stream (the key dies with the stream). */
  const attempts = new WeakMap<RegistrationStream, number>();

  async function credentialsFor(password: string) {
    try {
      return await derive(password, { iterations: opts.iterations });
    } catch {
      throw new StanzaError('not-acceptable', 'That password is not allowed');
    }
  }

  async function create(domain: string, q: Element, ip: string): Promise<void> {
    if (!opts.config.open) throw new StanzaError('not-allowed', 'Registration is closed');
    const { username: raw, password } = readCredentials(q);
    const username = prepUsername(raw);
    // A taken name costs a store read, not a derivation (and no rate-limit token).
    if ((await opts.accounts.get(domain, username)) !== null) throw new StanzaError('conflict', 'That username is taken');
    // Rate-limit attempts that would create an account, before the hashing they would cost.
    if (!limiter.take(ip)) throw new StanzaError('resource-constraint', 'Too many registrations from your address; try later', { type: 'wait' });
    const credentials = await credentialsFor(password);
    const created = await opts.accounts.create({ username, domain, credentials, createdAt: Date.now() });
    if (!created) throw new StanzaError('conflict', 'That username is taken');
  }

  /**
   * Counts a submission on `stream`; past the limit it is refused with
   * <policy-violation/> (RFC 6120 §8.3.3.12) and the stream is then closed
   * with the stream error of the same name (§4.9.3.14): a client that keeps
   * trying must at least pay for a new connection, which the per-IP
   * connection limit counts.
   */
  function overLimit(stream: RegistrationStream): boolean {
    const n = (attempts.get(stream) ?? 0) + 1;
    attempts.set(stream, n);
    if (n <= opts.config.maxAttemptsPerStream) return false;
    // After c2s has written the error reply (it does so when preAuth resolves).
    setImmediate(() => stream.close('policy-violation', 'Too many registration attempts on this stream'));
    return true;
  }

  async function authenticated(req: IqRequest): Promise<Element | null | IqReply> {
    const { iq, payload, from, to } = req;
    if (to.domain !== from.domain || (to.local !== '' && to.local !== from.local)) {
      throw new StanzaError('not-allowed', 'You can only manage your own account');
    }
    if (iq.attrs.type === 'get') {
      const q = new Element('query', { xmlns: NS.register });
      q.c('registered');
      q.c('username').t(from.local);
      q.c('password');
      return q;
    }
    if (payload.getChild('remove')) {
      // §3.2: cancel; then every session of the account ends.
      const bare = from.toBareString();
      const deleted = await opts.accounts.delete(from.domain, from.local);
      if (!deleted) throw new StanzaError('item-not-found');
      return { payload: null, after: () => opts.closeSessions(bare, 'not-authorized', 'Account deleted', req.routing) };
    }
    // §3.3: password change; the username must be the account's own.
    const { username: raw, password } = readCredentials(payload);
    if (prepUsername(raw) !== from.local) throw new StanzaError('not-allowed', 'You can only change your own password');
    const credentials = await credentialsFor(password);
    const ok = await opts.accounts.setCredentials(from.domain, from.local, credentials);
    if (!ok) throw new StanzaError('item-not-found');
    return null;
  }

  const preAuth = async (iq: Element, domain: string, ip: string, stream: RegistrationStream): Promise<Element> => {
    const q = iq.getChild('query', NS.register);
    try {
      if (!q) throw new StanzaError('bad-request');
      if (iq.attrs.type === 'get') {
        if (!opts.config.open) throw new StanzaError('service-unavailable');
        return iqResult(iq, fieldsForm());
      }
      if (iq.attrs.type !== 'set') throw new StanzaError('bad-request');
      if (overLimit(stream)) throw new StanzaError('policy-violation', 'Too many registration attempts on this stream', { type: 'wait' });
      if (q.getChild('remove')) throw new StanzaError('not-authorized', 'Authenticate first');
      await create(domain, q, ip);
      return iqResult(iq);
    } catch (e) {
      if (e instanceof StanzaError) return errorReply(iq, e);
      throw e;
    }
  };

  return {
    features: { server: [NS.register] },
    // The stream feature (XEP-0077 §4) and the iq before authentication, while registration is open.
    streamFeatures: [{ stage: 'pre-auth', offer: () => (opts.config.open ? new Element('register', { xmlns: NS.registerFeature }) : null) }],
    preAuthIq: [{ xmlns: NS.register, name: 'query', handle: (iq: Element, stream: StreamContext) => preAuth(iq, stream.domain, stream.remoteAddress, stream) }],
    preAuth,
    iq: [
      { target: 'host', type: 'get', xmlns: NS.register, name: 'query', handle: authenticated },
      { target: 'host', type: 'set', xmlns: NS.register, name: 'query', handle: authenticated },
      { target: 'account', type: 'get', xmlns: NS.register, name: 'query', handle: authenticated },
      { target: 'account', type: 'set', xmlns: NS.register, name: 'query', handle: authenticated },
    ],
  };
}

export const register = defineModule({
  name: 'register',
  description: 'In-band registration, password change and account removal',
  specs: [{ spec: 'XEP-0077', version: '2.4' }],
  create: (deps) => registerInstance({
    accounts: deps.stores.accounts,
    config: deps.config.registration,
    iterations: deps.config.c2s.scramIterations,
    // The account is gone: its actor tells its contacts (unavailable) and forgets its roster,
    // offline messages and pending requests — before the sessions close, so their
    // session-end finds nothing left to do.
    closeSessions: async (bare, condition, text, routing) => {
      try {
        await routing.toUserActor(parseJid(bare), 'account-deleted', new Uint8Array(0));
      } catch (err) {
        deps.logger.warn({ err, bare }, 'could not clean up a deleted account');
      }
      await routing.closeSessions(bare, condition, text);
    },
  }),
});
