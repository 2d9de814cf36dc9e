/**
 * The login scenario: logins arrive at an offered rate (open loop: one
 * starts every 1/rate seconds whatever the server does), each the whole
 * connection setup (TCP, STARTTLS, SCRAM, bind, roster get, initial
 * presence) and then a stream close; the rate steps up through --rate.
 * Accounts are reused in turn, each login with a fresh resource.
 */
import type { Histogram } from 'hdr-histogram-js';
import { nowNs } from '../client.js';
import { Pool } from '../pool.js';
import type { ServerUsage } from '../proc.js';
import type { LoadStep } from '../results.js';
import { decodeHistogram, newHistogram, summarize, type LatencySummary } from '../stats.js';
import { cpuMark, members, round2, sleep, usageBetween, type Context, type GeneratorUsage } from './common.js';
import { keepStepping } from './steps.js';

export interface LoginStep {
  offered: number;
  attempted: number;
  completed: number;
  failed: number;
  errors: Record<string, number>;
  /** Completed logins per second: completed ÷ (last completion − first start). */
  perSecond: number;
  total: LatencySummary;
  steps: { connect: LatencySummary; tls: LatencySummary; auth: LatencySummary; bind: LatencySummary; roster: LatencySummary };
  generator: GeneratorUsage;
  server: ServerUsage;
}

export interface LoginRun {
  run: number;
  steps: LoginStep[];
  warnings: string[];
}

export function loginLoadStep(s: LoginStep): LoadStep {
  return { offered: s.offered, achieved: s.perSecond, latency: s.total, lost: s.failed, errors: 0, serverCores: s.server.processes.length ? s.server.cores : null };
}

export async function loginRun(ctx: Context, run: number): Promise<LoginRun> {
  const o = ctx.opts;
  const label = `login run ${run}/${o.runs}`;
  const list = members(ctx, o.users);
  const pool = Pool.start(o.workers, { domain: ctx.target.domain, occupants: o.users, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource });
  const steps: LoginStep[] = [];
  const w = pool.workers.length;
  try {
    for (let i = 0; i < o.rates.length; i++) {
      const rate = o.rates[i] as number;
      const startNs = nowNs() + 200e6;
      ctx.progress(`${label} step ${i + 1}: ${rate} logins/s for ${o.duration} s`);
      await sleep(Math.max(0, (startNs - nowNs()) / 1e6));
      const a = cpuMark(ctx);
      const waves = await pool.all('loginWave', (g) => ({
        members: list.filter((m) => m.idx % w === g),
        rate: rate / w,
        startNs,
        durationMs: o.duration * 1000,
        resourcePrefix: `r${run}s${i}w${g}n`,
        maxInFlight: Math.max(200, Math.ceil((rate * 10) / w)),
      }));
      const b = cpuMark(ctx);
      const elu = Math.max(...(await pool.all('progress')).map((p) => p.elu));
      const merged = (k: string): LatencySummary => {
        const h: Histogram = newHistogram();
        for (const wv of waves) {
          const d = decodeHistogram(wv.hist[k] as string);
          h.add(d);
          d.destroy();
        }
        const s = summarize(h);
        h.destroy();
        return s;
      };
      const completed = waves.reduce((x, v) => x + v.completed, 0);
      const failed = waves.reduce((x, v) => x + v.failed, 0);
      const errors: Record<string, number> = {};
      for (const v of waves) for (const [k, c] of Object.entries(v.errors)) errors[k] = (errors[k] ?? 0) + c;
      const lastDone = Math.max(...waves.map((v) => v.lastDoneNs));
      const { generator, server } = usageBetween(ctx, a, b, elu);
      const step: LoginStep = {
        offered: rate,
        attempted: waves.reduce((x, v) => x + v.attempted, 0),
        completed,
        failed,
        errors,
        perSecond: round2(lastDone > startNs ? completed / ((lastDone - startNs) / 1e9) : 0),
        total: merged('total'),
        steps: { connect: merged('connect'), tls: merged('tls'), auth: merged('auth'), bind: merged('bind'), roster: merged('roster') },
        generator,
        server,
      };
      steps.push(step);
      const ls = loginLoadStep(step);
      ctx.log(
        `${label}: ${rate}/s offered → ${step.perSecond}/s completed (${completed}/${step.attempted}, ${failed} failed), p50 ${step.total.p50} ms, p99 ${step.total.p99} ms, server ${step.server.cores} cores` +
          (failed ? `; failures: ${JSON.stringify(errors)}` : ''),
      );
      if (!keepStepping(ls, o.stopP99, rate)) {
        if (i < o.rates.length - 1) ctx.log(`${label}: stopping here (p99 above ${o.stopP99} ms, completions below 80% of the offer, or failures)`);
        break;
      }
      await sleep(1_000);
    }
    const warnings = steps.filter((s) => s.failed > 0).map((s) => `${s.failed} of ${s.attempted} logins failed at ${s.offered}/s: ${JSON.stringify(s.errors)}`);
    return { run, steps, warnings };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}
