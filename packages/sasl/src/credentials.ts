import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Credentials, ScramCredential } from './types.js';
import { saslPrep, SaslPrepError } from './saslprep.js';

export { SaslPrepError } from './saslprep.js';

export type ScramMechanismName = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

/** Default PBKDF2 iteration count: the minimum RFC 7677 §4 recommends. */
export const DEFAULT_ITERATIONS = 4096;
/** Salt length in bytes. RFC 5802 does not fix one; 16 bytes is what most servers use. */
export const SALT_BYTES = 16;
/** Upper bound on stored iteration counts we are willing to compute (guards against a corrupt record). */
export const MAX_ITERATIONS = 10_000_000;

/** The hash behind each SCRAM mechanism (RFC 5802 §4 SCRAM-SHA-1, RFC 7677 §3 SCRAM-SHA-256). */
export const SCRAM_HASH: Readonly<Record<ScramMechanismName, { digest: 'sha1' | 'sha256'; size: number }>> = {
  'SCRAM-SHA-1': { digest: 'sha1', size: 20 },
  'SCRAM-SHA-256': { digest: 'sha256', size: 32 },
};

export interface DeriveOptions {
  iterations?: number;
  mechanisms?: ScramMechanismName[];
}

function pbkdf2Async(password: string, salt: Buffer, iterations: number, keylen: number, digest: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, keylen, digest, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** HMAC(key, data) with the mechanism's hash (RFC 5802 §2.2). */
export function hmac(mech: ScramMechanismName, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(SCRAM_HASH[mech].digest, key).update(data).digest();
}

/** H(data) with the mechanism's hash (RFC 5802 §2.2). */
export function hash(mech: ScramMechanismName, data: Buffer): Buffer {
  return createHash(SCRAM_HASH[mech].digest).update(data).digest();
}

/**
 * Hi(Normalize(password), salt, i) = PBKDF2 with HMAC-H and dkLen = hash size
 * (RFC 5802 §2.2). `preparedPassword` must already be SASLprep'd; Node hands
 * the string to PBKDF2 as UTF-8, as §2.2 requires.
 */
export function saltedPassword(mech: ScramMechanismName, preparedPassword: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const h = SCRAM_HASH[mech];
  return pbkdf2Async(preparedPassword, salt, iterations, h.size, h.digest);
}

/**
 * Computes one ScramCredential from an already prepared password and a given
 * salt (RFC 5802 §3): ClientKey = HMAC(SaltedPassword, "Client Key"),
 * StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").
 * Only StoredKey and ServerKey leave this function, so a stolen record does not
 * let anyone log in as the user (§9) — SaltedPassword and ClientKey are
 * password-equivalent and are dropped here.
 */
export async function computeScramCredential(
  mech: ScramMechanismName, preparedPassword: string, salt: Buffer, iterations: number,
): Promise<ScramCredential> {
  const salted = await saltedPassword(mech, preparedPassword, salt, iterations);
  const clientKey = hmac(mech, salted, 'Client Key');
  const storedKey = hash(mech, clientKey);
  const serverKey = hmac(mech, salted, 'Server Key');
  salted.fill(0);
  clientKey.fill(0);
  return {
    salt: salt.toString('base64'),
    iterations,
    storedKey: storedKey.toString('base64'),
    serverKey: serverKey.toString('base64'),
  };
}

function checkIterations(iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError(`iterations must be an integer in 1..${MAX_ITERATIONS}, got ${iterations}`);
  }
}

/**
 * Derives what an account stores for a new or changed password.
 *
 * The password is prepared with SASLprep as a *stored* string (RFC 4013 §2.5 /
 * RFC 3454 §7: no unassigned code points), so every password that can be saved
 * also prepares identically as the query string clients send (RFC 5802 §2.2).
 * Each mechanism gets its own random salt, so the SHA-1 and SHA-256 records
 * cannot be correlated.
 *
 * @throws SaslPrepError if the password fails SASLprep or is empty.
 * @throws RangeError on a bad iteration count or empty mechanism list.
 */
export async function deriveCredentials(
  password: string,
  opts: DeriveOptions = {},
): Promise<Credentials> {
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  checkIterations(iterations);
  const mechanisms = opts.mechanisms ?? (['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const);
  if (mechanisms.length === 0) throw new RangeError('mechanisms must not be empty');
  if (typeof password !== 'string' || password.length === 0) {
    throw new SaslPrepError('password is empty');
  }
  const prepared = saslPrep(password, { stored: true });
  const out: Credentials = {};
  for (const mech of new Set(mechanisms)) {
    if (!(mech in SCRAM_HASH)) throw new RangeError(`unknown SCRAM mechanism ${String(mech)}`);
    out[mech] = await computeScramCredential(mech, prepared, randomBytes(SALT_BYTES), iterations);
  }
  return out;
}

/** A ScramCredential decoded and checked, ready for use. */
export interface DecodedCredential {
  salt: Buffer;
  /** The salt exactly as stored (it is sent to the client as is in s=). */
  saltB64: string;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict RFC 4648 §4 base64 check (Buffer.from(…, 'base64') silently skips junk). */
export function isBase64(s: string): boolean {
  return BASE64.test(s);
}

/**
 * Validates a stored record: a corrupt one must surface as a server-side
 * problem (temporary-auth-failure), not as "wrong password".
 */
export function decodeCredential(mech: ScramMechanismName, c: ScramCredential | undefined): DecodedCredential | null {
  if (!c || typeof c !== 'object') return null;
  const size = SCRAM_HASH[mech].size;
  if (typeof c.salt !== 'string' || c.salt.length === 0 || !isBase64(c.salt)) return null;
  if (typeof c.storedKey !== 'string' || !isBase64(c.storedKey)) return null;
  if (typeof c.serverKey !== 'string' || !isBase64(c.serverKey)) return null;
  if (!Number.isSafeInteger(c.iterations) || c.iterations < 1 || c.iterations > MAX_ITERATIONS) return null;
  const storedKey = Buffer.from(c.storedKey, 'base64');
  const serverKey = Buffer.from(c.serverKey, 'base64');
  if (storedKey.length !== size || serverKey.length !== size) return null;
  return { salt: Buffer.from(c.salt, 'base64'), saltB64: c.salt, iterations: c.iterations, storedKey, serverKey };
}

/** Thrown by verifyPassword when the stored record is unusable (corrupt data, not a wrong password). */
export class CredentialFormatError extends Error {
  override readonly name = 'CredentialFormatError';
}

/**
 * Checks a plaintext password (from PLAIN, RFC 4616) against stored SCRAM
 * credentials by recomputing StoredKey with the stored salt and iteration
 * count. Prefers the SCRAM-SHA-256 record, else SCRAM-SHA-1. The password is
 * prepared as a query string (RFC 4616 §2 recommends SASLprep; unassigned code
 * points are allowed in queries, RFC 3454 §7), and a password that fails
 * preparation simply does not match (RFC 4616 §2: "verification SHALL fail").
 *
 * @returns false for a wrong or unpreparable password, or when `creds` has no
 *   SCRAM record.
 * @throws CredentialFormatError if the record to use is malformed.
 */
export async function verifyPassword(password: string, creds: Credentials): Promise<boolean> {
  const mech: ScramMechanismName | undefined =
    creds['SCRAM-SHA-256'] ? 'SCRAM-SHA-256' : creds['SCRAM-SHA-1'] ? 'SCRAM-SHA-1' : undefined;
  if (!mech) return false;
  const rec = decodeCredential(mech, creds[mech]);
  if (!rec) throw new CredentialFormatError(`stored ${mech} credential is malformed`);
  let prepared: string;
  try {
    prepared = saslPrep(password, { stored: false });
  } catch (err) {
    if (err instanceof SaslPrepError) return false;
    throw err;
  }
  const salted = await saltedPassword(mech, prepared, rec.salt, rec.iterations);
  const clientKey = hmac(mech, salted, 'Client Key');
  const storedKey = hash(mech, clientKey);
  salted.fill(0);
  clientKey.fill(0);
  return timingSafeEqual(storedKey, rec.storedKey);
}
