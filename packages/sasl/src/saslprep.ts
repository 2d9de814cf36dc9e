import saslprepLib from '@mongodb-js/saslprep';

/**
 * Thrown when a string cannot be prepared with SASLprep (RFC 4013): it holds a
 * prohibited character (§2.3), breaks the bidi rule (§2.4), holds an
 * unassigned code point while being prepared as a stored string (§2.5, RFC
 * 3454 §7), or is empty after preparation (SCRAM and PLAIN both forbid empty
 * names and passwords: RFC 5802 §5.1, RFC 4616 §2).
 */
export class SaslPrepError extends Error {
  override readonly name = 'SaslPrepError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface SaslPrepOptions {
  /**
   * RFC 3454 §7: a "query" string may hold unassigned code points, a "stored"
   * string may not. SCRAM's Normalize() treats input as a query (RFC 5802
   * §2.2); passwords being saved for an account are stored strings.
   */
  stored: boolean;
}

/**
 * SASLprep (RFC 4013) through @mongodb-js/saslprep. Never returns an empty
 * string: emptiness after mapping (e.g. only U+00AD SOFT HYPHEN, which §2.2
 * maps to nothing) is an error, because every caller here rejects it anyway.
 */
export function saslPrep(input: string, opts: SaslPrepOptions): string {
  let out: string;
  try {
    out = saslprepLib(input, { allowUnassigned: !opts.stored });
  } catch (err) {
    // The library throws plain Errors for prohibited/unassigned/bidi input and
    // a TypeError when mapping leaves nothing (it then reads char 0 of "").
    if (err instanceof Error && /rfc4013|rfc3454/i.test(err.message)) {
      throw new SaslPrepError(err.message, { cause: err });
    }
    throw new SaslPrepError('string is empty after SASLprep mapping', { cause: err });
  }
  if (out.length === 0) throw new SaslPrepError('string is empty after SASLprep');
  return out;
}
