/**
 * The built-in stream features, in the order they are offered and asked:
 * STARTTLS, SASL and module iqs before authentication; bind and legacy
 * session after it (the roster offers come from the roster module). Module features follow each stage's
 * own (stream.ts).
 */
import { starttls } from './starttls.js';
import { sasl } from './sasl.js';
import { preAuthIq } from './pre-auth-iq.js';
import { bind } from './bind.js';
import { legacySession } from './session.js';
import type { CoreFeature } from './types.js';

export const CORE_FEATURES: readonly CoreFeature[] = [starttls, sasl, preAuthIq, bind, legacySession];

export type { CoreFeature, StreamInternals, ElementHandler } from './types.js';
export { newSaslState, type SaslState } from './sasl.js';
