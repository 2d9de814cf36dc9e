/**
 * @hyphae/stanza — XML namespaces, stream errors (RFC 6120 §4.9), stanza
 * errors (RFC 6120 §8.3) and the reply builders every service uses.
 */
export { NS } from './ns.js';
export type { Namespace } from './ns.js';
export { STREAM_ERROR_CONDITIONS, StreamError, isStreamErrorCondition } from './stream-error.js';
export type { StreamErrorCondition, StreamErrorOptions } from './stream-error.js';
export {
  STANZA_ERROR_CONDITIONS,
  STANZA_ERROR_TYPES,
  DEFAULT_ERROR_TYPE,
  StanzaError,
  isStanzaErrorCondition,
  isStanzaErrorType,
  cloneElement,
} from './stanza-error.js';
export type { StanzaErrorCondition, StanzaErrorType, StanzaErrorOptions } from './stanza-error.js';
export { stanzaKind } from './kind.js';
export type { StanzaKind } from './kind.js';
export { errorReply, iqResult, canReplyWithError } from './reply.js';
export type { ErrorReplyOptions } from './reply.js';
export { validateIq } from './validate.js';
export { parseStanzaError } from './parse-error.js';
export type { ParsedStanzaError } from './parse-error.js';
export { parseRsm, rsmSet, type RsmRequest, type RsmSetOptions } from './rsm.js';
