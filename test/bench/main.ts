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
import { median } from './stats.js';
import { sleep, type Context } from './scenarios/common.js';
import { mucRun, type MucRun } from './scenarios/muc.js';
import { loginRun, type LoginRun } from './scenarios/login.js';
import { proxyRun, type ProxyRun } from './scenarios/proxy.js';
import { wireCheck } from './wirecheck.js';

interface Metric {
  name: string;
  unit: string;
  /** Direction that is better, for the reader. */
  better: 'higher' | 'lower' | 'zero';
  pick: (r: never) => number | null;
}

const MUC_METRICS: Array<Metric & { pick: (r: MucRun) => number | null }> = [
  { name: 'login_p50', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p50 },
  { name: 'login_p99', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p99 },
  { name: 'join_last_self_presence', unit: 'ms', better: 'lower', pick: (r) => r.join.lastSelfPresenceMs },
  { name: 'join_last_subject', unit: 'ms', better: 'lower', pick: (r) => r.join.lastSubjectMs },
  { name: 'join_subject_p50', unit: 'ms', better: 'lower', pick: (r) => r.join.subject.p50 },
  { name: 'groupchat_sent_per_s', unit: 'msg/s', better: 'higher', pick: (r) => r.messages.sentPerSecond },
  { name: 'groupchat_deliveries_per_s', unit: 'deliveries/s', better: 'higher', pick: (r) => r.messages.deliveriesPerSecond },
  { name: 'latency_p50', unit: 'ms', better: 'lower', pick: (r) => r.messages.latency.p50 },
  { name: 'latency_p99', unit: 'ms', better: 'lower', pick: (r) => r.messages.latency.p99 },
  { name: 'latency_p999', unit: 'ms', better: 'lower', pick: (r) => r.messages.latency.p999 },
  { name: 'latency_max', unit: 'ms', better: 'lower', pick: (r) => r.messages.latency.max },
  { name: 'lost_deliveries', unit: '', better: 'zero', pick: (r) => r.messages.lostDeliveries },
  { name: 'out_of_order', unit: '', better: 'zero', pick: (r) => r.messages.outOfOrder },
  { name: 'errors', unit: '', better: 'zero', pick: (r) => r.messages.errors },
  { name: 'send_lag_p99', unit: 'ms', better: 'lower', pick: (r) => r.messages.sendLag.p99 },
  { name: 'generator_cpu', unit: 'cores', better: 'lower', pick: (r) => r.generator.cores },
  { name: 'generator_worker_elu_max', unit: '', better: 'lower', pick: (r) => r.generator.maxWorkerElu },
  { name: 'generator_loop_delay_p99', unit: 'ms', better: 'lower', pick: (r) => r.generator.maxWorkerLoopDelayP99 },
  { name: 'server_cpu', unit: 'cores', better: 'lower', pick: (r) => (r.server.processes.length ? r.server.cores : null) },
  { name: 'server_rss_max', unit: 'MiB', better: 'lower', pick: (r) => (r.server.processes.length ? Math.round(r.server.maxRssBytes / 1048576) : null) },
];

const LOGIN_METRICS: Array<Metric & { pick: (r: LoginRun) => number | null }> = [
  { name: 'logins_per_s', unit: '/s', better: 'higher', pick: (r) => r.login.perSecond },
  { name: 'login_p50', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p50 },
  { name: 'login_p99', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p99 },
  { name: 'login_max', unit: 'ms', better: 'lower', pick: (r) => r.login.total.max },
  { name: 'generator_cpu', unit: 'cores', better: 'lower', pick: (r) => r.generator.cores },
  { name: 'server_cpu', unit: 'cores', better: 'lower', pick: (r) => (r.server.processes.length ? r.server.cores : null) },
  { name: 'server_rss_max', unit: 'MiB', better: 'lower', pick: (r) => (r.server.processes.length ? Math.round(r.server.maxRssBytes / 1048576) : null) },
];

const PROXY_METRICS: Array<Metric & { pick: (r: ProxyRun) => number | null }> = [
  { name: 'proxy_throughput', unit: 'MB/s', better: 'higher', pick: (r) => r.proxyMBps },
  { name: 'plain_relay_throughput', unit: 'MB/s', better: 'higher', pick: (r) => r.plainMBps },
  { name: 'proxy_to_plain_ratio', unit: '', better: 'higher', pick: (r) => r.ratio },
  { name: 'setup', unit: 'ms', better: 'lower', pick: (r) => r.setupMs },
  { name: 'generator_cpu', unit: 'cores', better: 'lower', pick: (r) => r.generator.cores },
  { name: 'server_cpu', unit: 'cores', better: 'lower', pick: (r) => (r.server.processes.length ? r.server.cores : null) },
  { name: 'server_rss_max', unit: 'MiB', better: 'lower', pick: (r) => (r.server.processes.length ? Math.round(r.server.maxRssBytes / 1048576) : null) },
];

export interface SummaryEntry {
  median: number | null;
  min: number | null;
  max: number | null;
  unit: string;
  runs: Array<number | null>;
}

function summarizeRuns<R>(runs: readonly R[], metrics: ReadonlyArray<{ name: string; unit: string; pick: (r: R) => number | null }>): Record<string, SummaryEntry> {
  const out: Record<string, SummaryEntry> = {};
  for (const m of metrics) {
    const values = runs.map((r) => m.pick(r));
    const nums = values.filter((v): v is number => v !== null && Number.isFinite(v));
    out[m.name] = {
      median: ((m) => (m === null ? null : Math.round(m * 1000) / 1000))(median(nums)),
      min: nums.length ? Math.min(...nums) : null,
      max: nums.length ? Math.max(...nums) : null,
      unit: m.unit,
      runs: values.map((v) => (v === null || !Number.isFinite(v) ? null : v)),
    };
  }
  return out;
}

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
    } else if (o.scenario === 'login') {
      const runs: LoginRun[] = [];
      for (let r = 1; r <= o.runs; r++) {
        if (r > 1) await sleep(o.pause * 1000);
        runs.push(await loginRun(ctx, r));
      }
      const summary = summarizeRuns(runs, LOGIN_METRICS);
      printSummary(`login: ${o.users} users`, summary, runs.length);
      Object.assign(result, { runs, summary, ok: true });
    } else if (o.scenario === 'proxy') {
      const runs: ProxyRun[] = [];
      for (let r = 1; r <= o.runs; r++) {
        if (r > 1) await sleep(o.pause * 1000);
        runs.push(await proxyRun(ctx, r));
      }
      const summary = summarizeRuns(runs, PROXY_METRICS);
      printSummary(`proxy: ${o.mbytes} MB through ${o.proxyDomain} vs a plain loopback relay`, summary, runs.length);
      Object.assign(result, { runs, summary, ok: true });
    } else {
      const runs: MucRun[] = [];
      for (let r = 1; r <= o.runs; r++) {
        if (r > 1) await sleep(o.pause * 1000);
        runs.push(await mucRun(ctx, r));
      }
      const summary = summarizeRuns(runs, MUC_METRICS);
      const bad = runs.some((r) => r.messages.lostDeliveries > 0 || r.messages.outOfOrder > 0);
      printSummary(
        `muc: ${o.occupants} occupants, ${o.senders || o.occupants} senders, ${o.rate} msgs/s offered (${o.rate * o.occupants} deliveries/s), target ${target.mode}`,
        summary,
        runs.length,
      );
      const warnings = runs.flatMap((r) => r.warnings.map((w) => `run ${r.run}: ${w}`));
      if (warnings.length) process.stdout.write(`warnings:\n${warnings.map((w) => `  ${w}`).join('\n')}\n`);
      Object.assign(result, { runs, summary, warnings, ok: !bad });
      status = bad ? 2 : 0;
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
