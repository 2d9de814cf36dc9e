/**
 * Reply header an owner sets, with an empty payload, on a request it accepted
 * but will not handle because it lost the shard (lease expired or renewal
 * refused) before the message's turn came: the sender may resend it safely.
 * Handlers must not use this header in their own replies.
 */
export const MOVED_HEADER = 'hy-actor';
export const MOVED_VALUE = 'moved';
