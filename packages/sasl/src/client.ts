/**
 * A minimal client side of SCRAM (RFC 5802) and PLAIN (RFC 4616), for tests
 * of this package and of the services that use it (c2s, end-to-end suites).
 * Not meant for production clients: it does no channel binding.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SCRAM_HASH, hash, hmac, saltedPassword, type ScramMechanismName } from './credentials.js';
import { saslPrep } from './saslprep.js';
import { escapeSaslName } from './scram.js';

/** Thrown by the test client when the server's message is not acceptable. */
export class ScramClientError extends Error {
  override readonly name = 'ScramClientError';
}

export interface ScramClientOptions {
  authzid?: string;
  /** Fixed client nonce (printable ASCII without ','); default: random. */
  clientNonce?: string;
  /** gs2-cbind-flag; default 'n' (RFC 5802 §7). */
  cbindFlag?: 'n' | 'y';
}

export interface ScramClient {
  /** client-first-message (gs2 header + bare). */
  readonly first: Buffer;
  /** Computes client-final-message from server-first-message. */
  final(serverFirst: Buffer): Promise<Buffer>;
  /** Checks server-final-message (`v=…`); false on a wrong signature or an `e=` error. */
  verifyServerFinal(data: Buffer): boolean;
}

export function createScramClient(
  mech: ScramMechanismName, username: string, password: string, opts: ScramClientOptions = {},
): ScramClient {
  const cnonce = opts.clientNonce ?? randomBytes(18).toString('base64');
  const gs2Header = `${opts.cbindFlag ?? 'n'},${opts.authzid ? `a=${escapeSaslName(opts.authzid)}` : ''},`;
  const bare = `n=${escapeSaslName(saslPrep(username, { stored: false }))},r=${cnonce}`;
  let serverSignature: Buffer | undefined;
  return {
    first: Buffer.from(gs2Header + bare, 'utf8'),
    async final(serverFirstBuf: Buffer): Promise<Buffer> {
      const serverFirst = serverFirstBuf.toString('utf8');
      const attrs = new Map<string, string>();
      for (const part of serverFirst.split(',')) attrs.set(part.slice(0, 1), part.slice(2));
      const nonce = attrs.get('r');
      const salt = attrs.get('s');
      const iterations = Number(attrs.get('i'));
      if (!nonce || !nonce.startsWith(cnonce) || nonce === cnonce || !salt || !Number.isSafeInteger(iterations)) {
        throw new ScramClientError(`bad server-first-message: ${serverFirst}`);
      }
      const salted = await saltedPassword(mech, saslPrep(password, { stored: false }), Buffer.from(salt, 'base64'), iterations);
      const clientKey = hmac(mech, salted, 'Client Key');
      const withoutProof = `c=${Buffer.from(gs2Header, 'utf8').toString('base64')},r=${nonce}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const clientSignature = hmac(mech, hash(mech, clientKey), authMessage);
      const proof = Buffer.alloc(SCRAM_HASH[mech].size);
      for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] ?? 0) ^ (clientSignature[i] ?? 0);
      serverSignature = hmac(mech, hmac(mech, salted, 'Server Key'), authMessage);
      return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
    },
    verifyServerFinal(data: Buffer): boolean {
      const text = data.toString('utf8');
      if (!serverSignature || !text.startsWith('v=')) return false;
      const v = Buffer.from(text.slice(2).split(',')[0] ?? '', 'base64');
      return v.length === serverSignature.length && timingSafeEqual(v, serverSignature);
    },
  };
}

/** PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616 §2). */
export function plainMessage(authcid: string, password: string, authzid = ''): Buffer {
  return Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8');
}
