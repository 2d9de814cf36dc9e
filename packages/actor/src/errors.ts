/**
 * The actor's owner refused the request (its mailboxes were full) for as
 * long as the sender kept retrying: nothing ran. Senders answer their own
 * sender with a `wait` error (RFC 6120 §8.3.3.18 resource-constraint).
 */
export class ActorBusyError extends Error {
  constructor(readonly subject: string) {
    super(`the actor of ${subject} is busy: its owner refused the request (mailboxes full)`);
    this.name = 'ActorBusyError';
  }
}
