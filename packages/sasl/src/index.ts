/**
 * @hyphae/sasl — server side of SASL mechanisms (RFC 4422): SCRAM-SHA-1 and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) and PLAIN (RFC 4616). Accounts keep only
 * ScramCredential records (salted StoredKey/ServerKey), never the password.
 */
export type {
  ScramCredential, Credentials, MechanismName, SaslStep, SaslFailureCondition,
  SaslMechanismServer, CredentialLookup, MechanismOptions,
} from './types.js';
export { MECHANISMS } from './types.js';
export {
  deriveCredentials, verifyPassword, CredentialFormatError, DEFAULT_ITERATIONS,
  type DeriveOptions, type ScramMechanismName,
} from './credentials.js';
export { SaslPrepError, saslPrep, type SaslPrepOptions } from './saslprep.js';
export { createMechanism, UnknownMechanismError, escapeSaslName, unescapeSaslName } from './mechanisms.js';
/** Test clients (SCRAM without channel binding, PLAIN) for other packages' tests. */
export {
  createScramClient, plainMessage, ScramClientError, type ScramClient, type ScramClientOptions,
} from './client.js';
