/**
 * The last line of DESIGN.md invariant 7 (backends fail stanzas, not
 * processes): a promise rejection nobody handled, or an exception nobody
 * caught, is logged and counted (`hyphae_unhandled_errors_total`), and the
 * process goes on.
 *
 * Node's default would end the process, and with it every stream on the
 * node — for one failed callback. Each occurrence is a defect to fix (the
 * test harness fails any test during which one is logged); until it is
 * fixed, one stanza or one stream suffers, not the whole node. Prosody and
 * ejabberd treat a failing handler the same way: logged, the server lives.
 */
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';

/**
 * The `msg` of the log line: the e2e harness (test/harness/server.ts) looks
 * for it in every process's output. Change both together.
 */
export const UNHANDLED_ERROR_MSG = 'unhandled error';

export type UnhandledKind = 'rejection' | 'exception';

/** The part of `process` the guards use. */
export interface GuardedProcess {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  off(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  off(event: 'uncaughtException', listener: (err: Error) => void): unknown;
}

/** Installs the handlers on `proc`; returns the function that removes them. */
export function guardProcess(proc: GuardedProcess, opts: { logger: Logger; counter: Counter<'kind'> }): () => void {
  const { logger, counter } = opts;
  // Both series exist from the start (at 0), so a scrape tells "none" from "not installed".
  counter.inc({ kind: 'rejection' }, 0);
  counter.inc({ kind: 'exception' }, 0);
  const report = (kind: UnhandledKind, err: unknown): void => {
    counter.inc({ kind });
    try {
      logger.error({ err, unhandled: kind }, UNHANDLED_ERROR_MSG);
    } catch {
      // A logger that throws must not turn this handler into another uncaught exception.
    }
  };
  const onRejection = (reason: unknown): void => report('rejection', reason);
  const onException = (err: Error): void => report('exception', err);
  proc.on('unhandledRejection', onRejection);
  proc.on('uncaughtException', onException);
  return () => {
    proc.off('unhandledRejection', onRejection);
    proc.off('uncaughtException', onException);
  };
}
