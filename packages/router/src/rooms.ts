/**
 * How every edge and service reaches the MUC service's room actors
 * (`xmpp.muc.<shard>.<service-domain>.<room>`, DESIGN.md): a stanza for a
 * room, an occupant of it, or the service itself (local part '') is a bus
 * request to the actor of that room, retried while its shard changes hands.
 */
import type { Bus } from '@hyphae/bus';
import { actorSubject, requestWithRetry } from '@hyphae/actor';
import type { JID } from '@hyphae/jid';
import type { Component } from './components.js';

export const MUC_SUBJECT_PREFIX = 'xmpp.muc';


export class MucRooms implements Component {
  private readonly domainSet: ReadonlySet<string>;

  /** `domains`: the MUC service domains (e.g. conference.example.org). */
  constructor(private readonly bus: Bus, private readonly shards: number, readonly domains: readonly string[]) {
    this.domainSet = new Set(domains);
  }

  serves(domain: string): boolean {
    return this.domainSet.has(domain);
  }

  /** The actor subject of the room (or, with an empty local part, of the service). */
  subject(to: JID): string {
    return actorSubject(MUC_SUBJECT_PREFIX, this.shards, to.domain, to.local);
  }

  /**
   * Hands a stamped stanza to the room's actor and waits until it has been
   * handled, so a sender that awaits each stanza keeps its order (RFC 6120
   * §10.1). Not idempotent (a groupchat message would be reflected twice):
   * only "no responders" and "moved" are retried; a timeout throws.
   */
  async send(to: JID, data: Uint8Array): Promise<void> {
    await requestWithRetry(this.bus, this.subject(to), data, { timeoutMs: 5_000, retryForMs: 20_000 });
  }
}
