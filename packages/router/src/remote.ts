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
import { MOVED_HEADER, MOVED_VALUE, shardOf } from '@hyphae/actor';
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

interface Item {
  seq: number;
  local: string;
  data: Uint8Array;
  resolve(r: S2sResult | RemoteFailure): void;
}

/** Requests to one remote domain from this process. */
interface Pipe {
  subject: string;
  inflight: number;
  /** A request met "no responders" (the shard is between owners): new ones wait, in order. */
  blocked: boolean;
  since: number;
  delay: number;
  timer: NodeJS.Timeout | null;
  /** Refused requests, to send again. */
  retry: Item[];
  /** Requests held while blocked. */
  held: Item[];
}

const FIRST_DELAY_MS = 50;
const MAX_DELAY_MS = 1000;
const bySeq = (x: Item, y: Item) => x.seq - y.seq;

export class RemoteDomains {
  private readonly pipes = new Map<string, Pipe>();
  private seq = 0;

  constructor(
    private readonly bus: Bus,
    private readonly shards: number,
    /** How long to wait for the outcome: the s2s queue timeout plus a margin. */
    private readonly timeoutMs: number,
    /** How long to keep resending while no s2s instance owns the domain's shard. */
    private readonly retryForMs = 15_000,
  ) {}

  /**
   * Hands a stamped stanza to the s2s service; the request leaves at once.
   * Settles with the outcome, or with the failure when the service could
   * not be reached or did not answer. While the domain's shard changes
   * hands, requests are held and sent again in their original order
   * (RFC 6120 §10.1): one probe first, the rest once it is answered.
   */
  send(localDomain: string, remoteDomain: string, data: Uint8Array): Promise<S2sResult | RemoteFailure> {
    return new Promise((resolve) => {
      let pipe = this.pipes.get(remoteDomain);
      if (!pipe) {
        pipe = { subject: s2sSubject(this.shards, remoteDomain), inflight: 0, blocked: false, since: 0, delay: FIRST_DELAY_MS, timer: null, retry: [], held: [] };
        this.pipes.set(remoteDomain, pipe);
      }
      const item: Item = { seq: this.seq++, local: localDomain, data, resolve };
      if (pipe.blocked) pipe.held.push(item);
      else this.fire(remoteDomain, pipe, item, false);
    });
  }

  private fire(domain: string, pipe: Pipe, item: Item, probe: boolean): void {
    pipe.inflight++;
    this.bus.request(pipe.subject, item.data, { headers: { [S2S_HEADERS.local]: item.local }, timeoutMs: this.timeoutMs }).then(
      (reply) => {
        pipe.inflight--;
        // Handed over while it waited in the old owner's mailbox: not handled, send again.
        if (reply.headers[MOVED_HEADER] === MOVED_VALUE) return this.refused(domain, pipe, item);
        item.resolve(reply.headers[S2S_HEADERS.result] === 'bounced' ? 'bounced' : 'sent');
        this.settled(domain, pipe, probe);
      },
      (err: unknown) => {
        pipe.inflight--;
        if (err instanceof NoRespondersError) return this.refused(domain, pipe, item);
        item.resolve('timeout');
        this.settled(domain, pipe, probe);
      },
    );
  }

  private refused(domain: string, pipe: Pipe, item: Item): void {
    if (!pipe.blocked) {
      pipe.blocked = true;
      pipe.since = Date.now();
      pipe.delay = FIRST_DELAY_MS;
    }
    pipe.retry.push(item);
    this.resume(domain, pipe);
  }

  /** A request was answered: after a probe, the owner is back and everything held goes, in order. */
  private settled(domain: string, pipe: Pipe, probe: boolean): void {
    if (probe) {
      pipe.blocked = false;
      const held = [...pipe.retry.splice(0), ...pipe.held.splice(0)].sort(bySeq);
      for (const item of held) this.fire(domain, pipe, item, false);
    }
    this.resume(domain, pipe);
  }

  /** Once nothing is in flight, probes with the oldest refused request (after a backoff). */
  private resume(domain: string, pipe: Pipe): void {
    if (pipe.inflight > 0 || pipe.timer) return;
    if (!pipe.blocked) {
      if (pipe.retry.length === 0 && pipe.held.length === 0) this.pipes.delete(domain);
      return;
    }
    const waiting = [...pipe.retry.splice(0), ...pipe.held.splice(0)].sort(bySeq);
    if (Date.now() - pipe.since > this.retryForMs) {
      for (const item of waiting) item.resolve('unreachable');
      this.pipes.delete(domain);
      return;
    }
    const [first, ...rest] = waiting;
    if (!first) {
      pipe.blocked = false;
      this.pipes.delete(domain);
      return;
    }
    pipe.held = rest;
    pipe.timer = setTimeout(() => {
      pipe.timer = null;
      this.fire(domain, pipe, first, true);
    }, pipe.delay);
    pipe.delay = Math.min(pipe.delay * 2, MAX_DELAY_MS);
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
