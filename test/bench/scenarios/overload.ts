/**
 * The overload scenario (issue 21, "overload degrades, never drops"): the
 * server on few cores (`--server-cpus`, one by default when the tool
 * spawns it), logins at an offered rate above what it sustains (--rate,
 * open loop), each a real client's login followed by its initial presence;
 * the sessions stay connected to the end. Every login and every echo of an
 * initial presence is accounted for (overload-wave.ts): the server may be
 * late, refuse, or answer with an error, but nothing may vanish (lost = 0).
 */
import { spawnSync } from 'node:child_process';
import type { Histogram } from 'hdr-histogram-js';
import { nowNs } from '../client.js';
import { Pool } from '../pool.js';
import { machineInfo, type ServerUsage } from '../proc.js';
import { addTally, emptyTally, type OverloadHist, type Tally } from '../overload-wave.js';
import { decodeHistogram, newHistogram, summarize, type LatencySummary } from '../stats.js';
import { cpuMark, members, round2, sleep, usageBetween, type Context, type GeneratorUsage } from './common.js';

export interface OverloadRun extends Tally {
  run: number;
  /** Offered logins/s. */
  offered: number;
  attempted: number;
  /** Logins completed per second: logged in ÷ (last login done − start). */
  loginsPerSecond: number;
  /** Whole login (TCP connect → roster result), ms. */
  loginLatency: LatencySummary;
  /** Its steps: TCP connect, STARTTLS (with the stream restart), SASL, bind, roster get (ms). */
  loginSteps: Record<'connect' | 'tls' | 'auth' | 'bind' | 'roster', LatencySummary>;
  /** Initial presence sent → its echo, ms. */
  echoLatency: LatencySummary;
  /** A few full JIDs whose echo was lost. */
  lostEchoes: string[];
  /** CPUs the server processes were pinned to, and the tool's (taskset lists), or null. */
  serverCpus: string | null;
  toolCpus: string | null;
  server: ServerUsage;
  generator: GeneratorUsage;
  warnings: string[];
}

/** Lost logins and echoes of a run: the figure that must be 0. */
export const lostOf = (r: Tally): number => r.login.lost + r.echo.lost;

function taskset(pid: number, cpus: string): string | null {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr || r.error?.message || 'taskset failed').trim();
}

/**
 * Pins every thread of the server processes to `--server-cpus` and this
 * tool (workers included: they start later and inherit it) to the other
 * CPUs, as `compare` pins the servers it measures.
 */
function pinProcesses(ctx: Context, warnings: string[]): { serverCpus: string | null; toolCpus: string | null } {
  const cpus = ctx.opts.serverCpus;
  if (cpus === null || cpus === 'none') return { serverCpus: null, toolCpus: null };
  if (spawnSync('taskset', ['-V']).status !== 0) {
    warnings.push('taskset is not available: nothing pinned');
    return { serverCpus: null, toolCpus: null };
  }
  if (ctx.target.watched.length === 0) warnings.push('no server process known (--server-pid): the server is not pinned');
  for (const w of ctx.target.watched) {
    const err = taskset(w.pid, cpus);
    if (err) warnings.push(`pinning ${w.label} [${w.pid}]: ${err}`);
  }
  const taken = new Set(cpus.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a] : Array.from({ length: (b as number) - (a as number) + 1 }, (_, i) => (a as number) + i);
  }));
  const rest = Array.from({ length: machineInfo().nproc }, (_, i) => i).filter((c) => !taken.has(c));
  if (rest.length === 0) return { serverCpus: cpus, toolCpus: null };
  const toolCpus = rest.join(',');
  const err = taskset(process.pid, toolCpus);
  if (err) warnings.push(`pinning the load tool: ${err}`);
  return { serverCpus: cpus, toolCpus: err ? null : toolCpus };
}

export async function overloadRun(ctx: Context, run: number): Promise<OverloadRun> {
  const o = ctx.opts;
  const label = `overload run ${run}/${o.runs}`;
  const warnings: string[] = [];
  const pinned = pinProcesses(ctx, warnings);
  if (pinned.serverCpus) ctx.log(`${label}: server pinned to CPU ${pinned.serverCpus}${pinned.toolCpus ? `, the tool to ${pinned.toolCpus}` : ''}`);
  const list = members(ctx, o.users);
  const pool = Pool.start(o.workers, { domain: ctx.target.domain, occupants: o.users, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource });
  const w = pool.workers.length;
  try {
    const startNs = nowNs() + 200e6;
    ctx.progress(`${label}: ${o.users} logins at ${o.rate}/s, each waiting up to ${o.drain} s for its presence echo`);
    const a = cpuMark(ctx);
    const ticker = setInterval(() => ctx.progress(`${label}: ${((nowNs() - startNs) / 1e9).toFixed(0)} s …`), 5_000);
    let waves;
    try {
      waves = await pool.all('overloadWave', (g) => ({
        members: list.filter((m) => m.idx % w === g),
        rate: o.rate / w,
        startNs,
        count: list.filter((m) => m.idx % w === g).length,
        resourcePrefix: `o${run}w${g}n`,
        echoTimeoutMs: o.drain * 1000,
      }));
    } finally {
      clearInterval(ticker);
    }
    const b = cpuMark(ctx);
    const elu = Math.max(...(await pool.all('progress')).map((p) => p.elu));
    const merged = (k: OverloadHist): LatencySummary => {
      const h: Histogram = newHistogram();
      for (const v of waves) {
        const d = decodeHistogram(v.hist[k]);
        h.add(d);
        d.destroy();
      }
      const s = summarize(h);
      h.destroy();
      return s;
    };
    const tally = emptyTally();
    for (const v of waves) addTally(tally, v);
    const lastLogin = Math.max(...waves.map((v) => v.lastLoginNs));
    const { generator, server } = usageBetween(ctx, a, b, elu);
    const r: OverloadRun = {
      run,
      offered: o.rate,
      attempted: waves.reduce((x, v) => x + v.attempted, 0),
      ...tally,
      loginsPerSecond: round2(lastLogin > startNs ? tally.login.in / ((lastLogin - startNs) / 1e9) : 0),
      loginLatency: merged('login'),
      loginSteps: { connect: merged('connect'), tls: merged('tls'), auth: merged('auth'), bind: merged('bind'), roster: merged('roster') },
      echoLatency: merged('echo'),
      lostEchoes: waves.flatMap((v) => v.lostEchoes).slice(0, 10),
      serverCpus: pinned.serverCpus,
      toolCpus: pinned.toolCpus,
      server,
      generator,
      warnings,
    };
    ctx.log(
      `${label}: ${r.attempted} logins offered at ${o.rate}/s → ${r.login.in} logged in (${r.loginsPerSecond}/s), ${r.login.refused} refused, ${r.login.lost} lost; ` +
        `echoes: ${r.echo.echoed} echoed, ${r.echo.error} errors, ${r.echo.lost} lost; server ${server.cores} cores`,
    );
    const p50s = Object.entries(r.loginSteps).map(([k, v]) => `${k} ${v.p50 ?? '-'}`).join(', ');
    ctx.log(`${label}: login p50 ${r.loginLatency.p50} ms (${p50s}), p99 ${r.loginLatency.p99} ms; echo p50 ${r.echoLatency.p50} ms, p99 ${r.echoLatency.p99} ms`);
    if (Object.keys(r.login.reasons).length) ctx.log(`${label}: logins not made: ${JSON.stringify(r.login.reasons)}`);
    if (Object.keys(r.echo.reasons).length) ctx.log(`${label}: echoes not received: ${JSON.stringify(r.echo.reasons)}`);
    if (lostOf(r) > 0) warnings.push(`${r.login.lost} logins and ${r.echo.lost} presence echoes lost (e.g. ${r.lostEchoes.slice(0, 3).join(', ')})`);
    return r;
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
    await sleep(200);
  }
}
