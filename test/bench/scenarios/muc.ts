/**
 * The muc scenario (docs/benchmarks.md): N occupants log in, the first
 * creates a room (XEP-0045 §10.1.2: enter with the MUC <x/>, submit an
 * empty configuration form), the others enter one after the other; then S
 * senders take turns sending groupchat messages at an offered total rate,
 * and every occupant counts what it receives.
 */
import { randomBytes } from 'node:crypto';
import type { JoinOutcome } from '../group.js';
import { Pool } from '../pool.js';
import { summarizeMs, type LatencySummary } from '../stats.js';
import { loginAll, members, round2, sleep, type Context, type GeneratorUsage, type LoginPhase } from './common.js';
import { messagePhase, type MessagesPhase } from './messaging.js';
import type { ServerUsage } from '../proc.js';

export interface MucRun {
  run: number;
  room: string;
  login: LoginPhase;
  join: {
    occupants: number;
    /** The last occupant to enter: presence sent → self-presence (110), and → subject. */
    lastSelfPresenceMs: number;
    lastSubjectMs: number;
    /** Every occupant's entry (the creator's excluded), presence → subject. */
    subject: LatencySummary;
    /** Room creation: presence → self-presence (201), and the configuration round trip. */
    createMs: number;
    configureMs: number;
    seconds: number;
    /** Occupant presences received, against occupants² expected. */
    presencesReceived: number;
    presencesExpected: number;
  };
  messages: MessagesPhase;
  generator: GeneratorUsage;
  server: ServerUsage;
  warnings: string[];
}

export async function mucRun(ctx: Context, run: number): Promise<MucRun> {
  const o = ctx.opts;
  const n = o.occupants;
  const label = `muc run ${run}/${o.runs}`;
  const warnings: string[] = [];
  const runId = `${randomBytes(3).toString('hex')}${run}`;
  const room = `bench-${runId}@${ctx.target.mucDomain}`;
  const pool = Pool.start(o.workers, { domain: ctx.target.domain, occupants: n, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource });
  try {
    // --- login
    // --users beyond --occupants log in too and stay online without joining.
    const list = members(ctx, Math.max(n, o.users));
    const login = await loginAll(ctx, pool, list, label);

    // --- join: the creator, then everyone else in turn
    const tJoin = performance.now();
    const created = await pool.of(0).call('createRoom', { idx: 0, room, nick: 'o0' });
    ctx.progress(`${label}: ${room} created (self-presence ${created.selfPresenceMs.toFixed(1)} ms, configured in ${created.configureMs?.toFixed(1)} ms)`);
    const joins: JoinOutcome[] = [];
    let lastTick = performance.now();
    for (let i = 1; i < n; i++) {
      joins.push(await pool.of(i).call('join', { idx: i, room, nick: `o${i}` }));
      if (performance.now() - lastTick > 2_000) {
        lastTick = performance.now();
        ctx.progress(`${label}: ${i + 1}/${n} occupants in the room`);
      }
    }
    const last = joins[joins.length - 1];
    // Every occupant should see every occupant's presence (its own included) once.
    let presencesReceived = 0;
    const presDeadline = performance.now() + 10_000;
    for (;;) {
      const per = await pool.all('presences');
      presencesReceived = per.reduce((a, m) => a + Object.values(m).reduce((x, y) => x + y, 0), 0);
      if (presencesReceived >= n * n || performance.now() > presDeadline) break;
      await sleep(100);
    }
    if (presencesReceived !== n * n) warnings.push(`occupants received ${presencesReceived} room presences, expected ${n * n}`);
    const join = {
      occupants: n,
      lastSelfPresenceMs: round3(last ? last.selfPresenceMs : created.selfPresenceMs),
      lastSubjectMs: round3(last ? (last.subjectMs ?? NaN) : NaN),
      subject: summarizeMs(joins.map((j) => j.subjectMs ?? 0)),
      createMs: round3(created.selfPresenceMs),
      configureMs: round3(created.configureMs ?? NaN),
      seconds: round2((performance.now() - tJoin) / 1000),
      presencesReceived,
      presencesExpected: n * n,
    };
    ctx.progress(`${label}: ${n} occupants joined in ${join.seconds} s; last occupant: self-presence ${join.lastSelfPresenceMs} ms, subject ${join.lastSubjectMs} ms`);

    // --- messages
    const { messages, generator, server } = await messagePhase(ctx, pool, {
      kind: 'groupchat',
      label,
      runId,
      room,
      jids: [],
      contacts: 0,
      members: n,
      senders: o.senders > 0 ? o.senders : n,
      rate: o.rate,
      warnings,
    });
    return { run, room, login, join, messages, generator, server, warnings };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
