/**
 * What every scenario gets from the runner, and the steps they share.
 */
import type { Options } from '../options.js';
import type { Target } from '../target.js';
import type { ProcSampler, ServerUsage, Snapshot } from '../proc.js';
import type { Pool } from '../pool.js';
import type { Member, LoginOutcome } from '../group.js';
import type { Account } from '../provision.js';
import { summarizeMs, type LatencySummary } from '../stats.js';

export interface Context {
  opts: Options;
  target: Target;
  sampler: ProcSampler;
  /** A line on stderr (always). */
  log(line: string): void;
  /** A progress line on stderr (not with --quiet). */
  progress(line: string): void;
  accounts: Account[];
}

/** Client-side resource use of the load generator over a window. */
export interface GeneratorUsage {
  /** CPU seconds of the whole tool process (all threads) in the window. */
  cpuSeconds: number;
  /** Average cores the tool used (1.0 = one core). */
  cores: number;
  /** Highest event-loop utilization of a worker thread in the window (1.0 = saturated). */
  maxWorkerElu: number;
  /**
   * Worst worker event-loop delay p99 over the send and drain phases, ms
   * (beyond the 1 ms sampling step): an upper bound on how much the tool's
   * own scheduling adds to a measured latency. Null where not measured.
   */
  maxWorkerLoopDelayP99: number | null;
  workers: number;
}

export interface CpuMark {
  usage: NodeJS.CpuUsage;
  at: number;
  server: Snapshot;
}

export function cpuMark(ctx: Context): CpuMark {
  return { usage: process.cpuUsage(), at: performance.now(), server: ctx.sampler.snapshot() };
}

export function usageBetween(ctx: Context, a: CpuMark, b: CpuMark, maxWorkerElu: number, loopDelayP99: number | null = null): { generator: GeneratorUsage; server: ServerUsage } {
  const secs = (b.at - a.at) / 1000;
  const cpu = (b.usage.user - a.usage.user + (b.usage.system - a.usage.system)) / 1e6;
  return {
    generator: { cpuSeconds: round2(cpu), cores: round2(secs > 0 ? cpu / secs : 0), maxWorkerElu: round2(maxWorkerElu), maxWorkerLoopDelayP99: loopDelayP99 === null ? null : round2(loopDelayP99), workers: ctx.opts.workers },
    server: ctx.sampler.usage(a.server, b.server),
  };
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Members (account + endpoint) for the first `n` accounts, spread round-robin over the c2s endpoints. */
export function members(ctx: Context, n: number): Member[] {
  const eps = ctx.target.endpoints;
  return ctx.accounts.slice(0, n).map((a) => ({ ...a, endpoint: eps[a.idx % eps.length] as (typeof eps)[number] }));
}

export interface LoginPhase {
  users: number;
  seconds: number;
  /** Completed logins per second over the phase. */
  perSecond: number;
  /** Whole login (TCP connect → bind result), ms. */
  total: LatencySummary;
  /** Steps: TCP connect, STARTTLS, SASL, bind, roster get (ms). */
  steps: { connect: LatencySummary; tls: LatencySummary; auth: LatencySummary; bind: LatencySummary; roster: LatencySummary };
}

/** Logs `list` in, spread over the pool's workers; throws if any login fails. */
export async function loginAll(ctx: Context, pool: Pool, list: Member[], label: string): Promise<LoginPhase> {
  const w = pool.workers.length;
  const t0 = performance.now();
  const ticker = setInterval(() => ctx.progress(`${label}: logging in … ${((performance.now() - t0) / 1000).toFixed(0)} s`), 2_000);
  let results: LoginOutcome[][];
  try {
    results = await pool.all('login', (i) => ({
      members: list.filter((m) => m.idx % w === i),
      concurrency: Math.max(1, Math.ceil(ctx.opts.loginConcurrency / w)),
    }));
  } finally {
    clearInterval(ticker);
  }
  const seconds = (performance.now() - t0) / 1000;
  const flat = results.flat();
  const done = flat.filter((r) => r.timings).length;
  const failed = flat.filter((r) => r.error);
  if (failed.length > 0) {
    throw new Error(`${failed.length} of ${list.length} logins failed; first: user ${failed[0]?.idx}: ${failed[0]?.error}`);
  }
  const t = flat.map((r) => r.timings).filter((x): x is NonNullable<typeof x> => x !== undefined);
  const phase: LoginPhase = {
    users: done,
    seconds: round2(seconds),
    perSecond: round2(done / seconds),
    total: summarizeMs(t.map((x) => x.total)),
    steps: {
      connect: summarizeMs(t.map((x) => x.connect)),
      tls: summarizeMs(t.map((x) => x.tls)),
      auth: summarizeMs(t.map((x) => x.auth)),
      bind: summarizeMs(t.map((x) => x.bind)),
      roster: summarizeMs(t.map((x) => x.roster)),
    },
  };
  ctx.progress(`${label}: ${done} logged in in ${seconds.toFixed(1)} s (${phase.perSecond}/s), login p50 ${phase.total.p50} ms, p99 ${phase.total.p99} ms`);
  return phase;
}
