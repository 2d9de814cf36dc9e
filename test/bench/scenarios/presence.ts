/**
 * The presence scenario: N users whose rosters hold K contacts each, all
 * mutual (`both`, RFC 6121 §3): set up once through the protocol (each pair
 * asks, approves and asks back; pairs already `both` are skipped, so a
 * rerun against the same server does nothing). Then every user logs out
 * and in again, with roster get and initial presence, and the tool counts
 * the contacts' presences that arrive (the server's broadcasts and probe
 * answers: N × K when every user is back). Then users change status
 * (`<presence><status/></presence>`) at an offered rate stepped up through
 * --rate; each change is delivered to the K contacts.
 */
import { randomBytes } from 'node:crypto';
import { Pool } from '../pool.js';
import { loginAll, members, round2, sleep, type Context, type LoginPhase } from './common.js';
import { messagePhase } from './messaging.js';
import { stepUp, type MessageStep } from './chat.js';

export interface PresenceRun {
  run: number;
  roster: { pairs: number; asked: number; already: number; seconds: number };
  login: LoginPhase;
  initial: {
    /** Available presences of contacts received during and after the login. */
    received: number;
    /** Distinct (user, contact) pairs among them: N × K expected. */
    pairs: number;
    expected: number;
    /** From the first login until the last expected presence arrived (or the wait gave up). */
    seconds: number;
  };
  steps: MessageStep[];
  warnings: string[];
}

export async function presenceRun(ctx: Context, run: number): Promise<PresenceRun> {
  const o = ctx.opts;
  const n = o.users;
  const k = o.contacts;
  const label = `presence run ${run}/${o.runs}`;
  const warnings: string[] = [];
  const runId = `${randomBytes(3).toString('hex')}${run}`;
  const init = { domain: ctx.target.domain, occupants: n, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource };
  const list = members(ctx, n);
  const jids = list.map((m) => `${m.username}@${ctx.target.domain}`);

  // --- rosters: every ring pair (i, i+d), d = 1 … K/2, asked by i
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) for (let d = 1; d <= k / 2; d++) pairs.push([i, (i + d) % n]);
  let pool = Pool.start(o.workers, init);
  const t0 = performance.now();
  let asked = 0;
  let already = 0;
  try {
    await loginAll(ctx, pool, list, `${label} (roster setup)`);
    const w = pool.workers.length;
    const r = await pool.all('subscribe', (g) => ({ pairs: pairs.filter(([i]) => i % w === g), jids }));
    asked = r.reduce((a, x) => a + x.asked, 0);
    already = r.reduce((a, x) => a + x.already, 0);
    ctx.progress(`${label}: ${asked} subscriptions asked, ${already} already mutual`);
    // Servers that rewrite a whole roster per change (Prosody's file storage) take minutes for
    // 50-contact rosters, and ejabberd on one core shows no roster push at all for its first
    // minute of the 10,000 handshakes; give up only when nothing has moved for five minutes.
    let stalledSince = performance.now();
    let lastMutual = -1;
    for (let last = 0; ; ) {
      const st = (await pool.all('rosterStatus')).flatMap((x) => Object.values(x));
      const complete = st.filter((b) => b >= k).length;
      const mutual = st.reduce((a, b) => a + b, 0);
      if (complete === n) break;
      if (mutual !== lastMutual) {
        lastMutual = mutual;
        stalledSince = performance.now();
      } else if (performance.now() - stalledSince > Math.max(300_000, o.timeoutMs)) {
        throw new Error(`roster setup: no progress for ${Math.round((performance.now() - stalledSince) / 1000)} s; ${complete} of ${n} users have ${k} mutual contacts (${mutual / 2} of ${pairs.length} pairs)`);
      }
      if (performance.now() - last > 5_000) {
        last = performance.now();
        ctx.progress(`${label}: rosters: ${mutual / 2}/${pairs.length} pairs mutual, ${complete}/${n} users complete`);
      }
      await sleep(200);
    }
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
  const roster = { pairs: pairs.length, asked, already, seconds: round2((performance.now() - t0) / 1000) };
  ctx.progress(`${label}: rosters ready in ${roster.seconds} s`);
  await sleep(1_000);

  // --- log in again: initial presence broadcast and probes
  pool = Pool.start(o.workers, init);
  try {
    const tLogin = performance.now();
    const login = await loginAll(ctx, pool, list, label);
    const expected = n * k;
    let received = 0;
    let seen = 0;
    const waitUntil = performance.now() + 30_000;
    for (;;) {
      const c = await pool.all('contactPresences');
      received = c.reduce((a, b) => a + b.received, 0);
      seen = c.reduce((a, b) => a + b.pairs, 0);
      if (seen >= expected || performance.now() > waitUntil) break;
      await sleep(100);
    }
    const initial = { received, pairs: seen, expected, seconds: round2((performance.now() - tLogin) / 1000) };
    if (seen < expected) warnings.push(`initial presence: ${seen} of ${expected} (user, contact) presences arrived`);
    ctx.progress(`${label}: initial presence: ${seen}/${expected} (user, contact) pairs, ${received} presences in ${initial.seconds} s`);

    // --- status changes, stepped up
    const steps = await stepUp(ctx, label, k, async (rate, step) => {
      const r = await messagePhase(ctx, pool, {
        kind: 'presence',
        label: `${label} step ${step + 1}`,
        runId: `${runId}s${step}`,
        room: '',
        jids,
        contacts: k,
        members: n,
        senders: o.senders > 0 ? o.senders : n,
        rate,
        warnings,
      });
      return { offered: rate, ...r };
    });
    return { run, roster, login, initial, steps, warnings };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}

