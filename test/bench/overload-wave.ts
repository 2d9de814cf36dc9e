/**
 * The overload scenario's clients (one worker's share): logins arrive at an
 * offered rate whatever the server does; each does what a real client does
 * (TCP, STARTTLS, SASL, bind, roster get, initial presence), then waits for
 * its own presence back (RFC 6121 §4.2.2: the server sends the initial
 * presence to the user's own available resources, the sender included) and
 * stays connected until the scenario ends, as tsung's sessions do.
 *
 * Every login and every echo is accounted for: logged in / refused (an
 * error the client was given: a stream error, a SASL failure, a stanza
 * error, a TCP or TLS refusal) / lost (no answer by the deadline, or a
 * connection cut without a stream error once the stream was open); echoed /
 * error / lost.
 */
import { BenchClient, NS, errorCondition, nowNs, XmppError, type LoginTimings } from './client.js';
import type { Member } from './group.js';
import { encodeHistogram, newHistogram, recordMs } from './stats.js';
import type { ScramMechanism } from './scram.js';

export interface OverloadPlan {
  members: Member[];
  /** This worker's share of the offered logins/s. */
  rate: number;
  /** Common start (nowNs) of every worker. */
  startNs: number;
  /** Logins this worker starts (member k mod |members| for the k-th). */
  count: number;
  resourcePrefix: string;
  /** How long a session waits for its echo once its presence is sent. */
  echoTimeoutMs: number;
}

export interface Tally {
  /** Logins that ended bound with the roster fetched / refused with an error / lost. */
  login: { in: number; refused: number; lost: number; reasons: Record<string, number> };
  /** Of the logged-in sessions: initial presence echoed / answered with an error / lost. */
  echo: { echoed: number; error: number; lost: number; reasons: Record<string, number> };
}

export interface OverloadOutcome extends Tally {
  attempted: number;
  /** Encoded µs histograms: whole login (connect → roster) and its steps, presence sent → echo. */
  hist: Record<OverloadHist, string>;
  lastLoginNs: number;
  lastEchoNs: number;
  /** A few full JIDs whose echo was lost (to look up in the server's logs). */
  lostEchoes: string[];
}

export const OVERLOAD_HISTS = ['login', 'connect', 'tls', 'auth', 'bind', 'roster', 'echo'] as const;
export type OverloadHist = (typeof OVERLOAD_HISTS)[number];

export type LoginFate = { fate: 'refused' | 'lost'; reason: string };

/**
 * How a failed login ended. The client was told (refused): a stream error,
 * a SASL or stanza error condition, a TCP refusal, a connection closed
 * before its TLS was up (no stream error is possible inside a handshake).
 * It was not (lost): a step timed out with no answer, or the server cut an
 * open stream without a stream error.
 */
export function loginFate(err: unknown, stage: 'connect' | 'tls' | 'stream'): LoginFate {
  const e = err as (Error & { code?: string }) | undefined;
  const msg = e?.message ?? String(err);
  if (e instanceof XmppError && e.condition !== null) return { fate: 'refused', reason: e.condition };
  if (/^timeout after/.test(msg) || /timed out/.test(msg)) return { fate: 'lost', reason: `no answer (${stage})` };
  if (stage === 'connect') return { fate: 'refused', reason: `tcp: ${e?.code ?? msg.slice(0, 40)}` };
  if (stage === 'tls') return { fate: 'refused', reason: 'closed during the TLS handshake' };
  return { fate: 'lost', reason: 'closed without a stream error' };
}

const bump = (m: Record<string, number>, k: string): void => {
  m[k] = (m[k] ?? 0) + 1;
};

export function emptyTally(): Tally {
  return { login: { in: 0, refused: 0, lost: 0, reasons: {} }, echo: { echoed: 0, error: 0, lost: 0, reasons: {} } };
}

export function addTally(into: Tally, t: Tally): void {
  for (const side of ['login', 'echo'] as const) {
    const a = into[side] as unknown as Record<string, number | Record<string, number>>;
    const b = t[side] as unknown as Record<string, number | Record<string, number>>;
    for (const [k, v] of Object.entries(b)) {
      if (typeof v === 'number') a[k] = ((a[k] as number) ?? 0) + v;
      else for (const [r, c] of Object.entries(v)) (a[k] as Record<string, number>)[r] = ((a[k] as Record<string, number>)[r] ?? 0) + c;
    }
  }
}

/** One login, as `client.login` does it, remembering how far it got (for `loginFate`). */
async function login(m: Member, resource: string, domain: string, timeoutMs: number, mechanism: ScramMechanism, t0: number): Promise<{ client: BenchClient; timings: LoginTimings } | LoginFate> {
  let client: BenchClient;
  try {
    client = await BenchClient.connect({ endpoint: m.endpoint, domain, timeoutMs });
  } catch (err) {
    return loginFate(err, 'connect');
  }
  let stage: 'tls' | 'stream' = 'stream';
  try {
    const tConnect = nowNs();
    let features = await client.openStream();
    if (!features.getChild('starttls', NS.tls)) throw new XmppError('the server does not offer STARTTLS', 'no-starttls');
    stage = 'tls';
    features = await client.starttls();
    stage = 'stream';
    const tTls = nowNs();
    features = await client.authenticate(features, m.username, m.password, mechanism);
    const tAuth = nowNs();
    await client.bind(features, resource);
    const tBind = nowNs();
    client.roster = await client.getRoster();
    const tRoster = nowNs();
    const ms = (a: number, b: number): number => (b - a) / 1e6;
    return { client, timings: { connect: ms(t0, tConnect), tls: ms(tConnect, tTls), auth: ms(tTls, tAuth), bind: ms(tAuth, tBind), roster: ms(tBind, tRoster), total: ms(t0, tRoster) } };
  } catch (err) {
    client.destroy();
    return loginFate(err, stage);
  }
}

/**
 * Runs this worker's share; the sessions that logged in are pushed to
 * `held` (closed by the group's closeAll at the end of the scenario).
 */
export async function overloadWave(p: OverloadPlan, init: { domain: string; timeoutMs: number; mechanism: ScramMechanism }, held: BenchClient[]): Promise<OverloadOutcome> {
  const out: OverloadOutcome = { attempted: 0, ...emptyTally(), hist: { login: '', connect: '', tls: '', auth: '', bind: '', roster: '', echo: '' }, lastLoginNs: 0, lastEchoNs: 0, lostEchoes: [] };
  const hists = Object.fromEntries(OVERLOAD_HISTS.map((k) => [k, newHistogram()])) as Record<OverloadHist, ReturnType<typeof newHistogram>>;
  const one = async (k: number): Promise<void> => {
    const m = p.members[k % p.members.length] as Member;
    const t0 = nowNs();
    const r = await login(m, `${p.resourcePrefix}${k}`, init.domain, init.timeoutMs, init.mechanism, t0);
    if (!('client' in r)) {
      out.login[r.fate]++;
      bump(out.login.reasons, r.reason);
      return;
    }
    const { client, timings } = r;
    out.login.in++;
    out.lastLoginNs = nowNs();
    recordMs(hists.login, timings.total);
    for (const k of ['connect', 'tls', 'auth', 'bind', 'roster'] as const) recordMs(hists[k], timings[k]);
    held.push(client);
    const jid = client.jid;
    // Own presence back (from our full JID, no type), or an error about it (c2s answers without 'from').
    const echo = client.waitFor(
      (el) => el.name === 'presence' && (el.attrs.type === 'error' ? !el.attrs.from || String(el.attrs.from).startsWith(jid.split('/')[0] as string) : el.attrs.type === undefined && el.attrs.from === jid),
      'the echo of the initial presence',
      p.echoTimeoutMs,
    );
    const sent = nowNs();
    client.send('<presence/>');
    try {
      const el = await echo;
      if (el.attrs.type === 'error') {
        out.echo.error++;
        bump(out.echo.reasons, errorCondition(el) ?? 'error');
        return;
      }
      out.echo.echoed++;
      out.lastEchoNs = nowNs();
      recordMs(hists.echo, (out.lastEchoNs - sent) / 1e6);
    } catch (err) {
      // A stream error is an answer (the session was closed with a reason); silence is not.
      const cond = err instanceof XmppError ? err.condition : null;
      if (cond !== null) {
        out.echo.error++;
        bump(out.echo.reasons, `stream error: ${cond}`);
        return;
      }
      out.echo.lost++;
      bump(out.echo.reasons, client.isClosed ? 'closed without a stream error' : 'no echo');
      if (out.lostEchoes.length < 5) out.lostEchoes.push(jid);
    }
  };
  const intervalNs = 1e9 / p.rate;
  const running: Promise<void>[] = [];
  const wait = (p.startNs - nowNs()) / 1e6;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      // Open loop: everything due by now starts now, however late the timer fired.
      const due = Math.min(Math.floor((nowNs() - p.startNs) / intervalNs) + 1, p.count);
      while (out.attempted < due) running.push(one(out.attempted++));
      if (out.attempted >= p.count) return resolve();
      const next = (p.startNs + out.attempted * intervalNs - nowNs()) / 1e6;
      setTimeout(tick, next > 1 ? Math.floor(next) : 0);
    };
    tick();
  });
  await Promise.all(running);
  for (const k of OVERLOAD_HISTS) {
    out.hist[k] = encodeHistogram(hists[k]);
    hists[k].destroy();
  }
  return out;
}
