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
  /**
   * username: the authentication identity as the client sent it (SCRAM name
   * unescaped, SASLprep'd), before PRECIS. authzid: present only when the
   * client asked for a non-empty authorization identity and `authorize`
   * accepted it (SCRAM name unescaped; otherwise as sent). data: additional
   * data with success (RFC 6120 §6.3.10), e.g. SCRAM's `v=` server signature.
   */
  | { kind: 'success'; username: string; authzid?: string; data?: Buffer }
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
  /**
   * Key for the stand-in salt SCRAM sends for an unknown user (RFC 5802 §9:
   * do not reveal whether an account exists). The salt is HMAC(key, username),
   * so it is stable across attempts. Give every c2s instance of a cluster the
   * same key (at least 32 random bytes) or a name's salt differs between nodes
   * and betrays the account as unknown. Default: random per process.
   */
  unknownUserSecret?: Uint8Array;
  /**
   * Iteration count SCRAM announces for an unknown user; set it to what
   * accounts are created with (deriveCredentials' iterations). Default 4096.
   */
  unknownUserIterations?: number;
}

/** One authentication exchange. Not reusable. */
export interface SaslMechanismServer {
  readonly name: MechanismName;
  /** The <auth/> element's content (decoded), or null when it carried none. */
  start(initial: Buffer | null): Promise<SaslStep>;
  /** A <response/>'s content (decoded). */
  step(response: Buffer): Promise<SaslStep>;
}
