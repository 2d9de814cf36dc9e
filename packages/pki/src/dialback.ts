import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * XEP-0185 dialback key:
 *   HEX(HMAC-SHA256(SHA256(secret), receiving + ' ' + originating + ' ' + streamId))
 *
 * Note the HMAC key is the *hex string* of SHA256(secret), as the XEP's
 * worked example shows (its key is written 'a7136eb1…' and only the hex
 * form reproduces the published result 37c69b1c…); Prosody and others
 * interoperate on that form.
 */
export function dialbackKey(secret: string | Uint8Array, receivingServer: string, originatingServer: string, streamId: string): string {
  const k = createHash('sha256').update(secret).digest('hex');
  return createHmac('sha256', k).update(`${receivingServer} ${originatingServer} ${streamId}`, 'utf8').digest('hex');
}

/** Constant-time check of a received dialback key (case-insensitive hex). */
export function verifyDialbackKey(
  key: string, secret: string | Uint8Array, receivingServer: string, originatingServer: string, streamId: string,
): boolean {
  const want = Buffer.from(dialbackKey(secret, receivingServer, originatingServer, streamId), 'utf8');
  const got = Buffer.from(key.trim().toLowerCase(), 'utf8');
  return got.length === want.length && timingSafeEqual(got, want);
}
