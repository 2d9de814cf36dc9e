/**
 * What an administration operation can refuse, as a closed set of codes: the
 * HTTP API turns each into a status code, the XEP-0133 commands into a
 * stanza error, the CLI into a message — nobody matches on message text.
 */
export const ADMIN_ERROR_CODES = [
  /** Not a bare JID with a localpart (malformed, no localpart, or a resource). */
  'invalid-jid',
  /** The JID's domain is not one this server serves. */
  'unknown-domain',
  /** The password is empty or fails SASLprep (RFC 4013). */
  'invalid-password',
  /** addUser: the account exists already. */
  'conflict',
  /** No such account. */
  'not-found',
] as const;

export type AdminErrorCode = (typeof ADMIN_ERROR_CODES)[number];

export class AdminError extends Error {
  constructor(readonly code: AdminErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdminError';
  }
}

export function isAdminError(e: unknown, code?: AdminErrorCode): e is AdminError {
  return e instanceof AdminError && (code === undefined || e.code === code);
}
