import { PlainServer } from './plain.js';
import { ScramServer, type ScramHooks } from './scram.js';
import type { MechanismName, MechanismOptions, SaslMechanismServer } from './types.js';

export { escapeSaslName, unescapeSaslName } from './scram.js';

/** Thrown by createMechanism for a name that is not in MECHANISMS. */
export class UnknownMechanismError extends Error {
  override readonly name = 'UnknownMechanismError';
  constructor(readonly mechanism: string) {
    super(`unknown SASL mechanism ${mechanism}`);
  }
}

/**
 * Starts one server-side authentication exchange for `name`. The caller
 * decodes base64 (an error there is `incorrect-encoding`, RFC 6120 §6.5.2),
 * feeds <auth/> to start() and each <response/> to step(), and maps an
 * <abort/> to `aborted` itself. Each result is final except a challenge.
 *
 * @throws UnknownMechanismError for a name outside MECHANISMS (the caller should
 *   answer `invalid-mechanism` before getting here).
 */
export function createMechanism(name: MechanismName, opts: MechanismOptions): SaslMechanismServer {
  return createMechanismWithHooks(name, opts, {});
}

/**
 * As createMechanism, with test hooks (a fixed server nonce) so the RFC 5802
 * §5 and RFC 7677 §3 example exchanges can be reproduced byte for byte. Not
 * exported from the package entry point.
 */
export function createMechanismWithHooks(
  name: MechanismName, opts: MechanismOptions, hooks: ScramHooks,
): SaslMechanismServer {
  switch (name) {
    case 'SCRAM-SHA-1':
    case 'SCRAM-SHA-256':
      return new ScramServer(name, opts, hooks);
    case 'PLAIN':
      return new PlainServer(opts);
    default:
      throw new UnknownMechanismError(String(name satisfies never));
  }
}
