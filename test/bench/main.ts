/**
 * Hyphae's load tool: `npm run bench -- <scenario> [options]` (see
 * docs/benchmarks.md and `--help`). Progress goes to stderr, a summary line
 * per metric to stdout at the end, the full results to `--json <file>`.
 *
 * Exit status: 0 when every run completed with nothing lost or out of
 * order, 2 when deliveries were lost or reordered, 1 on any other failure.
 */
import { writeFileSync } from 'node:fs';
import { parseOptions, USAGE, UsageRequest, type Options } from './options.js';
import { openTarget, spawnConfig, type Target } from './target.js';
import { ProcSampler, machineInfo } from './proc.js';
import { accounts, provision } from './provision.js';
import { sleep, type Context } from './scenarios/common.js';
import { mucRun } from './scenarios/muc.js';
import { loginLoadStep, loginRun } from './scenarios/login.js';
import { chatRun, loadStep } from './scenarios/chat.js';
import { presenceRun } from './scenarios/presence.js';
import { idleRun } from './scenarios/idle.js';
import { lostOf, overloadRun } from './scenarios/overload.js';
import { medianCurve } from './scenarios/steps.js';
import { IDLE_METRICS, MUC_METRICS, OVERLOAD_METRICS, PROXY_METRICS, chatMetrics, loginMetrics, presenceMetrics, summarizeRuns } from './metrics.js';
import type { LoadCurve, SummaryEntry } from './results.js';
import { proxyRun } from './scenarios/proxy.js';
import { wireCheck } from './wirecheck.js';

function printSummary(title: string, summary: Record<string, SummaryEntry>, runs: number): void {
  const lines = [`${title} — ${runs === 1 ? '1 run' : `median of ${runs} runs (min … max)`}`];
  const width = Math.max(...Object.keys(summary).map((k) => k.length));
  for (const [name, e] of Object.entries(summary)) {
    if (e.median === null) continue;
    const fmt = (x: number | null): string => (x === null ? '-' : Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 3 : 1));
    const range = runs > 1 ? `  (${fmt(e.min)} … ${fmt(e.max)})` : '';
    lines.push(`  ${name.padEnd(width)}  ${fmt(e.median)}${e.unit ? ` ${e.unit}` : ''}${range}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/** Runs a scenario --runs times, pausing --pause seconds in between. */
async function repeat<R>(o: Options, one: (run: number) => Promise<R>): Promise<R[]> {
  const runs: R[] = [];
  for (let r = 1; r <= o.runs; r++) {
    if (r > 1) await sleep(o.pause * 1000);
    runs.push(await one(r));
  }
  return runs;
}

/** Prints the runs' warnings, fills the result; the exit status (2: something lost or reordered). */
function finish(result: Record<string, unknown>, runs: ReadonlyArray<{ run: number; warnings: string[] }>, summary: Record<string, SummaryEntry>, curve: LoadCurve | undefined, bad: boolean): number {
  const warnings = runs.flatMap((r) => r.warnings.map((w) => `run ${r.run}: ${w}`));
  if (warnings.length) process.stdout.write(`warnings:\n${warnings.map((w) => `  ${w}`).join('\n')}\n`);
  Object.assign(result, { runs, summary, curve, warnings, ok: !bad });
  return bad ? 2 : 0;
}

function printCurve(c: LoadCurve): void {
  const f = (x: number | null): string => (x === null ? '-' : String(x));
  const lines = [`  offered ${c.offeredUnit} → ${c.achievedUnit}, p50 / p99 / p99.9 ms (median over runs):`];
  for (const p of c.points) lines.push(`    ${String(p.offered).padStart(7)} → ${String(Math.round(p.achieved)).padStart(8)}   ${f(p.p50)} / ${f(p.p99)} / ${f(p.p999)}${p.lost ? `   lost ${p.lost}` : ''}${p.runs > 1 ? '' : '   (1 run)'}`);
  process.stdout.write(lines.join('\n') + '\n');
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageRequest) {
      process.stdout.write(USAGE);
      return 0;
    }
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 1;
  }
  const t0 = performance.now();
  const stamp = (): string => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s]`;
  const log = (s: string): void => void process.stderr.write(`${stamp()} ${s}\n`);
  const progress = o.quiet ? () => undefined : log;

  let target: Target | null = null;
  const onSignal = (): void => {
    // Spawned servers die with us: the harness kills its children on exit.
    process.stderr.write('\nbench: interrupted\n');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  try {
    target = await openTarget(o, log);
    const machine = machineInfo();
    log(
      `target: ${target.mode} ${target.endpoints.map((e) => `${e.host}:${e.port}`).join(', ')} domain ${target.domain}` +
        (o.scenario === 'muc' ? ` muc ${target.mucDomain}` : '') +
        (target.watched.length ? `; sampling ${target.watched.map((w) => `${w.label} [${w.pid}]`).join(', ')}` : '; no server process to sample (--server-pid)'),
    );
    log(`machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${(machine.memTotalBytes / 2 ** 30).toFixed(1)} GiB, load ${machine.loadavg.join(' ')}, node ${machine.node}`);

    const count = o.scenario === 'wirecheck' ? 1 : o.users;
    const list = accounts(o.scenario === 'wirecheck' ? `${o.userPrefix}wc` : o.userPrefix, count);
    if (o.provision !== 'none') {
      const p = await provision(list, {
        endpoints: target.endpoints,
        domain: target.domain,
        concurrency: o.registerConcurrency,
        timeoutMs: o.timeoutMs,
        command: o.provision === 'cmd' ? o.provisionCmd : null,
        progress: (d, total) => progress(`provisioning: ${d}/${total}`),
      });
      log(`accounts: ${p.created} created, ${p.existing} already there (${p.seconds.toFixed(1)} s)`);
    }

    const sampler = new ProcSampler(target.watched);
    sampler.start();
    const ctx: Context = { opts: o, target, sampler, log, progress, accounts: list };
    const result: Record<string, unknown> = {
      tool: 'hyphae-bench',
      format: 1,
      scenario: o.scenario,
      startedAt: new Date().toISOString(),
      options: { ...o, serverConfig: o.spawn ? spawnConfig(o) : undefined },
      target: { mode: target.mode, endpoints: target.endpoints, domain: target.domain, mucDomain: target.mucDomain, processes: target.watched },
      machine,
    };
    let status = 0;

    if (o.scenario === 'wirecheck') {
      const a = list[0] as (typeof list)[number];
      const w = await wireCheck(target.endpoints[0] as Target['endpoints'][number], target.domain, a.username, a.password);
      const width = Math.max(...w.bench.map((l) => l.length), 10);
      process.stdout.write(`wire check: what each client sends to log in (normalised)\n  ${'this tool'.padEnd(width)}  | @xmpp/client\n`);
      for (let i = 0; i < Math.max(w.bench.length, w.xmppjs.length); i++) {
        const b = w.bench[i] ?? '';
        const x = w.xmppjs[i] ?? '';
        process.stdout.write(`${b === x ? ' ' : '≠'} ${b.padEnd(width)}  | ${b === x ? '(same)' : x}\n`);
      }
      process.stdout.write('(normalised: ids, SCRAM nonces and proofs; ignored: the mechanism attribute @xmpp/client adds to <response/>)\n');
      process.stdout.write(w.identical ? 'identical\n' : `${w.differences.length} difference(s)\n`);
      Object.assign(result, { wire: w, ok: w.identical });
      status = w.identical ? 0 : 2;
    } else if (o.scenario === 'proxy') {
      const runs = await repeat(o, (r) => proxyRun(ctx, r));
      const summary = summarizeRuns(runs, PROXY_METRICS);
      printSummary(`proxy: ${o.mbytes} MB through ${o.proxyDomain} vs a plain loopback relay`, summary, runs.length);
      Object.assign(result, { runs, summary, ok: true });
    } else if (o.scenario === 'idle') {
      const runs = await repeat(o, (r) => idleRun(ctx, r));
      const summary = summarizeRuns(runs, IDLE_METRICS);
      printSummary(`idle: ${o.users} sessions for ${o.idle} s, target ${target.mode}`, summary, runs.length);
      status = finish(result, runs, summary, undefined, runs.some((r) => r.sessions < o.users));
    } else if (o.scenario === 'login') {
      const runs = await repeat(o, (r) => loginRun(ctx, r));
      const summary = summarizeRuns(runs, loginMetrics(o.maxP99));
      const curve = medianCurve(runs.map((r) => r.steps.map(loginLoadStep)), 'logins/s', 'logins/s');
      printSummary(`login: arrivals at ${o.rates.join(', ')}/s, ${o.duration} s each, ${o.users} accounts, target ${target.mode}`, summary, runs.length);
      printCurve(curve);
      status = finish(result, runs, summary, curve, false);
    } else if (o.scenario === 'overload') {
      const runs = await repeat(o, (r) => overloadRun(ctx, r));
      const summary = summarizeRuns(runs, OVERLOAD_METRICS);
      printSummary(`overload: ${o.users} logins at ${o.rate}/s, each waiting for its presence echo, target ${target.mode}`, summary, runs.length);
      status = finish(result, runs, summary, undefined, runs.some((r) => lostOf(r) > 0));
    } else if (o.scenario === 'chat') {
      const runs = await repeat(o, (r) => chatRun(ctx, r));
      const summary = summarizeRuns(runs, chatMetrics(o.maxP99));
      const curve = medianCurve(runs.map((r) => r.steps.map(loadStep)), 'messages/s', 'deliveries/s');
      printSummary(`chat: ${o.users} users, ${o.contacts} contacts each, ${o.rates.join(', ')} msgs/s offered (${o.duration} s each), target ${target.mode}`, summary, runs.length);
      printCurve(curve);
      status = finish(result, runs, summary, curve, runs.some((r) => r.steps.some((s) => s.messages.lostDeliveries > 0 || s.messages.outOfOrder > 0)));
    } else if (o.scenario === 'presence') {
      const runs = await repeat(o, (r) => presenceRun(ctx, r));
      const summary = summarizeRuns(runs, presenceMetrics(o.maxP99));
      const curve = medianCurve(runs.map((r) => r.steps.map(loadStep)), 'presence changes/s', 'deliveries/s');
      printSummary(`presence: ${o.users} users, ${o.contacts} contacts each, ${o.rates.join(', ')} changes/s offered (${o.duration} s each), target ${target.mode}`, summary, runs.length);
      printCurve(curve);
      status = finish(result, runs, summary, curve, runs.some((r) => r.steps.some((s) => s.messages.lostDeliveries > 0 || s.messages.outOfOrder > 0)));
    } else {
      const runs = await repeat(o, (r) => mucRun(ctx, r));
      const summary = summarizeRuns(runs, MUC_METRICS);
      const bad = runs.some((r) => r.messages.lostDeliveries > 0 || r.messages.outOfOrder > 0);
      printSummary(
        `muc: ${o.occupants} occupants, ${o.senders || o.occupants} senders, ${o.rate} msgs/s offered (${o.rate * o.occupants} deliveries/s), target ${target.mode}`,
        summary,
        runs.length,
      );
      status = finish(result, runs, summary, undefined, bad);
    }
    sampler.stop();
    const problems = target.problems();
    if (problems.length) {
      log(`the server logged ${problems.length} warn/error lines; the last ones:`);
      for (const l of problems.slice(-5)) process.stderr.write(`  ${l.slice(0, 400)}\n`);
    }
    result.serverProblems = problems.slice(-50);
    result.finishedAt = new Date().toISOString();
    if (o.json) {
      writeFileSync(o.json, JSON.stringify(result, null, 2) + '\n');
      log(`results written to ${o.json}`);
    }
    return status;
  } catch (err) {
    log(`failed: ${(err as Error).stack ?? err}`);
    if (target) {
      const problems = target.problems();
      for (const l of problems.slice(-10)) process.stderr.write(`  server: ${l.slice(0, 400)}\n`);
    }
    return 1;
  } finally {
    if (target) {
      log('stopping …');
      await target.dispose().catch((e: unknown) => log(`stopping the server failed: ${String(e)}`));
    }
  }
}

main().then(
  (code) => {
    process.exitCode = code;
    // Workers and sockets are closed; anything left (a stuck socket) must not keep us alive.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${String(err)}\n`);
    process.exit(1);
  },
);
