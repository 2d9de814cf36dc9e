/**
 * Client side of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677) without
 * channel binding (gs2 header `n,,`), on node:crypto.
 *
 * Usernames and passwords are used as given (no SASLprep): the load tool
 * only makes ASCII accounts. The server's signature is verified.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

export type ScramMechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

const HASH: Record<ScramMechanism, { name: 'sha1' | 'sha256'; len: number }> = {
  'SCRAM-SHA-1': { name: 'sha1', len: 20 },
  'SCRAM-SHA-256': { name: 'sha256', len: 32 },
};

/** RFC 5802 §5.1 saslname: ',' and '=' escaped. */
function saslname(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseAttrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0] as string, part.slice(2));
  }
  return out;
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

function pbkdf2Async(password: string, salt: Buffer, iterations: number, len: number, digest: string): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(password, salt, iterations, len, digest, (err, key) => (err ? reject(err) : resolve(key))));
}

/**
 * SaltedPassword by (mechanism, password, salt, iterations). Real clients
 * keep it (RFC 5802 §5.1 allows caching it), and without it the load tool's
 * own PBKDF2 would dominate its CPU in login storms; the server's share of
 * the work is the same either way.
 */
const saltedCache = new Map<string, Buffer>();

export class ScramClient {
  private readonly hash: { name: 'sha1' | 'sha256'; len: number };
  private readonly clientNonce: string;
  private clientFirstBare = '';
  private serverSignature: Buffer | null = null;

  constructor(
    readonly mechanism: ScramMechanism,
    private readonly username: string,
    private readonly password: string,
    /** For test vectors only. */
    nonce?: string,
  ) {
    this.hash = HASH[mechanism];
    this.clientNonce = nonce ?? randomBytes(18).toString('base64');
  }

  /** client-first-message (to send base64-encoded in `<auth/>`). */
  first(): string {
    this.clientFirstBare = `n=${saslname(this.username)},r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  /** client-final-message for the server-first-message (decoded `<challenge/>`). */
  async final(serverFirst: string): Promise<string> {
    const a = parseAttrs(serverFirst);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (a.has('m')) throw new Error('SCRAM: server requires an unsupported extension');
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) throw new Error('SCRAM: bad server nonce');
    if (!salt) throw new Error('SCRAM: no salt');
    if (!Number.isInteger(iterations) || iterations < 1) throw new Error('SCRAM: bad iteration count');
    const { name, len } = this.hash;
    const cacheKey = `${name}\0${this.password}\0${salt}\0${iterations}`;
    let salted = saltedCache.get(cacheKey);
    if (!salted) {
      salted = await pbkdf2Async(this.password, Buffer.from(salt, 'base64'), iterations, len, name);
      if (saltedCache.size > 50_000) saltedCache.clear();
      saltedCache.set(cacheKey, salted);
    }
    const clientKey = createHmac(name, salted).update('Client Key').digest();
    const storedKey = createHash(name).update(clientKey).digest();
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = createHmac(name, storedKey).update(authMessage).digest();
    const serverKey = createHmac(name, salted).update('Server Key').digest();
    this.serverSignature = createHmac(name, serverKey).update(authMessage).digest();
    return `${withoutProof},p=${xor(clientKey, clientSignature).toString('base64')}`;
  }

  /** Checks the server-final-message (decoded `<success/>` data). */
  verify(serverFinal: string): void {
    const a = parseAttrs(serverFinal);
    const e = a.get('e');
    if (e) throw new Error(`SCRAM: server error ${e}`);
    const v = a.get('v');
    if (!v || !this.serverSignature) throw new Error('SCRAM: no server signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.serverSignature.length || !timingSafeEqual(got, this.serverSignature)) {
      throw new Error('SCRAM: the server signature does not verify (wrong server or a man in the middle)');
    }
  }
}
