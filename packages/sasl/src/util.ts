import type { SaslFailureCondition, SaslStep } from './types.js';

/**
 * Largest SASL message we parse. RFC 4616 §2 requires accepting 255 octets per
 * PLAIN field and SCRAM messages are short; the cap bounds the work (SASLprep,
 * parsing) an unauthenticated peer can make us do.
 */
export const MAX_MESSAGE_BYTES = 8192;

export function fail(condition: SaslFailureCondition, text?: string): SaslStep {
  return text === undefined ? { kind: 'failure', condition } : { kind: 'failure', condition, text };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a SASL message as strict UTF-8 (RFC 5802 §5.1 and RFC 4616 §2 both
 * require UTF-8). `ignoreBOM` keeps a leading U+FEFF so that re-encoding gives
 * back exactly the bytes received (SCRAM signs the bytes, RFC 5802 §3).
 * Returns null for invalid UTF-8 or an oversized message.
 */
export function decodeUtf8(buf: Buffer): string | null {
  if (buf.length > MAX_MESSAGE_BYTES) return null;
  try {
    return utf8.decode(buf);
  } catch {
    return null;
  }
}
