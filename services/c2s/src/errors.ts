/** Stanza errors c2s answers with in more than one place. */
import { StanzaError } from '@hyphae/stanza';

/** A transient backend failure: RFC 6120 §8.3.3.5 with type 'wait' (retry later). */
export function temporaryFailure(): StanzaError {
  return new StanzaError('internal-server-error', 'Temporary failure; try again', { type: 'wait' });
}
