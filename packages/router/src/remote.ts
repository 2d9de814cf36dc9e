/**
 * How every edge and service reaches remote domains (federation): a stanza
 * for a domain this deployment does not serve is a bus request to the s2s
 * service's actor of that remote domain (`xmpp.s2s.<shard>.<remote-domain>`,
 * DESIGN.md), which queues it on the stream for the pair (local domain,
 * remote domain) and answers once it is written to that stream or bounced.
 *
 * The router does not wait for that answer before taking the sender's next
 * stanza (setting a stream up can take seconds); requests from one process
 * to one subject leave in order, and the actor's mailbox keeps that order.
 * If no answer comes (the s2s instance died with the stanza queued), the
 * sender gets <remote-server-timeout/>: delivered or bounced, never silent.
 */
import { NoRespondersError, type Bus } from '@hyphae/bus';
import { requestWithRetry, shardOf } from '@hyphae/actor';
import { encodeToken } from '@hyphae/jid';

export const S2S_SUBJECT_PREFIX = 'xmpp.s2s';

/** Headers of a stanza handed to the s2s service. */
export const S2S_HEADERS = {
  /** The local domain the stanza leaves from (the stream pair's sending side). */
  local: 'hy-s2s-local',
  /** Reply: what became of it. */
  result: 'hy-s2s-result',
} as const;

/** 'sent': written to the remote stream; 'bounced': the sender got an error from the s2s service. */
export type S2sResult = 'sent' | 'bounced';

/** The actor subject of a remote domain. */
export function s2sSubject(shards: number, remoteDomain: string): string {
  return `${S2S_SUBJECT_PREFIX}.${shardOf(remoteDomain, shards)}.${encodeToken(remoteDomain)}`;
}

/** Why a stanza could not be handed over: no s2s instance serves it, or no answer came in time. */
export type RemoteFailure = 'unreachable' | 'timeout';

export class RemoteDomains {
  constructor(
    private readonly bus: Bus,
    private readonly shards: number,
    /** How long to wait for the outcome: the s2s queue timeout plus a margin. */
    private readonly timeoutMs: number,
  ) {}

  /**
   * Hands a stamped stanza to the s2s service. The returned promise settles
   * with the outcome, or with the failure when the service could not be
   * reached or did not answer.
   */
  async send(localDomain: string, remoteDomain: string, data: Uint8Array): Promise<S2sResult | RemoteFailure> {
    try {
      const reply = await requestWithRetry(this.bus, s2sSubject(this.shards, remoteDomain), data, {
        headers: { [S2S_HEADERS.local]: localDomain },
        timeoutMs: this.timeoutMs,
        retryForMs: 15_000,
      });
      return reply.headers[S2S_HEADERS.result] === 'bounced' ? 'bounced' : 'sent';
    } catch (err) {
      return err instanceof NoRespondersError ? 'unreachable' : 'timeout';
    }
  }
}

/** The parts of the configuration that say whether and how remote domains are reached. */
export interface RemoteConfig {
  s2s: { enabled: boolean; shards: number; queueTimeoutMs: number };
}

/** The federation route of a process, from the configuration; undefined when federation is off. */
export function remoteFor(cfg: RemoteConfig, bus: Bus): RemoteDomains | undefined {
  if (!cfg.s2s.enabled) return undefined;
  return new RemoteDomains(bus, cfg.s2s.shards, cfg.s2s.queueTimeoutMs + 5_000);
}
