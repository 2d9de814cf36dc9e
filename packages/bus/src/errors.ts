/**
 * Errors the bus raises. Callers branch on the class (instanceof) rather than
 * on messages: NoRespondersError in particular drives retries during a shard
 * handover (DESIGN.md, "Messages on the bus").
 */
export class BusError extends Error {
  /** The subject the failed operation was about. */
  readonly subject: string;
  constructor(message: string, subject: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.subject = subject;
  }
}

/** A request found no subscriber for its subject; raised at once, not after the timeout. */
export class NoRespondersError extends BusError {
  constructor(subject: string, options?: ErrorOptions) {
    super(`no responders for ${subject}`, subject, options);
  }
}

/** A request got no reply within its timeout. */
export class BusTimeoutError extends BusError {
  readonly timeoutMs: number;
  constructor(subject: string, timeoutMs: number, options?: ErrorOptions) {
    super(`request on ${subject} timed out after ${timeoutMs} ms`, subject, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The bus was closed (by close(), or the NATS connection closed for good). */
export class BusClosedError extends BusError {
  constructor(subject: string, options?: ErrorOptions) {
    super(`bus is closed (operation on ${subject})`, subject, options);
  }
}
