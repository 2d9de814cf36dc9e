/**
 * How other services talk to the user actors of the roster service
 * (`xmpp.user.<shard>.<domain>.<local>`): bus requests that retry while a
 * shard changes hands, so nothing addressed to a user is lost in a handover.
 */
import type { Bus, BusMessage, Headers } from '@hyphae/bus';
import { actorSubject, requestWithRetry } from '@hyphae/actor';
import { JID } from '@hyphae/jid';
import type { SessionEndedEvent } from '@hyphae/module-api';

export const USER_SUBJECT_PREFIX = 'xmpp.user';

/** Header naming what the actor should do with the payload. */
export const OP_HEADER = 'hy-op';
/** Reply header of the actor. */
export const RESULT_HEADER = 'hy-result';
/** For presence-out: the sending session, so the actor updates the right registry entry. */
export const SID_HEADER = 'hy-sid';

export type UserOp =
  /** jabber:iq:roster from the user (payload: the stamped iq). */
  | 'roster-iq'
  /** Any presence sent by the user (payload: the stamped presence). */
  | 'presence-out'
  /** A subscription stanza or probe addressed to the user (payload: the presence, from = contact bare JID). */
  | 'presence-in'
  /** A session ended (payload: JSON SessionEndedEvent). */
  | 'session-end'
  /** A message for a user with no available resource (payload: the message). */
  | 'offline'
  /** The account was deleted: unavailable to everyone who saw it, then its data goes (no payload). */
  | 'account-deleted';

/**
 * Operations that may be applied twice without harm: retried when the owner
 * times out (it may have died holding them). Subscription stanzas are
 * idempotent under RFC 6121 Appendix A; storing a message is not.
 */
const IDEMPOTENT: ReadonlySet<UserOp> = new Set<UserOp>(['roster-iq', 'presence-out', 'presence-in', 'session-end', 'account-deleted']);

/** 'stored' | 'delivered' | 'full' | 'gone' (no such account) | 'available' (offline: a resource is available after all; route it again) | 'ok' */
export type UserResult = 'ok' | 'stored' | 'delivered' | 'full' | 'gone' | 'available';

export type { SessionEndedEvent } from '@hyphae/module-api';

export class UserActors {
  constructor(private readonly bus: Bus, private readonly shards: number) {}

  subject(user: JID): string {
    return actorSubject(USER_SUBJECT_PREFIX, this.shards, user.domain, user.local);
  }

  /** Sends to `user`'s actor and waits for its answer (retrying during handovers). */
  /** `op` is a core operation or one a module declares (ModuleInstance.userOps). */
  async send(user: JID, op: UserOp | (string & {}), data: Uint8Array, headers: Headers = {}): Promise<BusMessage> {
    return requestWithRetry(this.bus, this.subject(user), data, {
      headers: { ...headers, [OP_HEADER]: op },
      // Long enough for an initial presence with a full offline queue; a
      // dead owner is noticed by its lease expiring well within retryForMs.
      timeoutMs: 5_000,
      retryForMs: 20_000,
      idempotent: IDEMPOTENT.has(op as UserOp),
    });
  }

  result(reply: BusMessage): UserResult {
    return (reply.headers[RESULT_HEADER] as UserResult | undefined) ?? 'ok';
  }
}

/**
 * Tells the user's actor that a session ended, so its contacts get
 * unavailable presence. Failures are logged: the actor cannot be reached
 * only when no roster instance has been up for the whole retry window.
 */
export async function notifySessionEnded(actors: UserActors, ev: SessionEndedEvent, logger: { warn(o: object, m: string): void }): Promise<void> {
  const at = ev.bare.indexOf('@');
  const user = new JID(ev.bare.slice(0, at), ev.bare.slice(at + 1));
  try {
    await actors.send(user, 'session-end', new TextEncoder().encode(JSON.stringify(ev)));
  } catch (err) {
    logger.warn({ err, bare: ev.bare, resource: ev.resource }, 'could not tell the roster service that a session ended');
  }
}
