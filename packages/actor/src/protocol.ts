/**
 * Reply header an owner sets, with an empty payload, on a request it accepted
 * but will not handle because it lost the shard (lease expired or renewal
 * refused) before the message's turn came: the sender may resend it safely.
 * Handlers must not use this header in their own replies.
 */
export const MOVED_HEADER = 'hy-actor';
export const MOVED_VALUE = 'moved';
/**
 * The same header's value when the owner's mailboxes were full
 * (`maxQueued`): the request was refused before anything ran, so the sender
 * may resend it later or answer its own sender with a `wait` error.
 */
export const BUSY_VALUE = 'busy';
/**
 * Request header: how long (ms) the sender waits for the answer. An owner
 * whose mailbox reaches the message after it has held it that long does not
 * run it: the sender has given up on it already (resent it, or answered its
 * own sender), and running it would be work for nobody, or done twice.
 * Relative, measured from arrival on the owner's side, so clocks of
 * different hosts never matter; transit time only makes the owner later to
 * give up, never earlier.
 */
export const TIMEOUT_HEADER = 'hy-timeout';
