/**
 * Server side of SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), without
 * channel binding: the -PLUS variants are not offered, so a client's gs2 flag
 * may be "n" or "y" but never "p=" (RFC 5802 §6).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  DEFAULT_ITERATIONS, SALT_BYTES, SCRAM_HASH, decodeCredential, hash, hmac, isBase64,
  type DecodedCredential, type ScramMechanismName,
} from './credentials.js';
import { saslPrep } from './saslprep.js';
import type { Credentials, MechanismOptions, SaslMechanismServer, SaslStep } from './types.js';
import { decodeUtf8, fail } from './util.js';

/** Test-only knobs (not exported from the package entry point). */
export interface ScramHooks {
  /** Replaces the random server nonce; must be printable ASCII without ',' (RFC 5802 §7). */
  serverNonce?: () => string;
}

/** `printable` of RFC 5802 §7: %x21-2B / %x2D-7E, i.e. visible ASCII except ','. */
const PRINTABLE = /^[\x21-\x2B\x2D-\x7E]+$/;
/** `attr-val` of RFC 5802 §7 (ALPHA "=" 1*value-char); ',' already split off, NUL rejected earlier. */
const ATTR_VAL = /^[A-Za-z]=.+$/s;

let processSecret: Buffer | undefined;
/** Per-process key for stand-in salts, made on first use (see MechanismOptions.unknownUserSecret). */
function defaultUnknownUserSecret(): Buffer {
  processSecret ??= randomBytes(32);
  return processSecret;
}

/**
 * Reverses RFC 5802 §5.1 saslname escaping. The RFC: "If the server receives
 * a username that contains '=' not followed by either '2C' or '3D', then the
 * server MUST fail the authentication" — hence null for any other '=' use, and
 * for an empty name (saslname is 1*(…)).
 */
export function unescapeSaslName(s: string): string | null {
  if (s.length === 0) return null;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '=') {
      out += ch;
      continue;
    }
    const code = s.slice(i + 1, i + 3);
    if (code === '2C') out += ',';
    else if (code === '3D') out += '=';
    else return null;
    i += 2;
  }
  return out;
}

/** RFC 5802 §5.1 saslname escaping (',' → "=2C", '=' → "=3D"). */
export function escapeSaslName(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

type State =
  | { phase: 'initial' }
  /** Sent an empty challenge because <auth/> carried no initial response (RFC 6120 §6.4.2). */
  | { phase: 'await-first' }
  | {
      phase: 'await-final';
      gs2Header: string;
      clientFirstBare: string;
      serverFirst: string;
      nonce: string;
      username: string;
      authzid: string | undefined;
      cred: DecodedCredential;
      /** false: unknown user (or no record for this hash); `cred` is a stand-in that must never succeed. */
      known: boolean;
    }
  /** A start/step is running; a second call meanwhile is out of order. */
  | { phase: 'busy' }
  | { phase: 'done' };

function stop(...args: Parameters<typeof fail>): Outcome {
  return { step: fail(...args) };
}

/** What a step answers, and the state to move to when it answers with a challenge. */
interface Outcome {
  step: SaslStep;
  next?: State;
}

export class ScramServer implements SaslMechanismServer {
  readonly name: ScramMechanismName;
  private state: State = { phase: 'initial' };

  constructor(name: ScramMechanismName, private readonly opts: MechanismOptions, private readonly hooks: ScramHooks = {}) {
    this.name = name;
  }

  async start(initial: Buffer | null): Promise<SaslStep> {
    if (this.state.phase !== 'initial') return this.abort('start() called twice');
    // SCRAM is client-first; with no initial response the server sends an
    // empty challenge and the client-first-message arrives as a response
    // (RFC 4422 §5, RFC 6120 §6.4.2). An empty initial response ("=") is
    // treated the same way.
    if (initial === null || initial.length === 0) {
      this.state = { phase: 'await-first' };
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    return this.run(() => this.clientFirst(initial));
  }

  async step(response: Buffer): Promise<SaslStep> {
    const st = this.state;
    if (st.phase === 'await-first') return this.run(() => this.clientFirst(response));
    if (st.phase === 'await-final') return this.run(() => this.clientFinal(response, st));
    return this.abort('unexpected response at this point of the exchange');
  }

  private abort(text: string): SaslStep {
    this.state = { phase: 'done' };
    return fail('malformed-request', text);
  }

  /**
   * Runs one step. Any non-challenge result ends the exchange for good, so a
   * failed or finished exchange can never be resumed or replayed; a call that
   * arrives while a step is still running is out of order and ends it too.
   */
  private async run(fn: () => Promise<Outcome>): Promise<SaslStep> {
    const token: State = { phase: 'busy' };
    this.state = token;
    let out: Outcome;
    try {
      out = await fn();
    } catch {
      out = { step: fail('temporary-auth-failure') };
    }
    if (this.state !== token) return fail('malformed-request', 'concurrent call');
    this.state = out.step.kind === 'challenge' && out.next ? out.next : { phase: 'done' };
    return out.step;
  }

  /** client-first-message (RFC 5802 §5.1, §7) → server-first-message. */
  private async clientFirst(buf: Buffer): Promise<Outcome> {
    const msg = decodeUtf8(buf);
    if (msg === null) return stop('malformed-request', 'not UTF-8 or too long');
    if (msg.includes('\0')) return stop('malformed-request', 'NUL in message');

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const flag = msg.slice(0, 2);
    if (msg.startsWith('p=')) {
      // The client wants channel binding, but only the non-PLUS mechanisms are
      // offered, so it cannot have chosen this one legitimately (RFC 5802 §6).
      return stop('malformed-request', 'channel binding is not supported');
    }
    // "y": the client supports channel binding but thinks we do not — true,
    // since no -PLUS mechanism is advertised, so it is accepted (§6). Were
    // -PLUS ever offered, "y" would have to fail as a downgrade attempt.
    if (flag !== 'n,' && flag !== 'y,') return stop('malformed-request', 'bad gs2 header');
    const authzEnd = msg.indexOf(',', 2);
    if (authzEnd < 0) return stop('malformed-request', 'bad gs2 header');
    const authzField = msg.slice(2, authzEnd);
    let authzid: string | undefined;
    if (authzField.length > 0) {
      if (!authzField.startsWith('a=')) return stop('malformed-request', 'bad gs2 header');
      const a = unescapeSaslName(authzField.slice(2));
      if (a === null) return stop('malformed-request', 'bad authzid escaping');
      authzid = a;
    }
    const gs2Header = msg.slice(0, authzEnd + 1);
    const bare = msg.slice(authzEnd + 1);

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const parts = bare.split(',');
    // "m" is reserved; its presence MUST cause authentication failure (§5.1).
    if (parts.some((p) => p.startsWith('m='))) return stop('malformed-request', 'mandatory extension not supported');
    const [userAttr, nonceAttr, ...exts] = parts;
    if (userAttr === undefined || !userAttr.startsWith('n=')) return stop('malformed-request', 'missing username');
    if (nonceAttr === undefined || !nonceAttr.startsWith('r=')) return stop('malformed-request', 'missing nonce');
    if (!exts.every((e) => ATTR_VAL.test(e))) return stop('malformed-request', 'bad extension');
    const rawName = unescapeSaslName(userAttr.slice(2));
    if (rawName === null) return stop('malformed-request', 'bad username escaping');
    const clientNonce = nonceAttr.slice(2);
    if (!PRINTABLE.test(clientNonce)) return stop('malformed-request', 'bad client nonce');

    // Normalize(username) as a query string (§2.2, §5.1). No account can have
    // a name that fails SASLprep, so failing now reveals nothing about which
    // accounts exist.
    let username: string;
    try {
      username = saslPrep(rawName, { stored: false });
    } catch {
      return stop('not-authorized');
    }

    let creds: Credentials | null;
    try {
      creds = await this.opts.lookup(username);
    } catch {
      return stop('temporary-auth-failure');
    }
    let cred: DecodedCredential | null = null;
    let known = false;
    const record = creds?.[this.name];
    if (record !== undefined) {
      cred = decodeCredential(this.name, record);
      if (cred === null) return stop('temporary-auth-failure');
      known = true;
    } else {
      // Unknown user, or an account without a record for this hash: answer
      // exactly as for a real account and fail only after the proof (§9).
      cred = this.standIn(username);
    }

    const serverNonce = this.hooks.serverNonce?.() ?? randomBytes(18).toString('base64');
    if (!PRINTABLE.test(serverNonce)) throw new Error('server nonce must be printable');
    const nonce = clientNonce + serverNonce;
    const serverFirst = `r=${nonce},s=${cred.saltB64},i=${cred.iterations}`;
    return {
      step: { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') },
      next: { phase: 'await-final', gs2Header, clientFirstBare: bare, serverFirst, nonce, username, authzid, cred, known },
    };
  }

  /**
   * A deterministic stand-in record for an unknown user: the same name always
   * gets the same salt and iteration count, so repeated probes cannot tell it
   * from a real account (RFC 5802 §9). Keys are random: they never verify.
   */
  private standIn(username: string): DecodedCredential {
    const key = this.opts.unknownUserSecret ?? defaultUnknownUserSecret();
    const salt = createHmac('sha256', key).update(`${this.name}\0${username}`).digest().subarray(0, SALT_BYTES);
    const size = SCRAM_HASH[this.name].size;
    return {
      salt,
      saltB64: salt.toString('base64'),
      iterations: this.opts.unknownUserIterations ?? DEFAULT_ITERATIONS,
      storedKey: randomBytes(size),
      serverKey: randomBytes(size),
    };
  }

  /** client-final-message (RFC 5802 §3, §5.1, §7) → success with server-final-message, or failure. */
  private async clientFinal(
    buf: Buffer, st: Extract<State, { phase: 'await-final' }>,
  ): Promise<Outcome> {
    const msg = decodeUtf8(buf);
    if (msg === null) return stop('malformed-request', 'not UTF-8 or too long');
    if (msg.includes('\0')) return stop('malformed-request', 'NUL in message');

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const parts = msg.split(',');
    if (parts.length < 3) return stop('malformed-request', 'missing attributes');
    const cAttr = parts[0] ?? '';
    const rAttr = parts[1] ?? '';
    const pAttr = parts[parts.length - 1] ?? '';
    const exts = parts.slice(2, -1);
    if (!cAttr.startsWith('c=') || !rAttr.startsWith('r=') || !pAttr.startsWith('p=')) {
      return stop('malformed-request', 'missing attributes');
    }
    if (exts.some((e) => e.startsWith('m='))) return stop('malformed-request', 'mandatory extension not supported');
    if (!exts.every((e) => ATTR_VAL.test(e))) return stop('malformed-request', 'bad extension');
    const cbind = cAttr.slice(2);
    const proofB64 = pAttr.slice(2);
    if (!isBase64(cbind) || cbind.length === 0) return stop('malformed-request', 'bad channel binding encoding');
    if (!isBase64(proofB64) || proofB64.length === 0) return stop('malformed-request', 'bad proof encoding');

    // Without channel binding, c= is base64(gs2-header) exactly, e.g. "biws"
    // for "n,,"; this also protects the gs2 flag and authzid from tampering (§6).
    if (cbind !== Buffer.from(st.gs2Header, 'utf8').toString('base64')) {
      return stop('malformed-request', 'channel binding does not match');
    }
    // The nonce must be the combined one from server-first (§5.1).
    if (rAttr.slice(2) !== st.nonce) return stop('malformed-request', 'nonce does not match');
    const proof = Buffer.from(proofB64, 'base64');
    const size = SCRAM_HASH[this.name].size;
    if (proof.length !== size) return stop('malformed-request', 'bad proof length');

    // AuthMessage = client-first-message-bare "," server-first-message ","
    //               client-final-message-without-proof              (§3)
    const withoutProof = parts.slice(0, -1).join(',');
    const authMessage = Buffer.from(`${st.clientFirstBare},${st.serverFirst},${withoutProof}`, 'utf8');
    // ClientSignature = HMAC(StoredKey, AuthMessage); ClientKey = ClientProof
    // XOR ClientSignature; the proof holds iff H(ClientKey) == StoredKey (§3).
    const clientSignature = hmac(this.name, st.cred.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const matches = timingSafeEqual(hash(this.name, clientKey), st.cred.storedKey);
    if (!matches || !st.known) return stop('not-authorized');

    // Authorization only after authentication, so an unauthenticated client
    // learns nothing about authorization policy (RFC 6120 §6.4.6).
    if (st.authzid !== undefined && st.authzid !== '') {
      const ok = this.opts.authorize ? this.opts.authorize(st.username, st.authzid) : false;
      if (!ok) return stop('invalid-authzid');
    }

    // ServerSignature = HMAC(ServerKey, AuthMessage), sent as v= in the
    // additional data with success (§3, RFC 6120 §6.3.10).
    const serverSignature = hmac(this.name, st.cred.serverKey, authMessage);
    const data = Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8');
    return {
      step: st.authzid
        ? { kind: 'success', username: st.username, authzid: st.authzid, data }
        : { kind: 'success', username: st.username, data },
    };
  }
}
