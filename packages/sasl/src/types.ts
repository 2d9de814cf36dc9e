/** Salted SCRAM keys for one hash (RFC 5802 §3); binary values base64-encoded. */
export interface ScramCredential {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/** What an account stores: one ScramCredential per SCRAM mechanism. PLAIN verifies against these. */
export type Credentials = Partial<Record<'SCRAM-SHA-1' | 'SCRAM-SHA-256', ScramCredential>>;

export const MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const;
export type MechanismName = (typeof MECHANISMS)[number];

/** RFC 6120 §6.5 failure conditions. */
export type SaslFailureCondition =
  | 'aborted' | 'account-disabled' | 'credentials-expired' | 'encryption-required'
  | 'incorrect-encoding' | 'invalid-authzid' | 'invalid-mechanism' | 'malformed-request'
  | 'mechanism-too-weak' | 'not-authorized' | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  /** username: the authentication identity as the client sent it (SCRAM name unescaped), before PRECIS. */
  | { kind: 'success'; username: string; data?: Buffer }
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string };

/**
 * Looks up an account's credentials by the username the client gave.
 * Returns null for an unknown (or unpreparable) username. A thrown error
 * becomes `temporary-auth-failure`.
 */
export type CredentialLookup = (username: string) => Promise<Credentials | null>;

export interface MechanismOptions {
  lookup: CredentialLookup;
  /**
   * Checks an authorization identity (authzid) the client asked for, given the
   * authenticated username; return false to fail with `invalid-authzid`.
   * Default: only an empty authzid is accepted.
   */
  authorize?: (username: string, authzid: string) => boolean;
}

/** One authentication exchange. Not reusable. */
export interface SaslMechanismServer {
  readonly name: MechanismName;
  /** The <auth/> element's content (decoded), or null when it carried none. */
  start(initial: Buffer | null): Promise<SaslStep>;
  /** A <response/>'s content (decoded). */
  step(response: Buffer): Promise<SaslStep>;
}
