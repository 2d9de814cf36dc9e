/**
 * The idle scenario: N authenticated TLS sessions (roster fetched, initial
 * presence sent) sit idle while the server is sampled. Memory per session
 * is the growth of the server's RSS (all its processes) from before the
 * logins to the end of the idle period, divided by N; CPU at rest is the
 * server's CPU over the idle period (keepalives, timers, GC).
 */
import { Pool } from '../pool.js';
import { rssBytes } from '../proc.js';
import type { ServerUsage } from '../proc.js';
import { cpuMark, loginAll, members, round2, sleep, usageBetween, type Context, type LoginPhase } from './common.js';

export interface IdleRun {
  run: number;
  sessions: number;
  login: LoginPhase;
  /** Server RSS (sum over its processes) before the logins and at the end of the idle period, bytes. */
  rssBeforeBytes: number;
  rssIdleBytes: number;
  rssPerSessionKiB: number;
  idle: { seconds: number; server: ServerUsage };
  /** The load tool's own RSS with every session open, bytes. */
  generatorRssBytes: number;
  warnings: string[];
}

export async function idleRun(ctx: Context, run: number): Promise<IdleRun> {
  const o = ctx.opts;
  const label = `idle run ${run}/${o.runs}`;
  const rss = (): number => ctx.target.watched.reduce((a, w) => a + (rssBytes(w.pid) ?? 0), 0);
  const warnings: string[] = [];
  if (ctx.target.watched.length === 0) warnings.push('no server process to sample (--server-pid): no memory figures');
  const rssBeforeBytes = rss();
  const pool = Pool.start(o.workers, { domain: ctx.target.domain, occupants: o.users, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource });
  try {
    const login = await loginAll(ctx, pool, members(ctx, o.users), label);
    // Let the logins' garbage settle before the idle window starts.
    await sleep(2_000);
    const a = cpuMark(ctx);
    const samples: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < o.idle * 1000) {
      await sleep(500);
      samples.push(rss());
      ctx.progress(`${label}: ${o.users} sessions idle, server RSS ${(rss() / 2 ** 20).toFixed(1)} MiB`);
    }
    const b = cpuMark(ctx);
    const elu = Math.max(...(await pool.all('progress')).map((p) => p.elu));
    const { server } = usageBetween(ctx, a, b, elu);
    // The median of the idle samples: RSS moves with GC; the middle value is what it holds.
    const sorted = samples.sort((x, y) => x - y);
    const rssIdleBytes = sorted.length ? (sorted[Math.floor(sorted.length / 2)] as number) : rss();
    const progress = await pool.all('progress');
    const dropped = progress.reduce((x, p) => x + p.disconnected, 0);
    if (dropped > 0) warnings.push(`${dropped} sessions were disconnected while idle`);
    const perSession = (rssIdleBytes - rssBeforeBytes) / Math.max(1, login.users) / 1024;
    ctx.progress(`${label}: ${login.users} sessions: RSS ${(rssBeforeBytes / 2 ** 20).toFixed(1)} → ${(rssIdleBytes / 2 ** 20).toFixed(1)} MiB = ${perSession.toFixed(1)} KiB per session; CPU at rest ${server.cores} cores`);
    return {
      run,
      sessions: login.users - dropped,
      login,
      rssBeforeBytes,
      rssIdleBytes,
      rssPerSessionKiB: round2(perSession),
      idle: { seconds: round2(o.idle), server },
      generatorRssBytes: process.memoryUsage().rss,
      warnings,
    };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}
