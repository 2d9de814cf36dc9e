/**
 * XEP-0199 §4.2 server-to-client pings, to find dead connections: a bound
 * client that sent nothing for `idleSeconds` gets
 * `<iq type='get' from='domain' to='full JID'><ping xmlns='urn:xmpp:ping'/></iq>`;
 * if it still sends nothing for `timeoutSeconds`, its stream ends with
 * `<connection-timeout/>` (RFC 6120 §4.9.3.4), which makes its presence go
 * unavailable like any other broken connection.
 *
 * Anything received counts as alive, not only the answer: §4.2 lets a
 * client answer with a result or with an error (<service-unavailable/> from
 * one that does not support ping), and a client busy sending is not dead.
 * The answer to our own ping is for the server itself: `stanza/out` stops
 * it before routing (an iq result or error with the ping's id, to the
 * domain or with no 'to').
 *
 * One timer per session (unref'd, so it never keeps a process up),
 * re-armed for the rest of the idle period when traffic arrived meanwhile:
 * no work per received byte or per stanza beyond one state lookup.
 */
import { randomBytes } from 'node:crypto';
import { Element } from 'ltx';
import { NS } from '@hyphae/stanza';
import { SessionKey, type ClientSession, type HookResult, type Hooks, type StanzaOutEvent } from '@hyphae/module-api';

export interface IdlePingOptions {
  idleSeconds: number;
  timeoutSeconds: number;
}

/** What happened to a server ping (metrics). */
export type PingOutcome = 'sent' | 'answered' | 'timeout';

/** The clock: real timers in the server, a fake one in tests. */
export interface PingClock {
  now(): number;
  /** Runs `fn` after `ms`; returns how to cancel it. */
  schedule(fn: () => void, ms: number): () => void;
}

export const realClock: PingClock = {
  now: () => Date.now(),
  schedule: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

class Pinger {
  cancel: (() => void) | null = null;
  /** Id of the ping last sent and not answered yet. */
  outstanding: string | null = null;
  /** When it was sent: traffic since then means the client is alive. */
  sentAt = 0;
  ended = false;
}
export const PINGER = new SessionKey<Pinger>('ping');

export function idlePingHooks(o: IdlePingOptions, count: (outcome: PingOutcome) => void, clock: PingClock = realClock): Hooks {
  const idleMs = o.idleSeconds * 1000;
  const timeoutMs = o.timeoutSeconds * 1000;

  const arm = (session: ClientSession, p: Pinger, ms: number): void => {
    p.cancel = clock.schedule(() => check(session, p), ms);
  };

  const check = (session: ClientSession, p: Pinger): void => {
    p.cancel = null;
    if (p.ended) return;
    const now = clock.now();
    if (p.sentAt > 0 && session.lastReceivedAt < p.sentAt) {
      // Nothing at all since the ping: the connection is gone (or the client hung).
      count('timeout');
      p.ended = true;
      session.close('connection-timeout', `No answer to a ping for ${o.timeoutSeconds} s`);
      return;
    }
    p.sentAt = 0;
    const idle = now - session.lastReceivedAt;
    if (idle < idleMs) return arm(session, p, idleMs - idle);
    p.outstanding = `ping-${randomBytes(6).toString('hex')}`;
    p.sentAt = now;
    session.write(new Element('iq', { type: 'get', id: p.outstanding, from: session.jid.domain, to: session.jid.toString() })
      .c('ping', { xmlns: NS.ping }).root());
    count('sent');
    arm(session, p, timeoutMs);
  };

  const answer = (e: StanzaOutEvent): HookResult => {
    const p = e.session.get(PINGER);
    if (!p || p.outstanding === null || e.stanza.name !== 'iq') return undefined;
    const { id, type, to } = e.stanza.attrs as Record<string, string | undefined>;
    if (id !== p.outstanding || (type !== 'result' && type !== 'error')) return undefined;
    if (to !== undefined && to !== e.session.jid.domain) return undefined;
    p.outstanding = null;
    count('answered');
    return 'stop';
  };

  return {
    'session/bound': ({ session }) => {
      const p = new Pinger();
      session.set(PINGER, p);
      arm(session, p, idleMs);
    },
    'session/unbound': ({ session }) => {
      const p = session.get(PINGER);
      if (!p) return;
      p.ended = true;
      p.cancel?.();
      session.set(PINGER, undefined);
    },
    'stanza/out': answer,
  };
}
