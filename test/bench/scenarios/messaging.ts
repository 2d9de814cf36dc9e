/**
 * The send phase the muc, chat and presence scenarios share: senders take
 * turns sending marked stanzas at an offered total rate (open loop), every
 * member counts what it receives per sender, then the tool waits for the
 * outstanding deliveries and adds up loss, order and latency.
 *
 * Deliveries per stanza ("fan-out"): groupchat → every occupant, chat → the
 * one contact it was sent to, presence → every contact of the sender.
 */
import type { Histogram } from 'hdr-histogram-js';
import { nowNs } from '../client.js';
import type { GroupStats, SendKind, SendOutcome } from '../group.js';
import type { Pool } from '../pool.js';
import type { ServerUsage } from '../proc.js';
import { decodeHistogram, newHistogram, summarize, type LatencySummary } from '../stats.js';
import { RedisCommands, routeCacheLookups } from '../redis-stats.js';
import { cpuMark, round2, sleep, usageBetween, type Context, type GeneratorUsage } from './common.js';

export interface MessagesPhase {
  kind: SendKind;
  senders: number;
  offeredRate: number;
  durationSeconds: number;
  warmupSeconds: number;
  sent: number;
  /** Stanzas sent per second, as achieved. */
  sentPerSecond: number;
  /** Stanzas refused by the server (error replies), by condition. */
  errors: number;
  errorsByCondition: Record<string, number>;
  /** (sent − errors) × fan-out. */
  expectedDeliveries: number;
  receivedDeliveries: number;
  lostDeliveries: number;
  extraDeliveries: number;
  outOfOrder: number;
  outOfOrderBySender: Record<string, number>;
  duplicates: number;
  /** Deliveries received in the measurement window (after warm-up, until sending stopped) per second. */
  deliveriesPerSecond: number;
  /** Send → receive, every delivery of a stanza sent after the warm-up, ms. */
  latency: LatencySummary;
  /** How late the generator sent each stanza against its schedule, ms. */
  sendLag: LatencySummary;
  /** Seconds from the end of sending until the last delivery arrived (or the drain gave up). */
  drainSeconds: number;
  disconnected: number;
  other: Record<string, number>;
  /**
   * Cluster with --redis-port: Redis commands during sending per stanza
   * sent and per delivery (null when not measured). Includes the cluster's
   * background work (leases, heartbeats) in that window.
   */
  redis: { commands: number; perStanza: number; perDelivery: number } | null;
  /** With metrics ports: the routers' session-cache lookups during sending (hit rate 0…1). */
  routeCache: { hits: number; misses: number; hitRate: number } | null;
}

export interface PhaseSpec {
  kind: SendKind;
  label: string;
  runId: string;
  /** groupchat: the room. */
  room: string;
  /** chat: bare JIDs by member index. */
  jids: string[];
  /** chat, presence: contacts per member. */
  contacts: number;
  /** Members logged in (indices 0 … members-1). */
  members: number;
  /** Members 0 … senders-1 send, in turn. */
  senders: number;
  rate: number;
  warnings: string[];
}

export interface PhaseResult {
  messages: MessagesPhase;
  generator: GeneratorUsage;
  server: ServerUsage;
}

/** Deliveries each stanza should make. */
function fanout(spec: PhaseSpec): number {
  return spec.kind === 'groupchat' ? spec.members : spec.kind === 'chat' ? 1 : spec.contacts;
}

export async function messagePhase(ctx: Context, pool: Pool, spec: PhaseSpec): Promise<PhaseResult> {
  const o = ctx.opts;
  const { label, warnings } = spec;
  const n = spec.members;
  const s = spec.senders;
  const fan = fanout(spec);
  const senderIdx = Array.from({ length: s }, (_, i) => i);
  const w = pool.workers.length;
  const bySender = (g: number): number[] => senderIdx.filter((i) => i % w === g);
  const durationMs = o.messages > 0 ? (o.messages / spec.rate) * 1000 : o.duration * 1000;
  const warmupMs = o.warmup * 1000 < durationMs ? o.warmup * 1000 : 0;
  if (spec.kind === 'groupchat' && ctx.target.mode === 'external' && spec.rate / s > 20) {
    warnings.push(`each sender offers ${(spec.rate / s).toFixed(1)} msgs/s: servers limit occupants (Hyphae: muc.messagesPerSecond, default 20/s, burst 40)`);
  }
  const startNs = nowNs() + 300e6;
  const windowEndNs = startNs + durationMs * 1e6;
  const warmupEndNs = startNs + warmupMs * 1e6;
  const what = spec.kind === 'presence' ? 'presence changes/s' : 'msgs/s';
  ctx.progress(`${label}: ${s} senders, ${spec.rate} ${what} offered for ${(durationMs / 1000).toFixed(1)} s (${(warmupMs / 1000).toFixed(1)} s warm-up) → ${spec.rate * fan} deliveries/s expected`);
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
    kind: spec.kind,
    run: spec.runId,
    room: spec.room,
    jids: spec.jids,
    contacts: spec.contacts,
    senders: bySender(g),
    rate: (spec.rate * (counts[g] as number)) / s,
    startNs,
    durationMs,
    maxMessages: maxMessages[g] as number,
    warmupEndNs,
    bodyBytes: o.bodyBytes,
  }));
  // CPU marks (and Redis command counts) at the start and the end of sending.
  const redis = ctx.target.redisPort ? new RedisCommands(ctx.target.redisPort) : null;
  const redisStart = redis ? await redis.total() : 0;
  const ports = ctx.target.metricsPorts;
  const cacheStart = ports.length ? await routeCacheLookups(ports).catch(() => null) : null;
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
  // One INFO call each side: subtract the first one's own command.
  const redisCommands = redis ? (await redis.total()) - redisStart - 1 : null;
  await redis?.close();
  const cacheEnd = cacheStart ? await routeCacheLookups(ports).catch(() => null) : null;

  // --- drain: until every expected delivery has arrived, or the drain time is up
  const drainDeadline = performance.now() + o.drain * 1000;
  for (;;) {
    const p = await pool.all('progress');
    const sent = p.reduce((a, x) => a + x.sent, 0);
    const errors = p.reduce((a, x) => a + x.errors, 0);
    const received = p.reduce((a, x) => a + x.received, 0);
    const expected = (sent - errors) * fan;
    if (received >= expected) break;
    if (performance.now() > drainDeadline) {
      ctx.progress(`${label}: drain: ${received} of ${expected} deliveries after ${o.drain} s; giving up`);
      break;
    }
    await sleep(100);
  }
  const stats = await pool.all('stats');
  const lastRx = Math.max(...stats.map((x) => x.lastRxNs));
  const drainSeconds = Math.max(0, (lastRx - sendEndNs) / 1e9);
  eluMax = Math.max(eluMax, ...stats.map((x) => x.elu));

  const messages = aggregate(stats, sendResults, n, fan, {
    kind: spec.kind,
    senders: s,
    offeredRate: spec.rate,
    durationSeconds: round2(durationMs / 1000),
    warmupSeconds: round2(warmupMs / 1000),
    windowSeconds: (windowEndNs - warmupEndNs) / 1e9,
    drainSeconds: round2(drainSeconds),
  });
  if (redisCommands !== null) {
    messages.redis = {
      commands: redisCommands,
      perStanza: round2(redisCommands / Math.max(1, messages.sent)),
      perDelivery: Math.round((redisCommands / Math.max(1, messages.receivedDeliveries)) * 1000) / 1000,
    };
  }
  if (cacheStart && cacheEnd) {
    const hits = cacheEnd.hits - cacheStart.hits;
    const misses = cacheEnd.misses - cacheStart.misses;
    messages.routeCache = { hits, misses, hitRate: hits + misses > 0 ? Math.round((hits / (hits + misses)) * 1000) / 1000 : 0 };
  }
  const { generator, server } = usageBetween(ctx, markStart, markEnd, eluMax, Math.max(...stats.map((x) => Math.max(0, x.loopDelay.p99 - 1))));

  const before = warnings.length;
  if (messages.lostDeliveries > 0) warnings.push(`${messages.lostDeliveries} deliveries lost (not received ${o.drain} s after sending stopped; --drain)`);
  if (messages.outOfOrder > 0) warnings.push(`${messages.outOfOrder} deliveries out of order`);
  if (messages.errors > 0) warnings.push(`the server refused ${messages.errors} stanzas: ${JSON.stringify(messages.errorsByCondition)}`);
  if ((messages.errorsByCondition['resource-constraint'] ?? 0) > 0) {
    warnings.push(
      ctx.target.mode === 'external'
        ? 'resource-constraint errors: the server rate-limits senders (Hyphae: muc.messagesPerSecond); lower --rate per sender or raise the limit'
        : 'resource-constraint errors although the spawned server had its rate limits raised',
    );
  }
  if (generator.maxWorkerElu > 0.9) warnings.push(`a client worker thread was saturated (event-loop utilization ${generator.maxWorkerElu}): the load generator may be the bottleneck; use --workers`);
  if ((messages.sendLag.p99 ?? 0) > 10) warnings.push(`the generator sent late (schedule lag p99 ${messages.sendLag.p99} ms): offered load not met on time`);
  if ((generator.maxWorkerLoopDelayP99 ?? 0) > 10) {
    warnings.push(`a client worker's event loop was delayed (p99 ${generator.maxWorkerLoopDelayP99} ms): measured latencies include up to that much of the tool's own delay (CPU contention or a saturated worker)`);
  }
  if (messages.disconnected > 0) warnings.push(`${messages.disconnected} clients were disconnected`);
  for (const x of warnings.slice(before)) ctx.log(`${label}: WARNING: ${x}`);
  return { messages, generator, server };
}

function aggregate(
  stats: GroupStats[],
  sends: SendOutcome[],
  n: number,
  fan: number,
  p: { kind: SendKind; senders: number; offeredRate: number; durationSeconds: number; warmupSeconds: number; windowSeconds: number; drainSeconds: number },
): MessagesPhase {
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
    const e = ((sent[i] as number) - (errors[i] as number)) * fan;
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
  const out: MessagesPhase = {
    kind: p.kind,
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
    redis: null,
    routeCache: null,
  };
  lat.destroy();
  lag.destroy();
  return out;
}
