/**
 * Server side of PLAIN (RFC 4616): one message `[authzid] NUL authcid NUL
 * passwd`, checked against the account's stored SCRAM keys (the server never
 * holds the password itself). Only to be offered over TLS (RFC 6120 §13.8).
 */
import { randomBytes } from 'node:crypto';
import { CredentialFormatError, DEFAULT_ITERATIONS, verifyPassword } from './credentials.js';
import { saslPrep } from './saslprep.js';
import type { Credentials, MechanismOptions, SaslMechanismServer, SaslStep } from './types.js';
import { decodeUtf8, fail } from './util.js';

type Phase = 'initial' | 'await-response' | 'busy' | 'done';

export class PlainServer implements SaslMechanismServer {
  readonly name = 'PLAIN' as const;
  private phase: Phase = 'initial';

  constructor(private readonly opts: MechanismOptions) {}

  async start(initial: Buffer | null): Promise<SaslStep> {
    if (this.phase !== 'initial') return this.abort('start() called twice');
    // PLAIN is client-first: with no initial response (or an empty one) the
    // server sends an empty challenge and the message comes as the response
    // (RFC 4422 §5, RFC 6120 §6.4.2).
    if (initial === null || initial.length === 0) {
      this.phase = 'await-response';
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    return this.run(initial);
  }

  async step(response: Buffer): Promise<SaslStep> {
    if (this.phase !== 'await-response') return this.abort('unexpected response at this point of the exchange');
    return this.run(response);
  }

  private abort(text: string): SaslStep {
    this.phase = 'done';
    return fail('malformed-request', text);
  }

  private async run(msg: Buffer): Promise<SaslStep> {
    // PLAIN is a single round: whatever the outcome, the exchange is over.
    this.phase = 'busy';
    try {
      return await this.verify(msg);
    } catch {
      return fail('temporary-auth-failure');
    } finally {
      this.phase = 'done';
    }
  }

  private async verify(buf: Buffer): Promise<SaslStep> {
    // message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 §2); none
    // of the fields may hold NUL, so exactly two NULs, authcid and passwd
    // non-empty (1*SAFE); authzid may be empty.
    const msg = decodeUtf8(buf);
    if (msg === null) return fail('malformed-request', 'not UTF-8 or too long');
    const fields = msg.split('\0');
    if (fields.length !== 3) return fail('malformed-request', 'expected [authzid] NUL authcid NUL passwd');
    const [authzid = '', rawAuthcid = '', passwd = ''] = fields;
    if (rawAuthcid.length === 0 || passwd.length === 0) return fail('malformed-request', 'empty authcid or password');

    // "If preparation fails or results in an empty string, verification SHALL
    // fail" (RFC 4616 §2). No account can bear an unpreparable name, so this
    // early answer leaks nothing.
    let authcid: string;
    try {
      authcid = saslPrep(rawAuthcid, { stored: false });
    } catch {
      return fail('not-authorized');
    }

    let creds: Credentials | null;
    try {
      creds = await this.opts.lookup(authcid);
    } catch {
      return fail('temporary-auth-failure');
    }

    let ok: boolean;
    try {
      // An unknown user costs the same PBKDF2 as a known one, so response time
      // does not tell whether the account exists.
      ok = await verifyPassword(passwd, creds ?? this.standIn());
      if (!creds) ok = false;
    } catch (err) {
      if (err instanceof CredentialFormatError) return fail('temporary-auth-failure');
      throw err;
    }
    if (!ok) return fail('not-authorized');

    // The authzid is not prepared here: it is a JID in XMPP and the
    // authorize callback applies its own rules (RFC 6120 §6.3.8).
    if (authzid !== '') {
      if (!(this.opts.authorize?.(authcid, authzid) ?? false)) return fail('invalid-authzid');
      return { kind: 'success', username: authcid, authzid };
    }
    return { kind: 'success', username: authcid };
  }

  /** A throwaway record with random keys: verifying against it does the same work and always fails. */
  private standIn(): Credentials {
    return {
      'SCRAM-SHA-256': {
        salt: randomBytes(16).toString('base64'),
        iterations: this.opts.unknownUserIterations ?? DEFAULT_ITERATIONS,
        storedKey: randomBytes(32).toString('base64'),
        serverKey: randomBytes(32).toString('base64'),
      },
    };
  }
}
