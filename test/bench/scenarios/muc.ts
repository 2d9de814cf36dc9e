/**
 * The muc scenario (docs/benchmarks.md): N occupants log in, the first
 * creates a room (XEP-0045 §10.1.2: enter with the MUC <x/>, submit an
 * empty configuration form), the others enter one after the other; then S
 * senders take turns sending groupchat messages at an offered total rate,
 * and every occupant counts what it receives.
 */
import { randomBytes } from 'node:crypto';
import type { Histogram } from 'hdr-histogram-js';
import { nowNs } from '../client.js';
import type { GroupStats, JoinOutcome, SendOutcome } from '../group.js';
import { Pool } from '../pool.js';
import { decodeHistogram, newHistogram, summarize, summarizeMs, type LatencySummary } from '../stats.js';
import { cpuMark, loginAll, members, round2, sleep, usageBetween, type Context, type GeneratorUsage, type LoginPhase } from './common.js';
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
  messages: {
    senders: number;
    offeredRate: number;
    durationSeconds: number;
    warmupSeconds: number;
    sent: number;
    /** Messages sent per second, as achieved. */
    sentPerSecond: number;
    /** Messages refused by the server (error replies), by condition. */
    errors: number;
    errorsByCondition: Record<string, number>;
    /** (sent − errors) × occupants. */
    expectedDeliveries: number;
    receivedDeliveries: number;
    lostDeliveries: number;
    extraDeliveries: number;
    outOfOrder: number;
    outOfOrderBySender: Record<string, number>;
    duplicates: number;
    /** Deliveries received in the measurement window (after warm-up, until sending stopped) per second. */
    deliveriesPerSecond: number;
    /** Send → receive, every delivery of a message sent after the warm-up, ms. */
    latency: LatencySummary;
    /** How late the generator sent each message against its schedule, ms. */
    sendLag: LatencySummary;
    /** Seconds from the end of sending until the last delivery arrived (or the drain gave up). */
    drainSeconds: number;
    disconnected: number;
    other: Record<string, number>;
  };
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
    const s = o.senders > 0 ? o.senders : n;
    const senderIdx = Array.from({ length: s }, (_, i) => i);
    const w = pool.workers.length;
    const bySender = (g: number): number[] => senderIdx.filter((i) => i % w === g);
    const durationMs = o.messages > 0 ? (o.messages / o.rate) * 1000 : o.duration * 1000;
    const warmupMs = o.warmup * 1000 < durationMs ? o.warmup * 1000 : 0;
    if (ctx.target.mode === 'external' && o.rate / s > 20) {
      warnings.push(`each sender offers ${(o.rate / s).toFixed(1)} msgs/s: servers limit occupants (Hyphae: muc.messagesPerSecond, default 20/s, burst 40)`);
    }
    const startNs = nowNs() + 300e6;
    const windowEndNs = startNs + durationMs * 1e6;
    const warmupEndNs = startNs + warmupMs * 1e6;
    ctx.progress(`${label}: ${s} senders, ${o.rate} msgs/s offered for ${(durationMs / 1000).toFixed(1)} s (${(warmupMs / 1000).toFixed(1)} s warm-up) → ${o.rate * n} deliveries/s expected`);
    // With --messages, split the count like the rate (the first groups take the remainder).
    const counts = Array.from({ length: w }, (_, g) => bySender(g).length);
    const maxMessages = counts.map((c) => Math.floor((o.messages * c) / s));
    for (let g = 0, rest = o.messages - maxMessages.reduce((a, b) => a + b, 0); rest > 0 && o.messages > 0; g = (g + 1) % w) {
      if ((counts[g] as number) > 0) {
        maxMessages[g] = (maxMessages[g] as number) + 1;
        rest--;
      }
    }
    const sending = pool.all('send', (g) => ({
      run: runId,
      room,
      senders: bySender(g),
      rate: (o.rate * (counts[g] as number)) / s,
      startNs,
      durationMs,
      maxMessages: maxMessages[g] as number,
      warmupEndNs,
      bodyBytes: o.bodyBytes,
    }));
    // CPU marks at the start and the end of sending.
    await sleep(Math.max(0, (startNs - nowNs()) / 1e6));
    const markStart = cpuMark(ctx);
    let eluMax = 0;
    let done = false;
    let sendResults: SendOutcome[] = [];
    const sendDone = sending.then((r) => {
      sendResults = r;
      done = true;
    });
    let prev = { sent: 0, received: 0, at: performance.now() };
    while (!done) {
      await Promise.race([sleep(1_000), sendDone]);
      if (done) break;
      const p = await pool.all('progress');
      const now = performance.now();
      const sent = p.reduce((a, x) => a + x.sent, 0);
      const received = p.reduce((a, x) => a + x.received, 0);
      const errors = p.reduce((a, x) => a + x.errors, 0);
      const dt = (now - prev.at) / 1000;
      eluMax = Math.max(eluMax, ...p.map((x) => x.elu));
      ctx.progress(
        `${label}: t=${((nowNs() - startNs) / 1e9).toFixed(1)} s sent ${sent} (${((sent - prev.sent) / dt).toFixed(0)}/s) delivered ${received} (${((received - prev.received) / dt).toFixed(0)}/s) errors ${errors} max latency ${Math.max(...p.map((x) => x.recentMaxMs)).toFixed(1)} ms worker load ${Math.max(...p.map((x) => x.elu)).toFixed(2)}`,
      );
      prev = { sent, received, at: now };
    }
    await sendDone;
    const markEnd = cpuMark(ctx);
    const sendEndNs = nowNs();

    // --- drain: until every expected delivery has arrived, or the drain time is up
    let drainSeconds = 0;
    const drainDeadline = performance.now() + o.drain * 1000;
    for (;;) {
      const p = await pool.all('progress');
      const sent = p.reduce((a, x) => a + x.sent, 0);
      const errors = p.reduce((a, x) => a + x.errors, 0);
      const received = p.reduce((a, x) => a + x.received, 0);
      const expected = (sent - errors) * n;
      if (received >= expected) break;
      if (performance.now() > drainDeadline) {
        ctx.progress(`${label}: drain: ${received} of ${expected} deliveries after ${o.drain} s; giving up`);
        break;
      }
      await sleep(100);
    }
    const stats = await pool.all('stats');
    const lastRx = Math.max(...stats.map((x) => x.lastRxNs));
    drainSeconds = Math.max(0, (lastRx - sendEndNs) / 1e9);
    eluMax = Math.max(eluMax, ...stats.map((x) => x.elu));

    const messages = aggregate(stats, sendResults, n, {
      senders: s,
      offeredRate: o.rate,
      durationSeconds: round2(durationMs / 1000),
      warmupSeconds: round2(warmupMs / 1000),
      windowSeconds: (windowEndNs - warmupEndNs) / 1e9,
      drainSeconds: round2(drainSeconds),
    });
    const { generator, server } = usageBetween(ctx, markStart, markEnd, eluMax, Math.max(...stats.map((x) => Math.max(0, x.loopDelay.p99 - 1))));

    if (messages.lostDeliveries > 0) warnings.push(`${messages.lostDeliveries} deliveries lost (not received ${o.drain} s after sending stopped; --drain)`);
    if (messages.outOfOrder > 0) warnings.push(`${messages.outOfOrder} deliveries out of order`);
    if (messages.errors > 0) warnings.push(`the server refused ${messages.errors} messages: ${JSON.stringify(messages.errorsByCondition)}`);
    if ((messages.errorsByCondition['resource-constraint'] ?? 0) > 0) {
      warnings.push(
        ctx.target.mode === 'external'
          ? 'resource-constraint errors: the server rate-limits occupants (Hyphae: muc.messagesPerSecond); lower --rate per sender or raise the limit'
          : 'resource-constraint errors although the spawned server had muc.messagesPerSecond raised',
      );
    }
    if (generator.maxWorkerElu > 0.9) warnings.push(`a client worker thread was saturated (event-loop utilization ${generator.maxWorkerElu}): the load generator may be the bottleneck; use --workers`);
    if ((messages.sendLag.p99 ?? 0) > 10) warnings.push(`the generator sent late (schedule lag p99 ${messages.sendLag.p99} ms): offered load not met on time`);
    if ((generator.maxWorkerLoopDelayP99 ?? 0) > 10) {
      warnings.push(`a client worker's event loop was delayed (p99 ${generator.maxWorkerLoopDelayP99} ms): measured latencies include up to that much of the tool's own delay (CPU contention or a saturated worker)`);
    }
    if (messages.disconnected > 0) warnings.push(`${messages.disconnected} clients were disconnected`);
    for (const w of warnings) ctx.log(`${label}: WARNING: ${w}`);
    return { run, room, login, join, messages, generator, server, warnings };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function aggregate(
  stats: GroupStats[],
  sends: SendOutcome[],
  n: number,
  p: { senders: number; offeredRate: number; durationSeconds: number; warmupSeconds: number; windowSeconds: number; drainSeconds: number },
): MucRun['messages'] {
  const sum = (pick: (g: GroupStats) => number[]): number[] => {
    const out = new Array<number>(n).fill(0);
    for (const g of stats) pick(g).forEach((v, i) => (out[i] = (out[i] as number) + v));
    return out;
  };
  const sent = sum((g) => g.sentBySender);
  const errors = sum((g) => g.errorsBySender);
  const received = sum((g) => g.receivedFromSender);
  const ooo = sum((g) => g.outOfOrderFromSender);
  const dups = sum((g) => g.duplicatesFromSender);
  let expected = 0;
  let lost = 0;
  let extra = 0;
  for (let i = 0; i < n; i++) {
    const e = ((sent[i] as number) - (errors[i] as number)) * n;
    expected += e;
    const r = received[i] as number;
    if (r < e) lost += e - r;
    else extra += r - e;
  }
  const errorsByCondition: Record<string, number> = {};
  const other: Record<string, number> = {};
  for (const g of stats) {
    for (const [k, v] of Object.entries(g.errorsByCondition)) errorsByCondition[k] = (errorsByCondition[k] ?? 0) + v;
    for (const [k, v] of Object.entries(g.other)) other[k] = (other[k] ?? 0) + v;
  }
  const merge = (encoded: string[]): Histogram => {
    const h = newHistogram();
    for (const e of encoded) {
      const d = decodeHistogram(e);
      h.add(d);
      d.destroy();
    }
    return h;
  };
  const lat = merge(stats.map((g) => g.latency));
  const lag = merge(sends.map((x) => x.lag));
  const totalSent = sent.reduce((a, b) => a + b, 0);
  const firstSend = Math.min(...sends.filter((x) => x.firstSendNs > 0).map((x) => x.firstSendNs));
  const lastSend = Math.max(...sends.map((x) => x.lastSendNs));
  const outOfOrderBySender: Record<string, number> = {};
  ooo.forEach((v, i) => {
    if (v > 0) outOfOrderBySender[String(i)] = v;
  });
  const out: MucRun['messages'] = {
    senders: p.senders,
    offeredRate: p.offeredRate,
    durationSeconds: p.durationSeconds,
    warmupSeconds: p.warmupSeconds,
    sent: totalSent,
    sentPerSecond: round2(lastSend > firstSend ? (totalSent - 1) / ((lastSend - firstSend) / 1e9) : totalSent),
    errors: errors.reduce((a, b) => a + b, 0),
    errorsByCondition,
    expectedDeliveries: expected,
    receivedDeliveries: received.reduce((a, b) => a + b, 0),
    lostDeliveries: lost,
    extraDeliveries: extra,
    outOfOrder: ooo.reduce((a, b) => a + b, 0),
    outOfOrderBySender,
    duplicates: dups.reduce((a, b) => a + b, 0),
    deliveriesPerSecond: round2(stats.reduce((a, g) => a + g.windowDeliveries, 0) / p.windowSeconds),
    latency: summarize(lat),
    sendLag: summarize(lag),
    drainSeconds: p.drainSeconds,
    disconnected: stats.reduce((a, g) => a + g.disconnected, 0),
    other,
  };
  lat.destroy();
  lag.destroy();
  return out;
}
