/**
 * The comparison (`npm run bench:compare`, docs/benchmarks.md): the same
 * scenarios against Hyphae (embedded, and a cluster with its own NATS and
 * Redis) and against Prosody and ejabberd from Debian's packages, one server
 * after the other on the same machine. Each server is started here, pinned
 * to its own CPUs (taskset), and driven by the load tool as an external
 * target (`main.js <scenario> --host … --server-pid …`) pinned to the other
 * CPUs, so every server meets the very same tool and commands. The results
 * go to one JSON file (results.ts `Comparison`), from which report.ts
 * writes the tables and plots.
 *
 * Usage: node test/dist/bench/compare.js [--servers a,b] [--scenarios a,b]
 *        [--runs N] [--out DIR] [--quick] [--no-pin]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestCa } from '@hyphae/pki';
import { REPO_ROOT, deepMerge, startCluster, startEmbedded, clusterSkipReason, embeddedSkipReason, type HyphaeServer, type ClusterServer } from '../harness/server.js';
import { prosodySkipReason, startProsody } from '../harness/prosody.js';
import { ejabberdSkipReason, startEjabberd } from '../harness/ejabberd.js';
import { certFor } from '../harness/federation.js';
import { parseOptions } from './options.js';
import { hyphaeMetricsPorts, spawnConfig } from './target.js';
import { childProcesses, machineInfo } from './proc.js';
import { mergeInto, type Comparison, type ComparedServer, type ScenarioResult } from './results.js';
import { renderReport } from './report.js';
import { IDLE_METRICS, summarizeRuns } from './metrics.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const SERVERS = ['hyphae-embedded', 'hyphae-cluster', 'prosody', 'ejabberd'] as const;
type ServerName = (typeof SERVERS)[number];
// chat and presence before the login storm, idle last (each of its runs on a fresh server).
const SCENARIOS = ['chat', 'presence', 'muc', 'login', 'idle'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

/** The load of each scenario: the same for every server. */
const LOAD: Record<ScenarioName, string[]> = {
  login: ['--users', '200', '--rate', '25,50,100,200,300,400,600,800,1000,1200,1600', '--duration', '5'],
  chat: ['--users', '1000', '--contacts', '10', '--rate', '250,500,1000,2000,4000,6000,8000,10000,12000,16000,20000,24000,28000,32000', '--duration', '5', '--drain', '30'],
  presence: ['--users', '200', '--contacts', '50', '--rate', '20,50,100,200,300,400,600,800,1000', '--duration', '5', '--drain', '30'],
  muc: ['--occupants', '50', '--rate', '200', '--duration', '10', '--drain', '30'],
  idle: ['--users', '10000', '--idle', '10', '--login-concurrency', '100', '--register-concurrency', '20', '--workers', '2'],
};
/** --quick: seconds per scenario, for a smoke run of the whole pipeline. */
const QUICK: Record<ScenarioName, string[]> = {
  login: ['--users', '20', '--rate', '20,40', '--duration', '1'],
  chat: ['--users', '40', '--contacts', '4', '--rate', '100,200', '--duration', '1', '--drain', '5'],
  presence: ['--users', '20', '--contacts', '4', '--rate', '10,20', '--duration', '1', '--drain', '5'],
  muc: ['--occupants', '5', '--rate', '20', '--duration', '1', '--drain', '5'],
  idle: ['--users', '100', '--idle', '1', '--login-concurrency', '50'],
};

interface Args {
  servers: ServerName[];
  scenarios: ScenarioName[];
  runs: number;
  out: string;
  quick: boolean;
  pin: boolean;
  /** An earlier comparison file: the servers and scenarios run now replace theirs in it. */
  merge: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { servers: [...SERVERS], scenarios: [...SCENARIOS], runs: 3, out: join(REPO_ROOT, 'docs', 'benchmarks'), quick: false, pin: true, merge: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--servers') a.servers = v().split(',').map((s) => pick(s, SERVERS, '--servers'));
    else if (k === '--scenarios') a.scenarios = v().split(',').map((s) => pick(s, SCENARIOS, '--scenarios'));
    else if (k === '--runs') a.runs = Math.max(1, Number(v()) || 1);
    else if (k === '--out') a.out = v();
    else if (k === '--quick') a.quick = true;
    else if (k === '--no-pin') a.pin = false;
    else if (k === '--merge') a.merge = v();
    else throw new Error(`unknown argument ${k} (known: --servers ${SERVERS.join(',')} --scenarios ${SCENARIOS.join(',')} --runs N --out DIR --quick --no-pin --merge FILE)`);
  }
  return a;
}

function pick<T extends string>(s: string, known: readonly T[], what: string): T {
  if (!(known as readonly string[]).includes(s)) throw new Error(`${what}: unknown "${s}" (known: ${known.join(', ')})`);
  return s as T;
}

/** A server under test, started and ready. */
interface Running {
  label: string;
  port: number;
  domain: string;
  mucDomain: string;
  pids: number[];
  /** Extra load-tool arguments for this server (e.g. the cluster's Redis port). */
  extra: string[];
  stop(): Promise<void>;
}

const log = (s: string): void => void process.stderr.write(`[compare ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function packageVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

function hyphaeVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

async function startServer(name: ServerName, dir: string, ca: Awaited<ReturnType<typeof createTestCa>>): Promise<Running> {
  // Every server presents the same kind of certificate (ECDSA P-256 from one test CA): the
  // TLS handshake is most of a login's cost, and RSA-2048 signing costs many times more.
  const cert = await certFor(join(dir, name), ca, 'localhost');
  if (name === 'hyphae-embedded' || name === 'hyphae-cluster') {
    // Room for the biggest scenario (idle) from one loopback address, as the load tool's --spawn does.
    const config = deepMerge(spawnConfig(parseOptions(['idle', '--users', '10000'])), { tls: { cert: cert.cert, key: cert.key } });
    const skip = name === 'hyphae-cluster' ? clusterSkipReason() : embeddedSkipReason();
    if (skip) throw new Error(skip);
    const before = new Set(childProcesses().map((p) => p.pid));
    const server: HyphaeServer = name === 'hyphae-cluster' ? await startCluster({ domain: 'localhost', config }) : await startEmbedded({ domain: 'localhost', config });
    const pids = childProcesses().map((p) => p.pid).filter((p) => !before.has(p));
    const extra = [
      ...(name === 'hyphae-cluster' ? ['--redis-port', String((server as ClusterServer).redis.port)] : []),
      '--metrics-port', hyphaeMetricsPorts(server).join(','),
    ];
    return {
      label: `Hyphae ${hyphaeVersion()} ${name === 'hyphae-cluster' ? 'cluster (sm, 2 c2s, 2 roster, 2 muc, 2 proxy65, NATS, Redis)' : 'embedded (hyphae all)'}`,
      port: server.c2s[0]?.port as number,
      domain: server.domain,
      mucDomain: `conference.${server.domain}`,
      pids,
      extra: [...extra, '--port', server.c2s.map((n) => n.port).join(',')],
      stop: () => server.dispose(),
    };
  }
  if (name === 'prosody') {
    const skip = prosodySkipReason();
    if (skip) throw new Error(skip);
    const p = await startProsody({
      domain: 'localhost',
      certPem: cert.certPem,
      keyPem: cert.keyPem,
      caPem: ca.certPem,
      muc: true,
      registration: true,
      // Prosody's packaged default; 0.12.3 with min = "warn" never answered on c2s here.
      logLevel: 'info',
      extraConfig: 'network_backend = "epoll"',
    });
    return { label: `Prosody ${packageVersion('prosody')}`, port: p.c2sPort, domain: p.domain, mucDomain: p.mucDomain as string, pids: [p.pid], extra: [], stop: () => p.stop() };
  }
  const skip = ejabberdSkipReason();
  if (skip) throw new Error(skip);
  const e = await startEjabberd({ domain: 'localhost', certPem: cert.certPem, keyPem: cert.keyPem, caPem: ca.certPem, registration: true, muc: true, logLevel: 'warning' });
  return { label: `ejabberd ${e.version}`, port: e.c2sPort, domain: e.domain, mucDomain: e.mucDomain as string, pids: [e.pid], extra: [], stop: () => e.stop() };
}

/** Pins every thread of the processes to `cpus` (a taskset list). */
function pin(pids: readonly number[], cpus: string): void {
  for (const pid of pids) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) log(`taskset ${pid}: ${r.stderr.trim()}`);
  }
}

/** Runs the load tool; resolves with its exit status and the tail of stderr. */
function runTool(argv: string[]): Promise<{ code: number | null; tail: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'inherit', 'pipe'] });
    let tail = '';
    child.stderr.on('data', (d: Buffer) => {
      process.stderr.write(d);
      tail = (tail + d.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, tail }));
  });
}

const shellQuote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Several one-run result files of a scenario as one: every run, the summary over all of them. */
function mergeRuns<R>(parts: ScenarioResult[], metrics: ReadonlyArray<{ name: string; unit: string; pick: (r: R) => number | null }>): ScenarioResult {
  const first = parts[0] as ScenarioResult;
  const runs = parts.flatMap((p, i) => (p.runs as Array<Record<string, unknown>>).map((r) => ({ ...r, run: i + 1 })));
  return {
    ...first,
    finishedAt: parts[parts.length - 1]?.finishedAt,
    runs,
    summary: summarizeRuns(runs as unknown as R[], metrics),
    warnings: parts.flatMap((p, i) => (p.warnings ?? []).map((w) => w.replace(/^run \d+:/, `run ${i + 1}:`))),
    ok: parts.every((p) => p.ok),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // Read now: the progress writes below may overwrite the very file (same --out).
  const earlier = args.merge ? (JSON.parse(readFileSync(args.merge, 'utf8')) as Comparison) : null;
  const nproc = machineInfo().nproc;
  const pinned = args.pin && nproc >= 2 && spawnSync('taskset', ['-V']).status === 0;
  // Server on CPU 0 (single-core servers use one anyway), the load tool on the rest.
  const serverCpus = pinned ? '0' : null;
  const generatorCpus = pinned ? `1-${nproc - 1}` : null;
  const work = mkdtempSync(join(tmpdir(), 'hyphae-compare-'));
  const ca = await createTestCa({ name: 'Hyphae bench CA' });
  mkdirSync(args.out, { recursive: true });
  const comparison: Comparison = {
    tool: 'hyphae-bench-compare',
    format: 1,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine: machineInfo(),
    generatorCpus,
    commands: [],
    servers: [],
  };
  try {
    for (const name of args.servers) {
      const entry: ComparedServer = { name, label: name, serverCpus, scenarios: {} };
      comparison.servers.push(entry);
      let server: Running;
      const start = async (): Promise<Running> => {
        const r = await startServer(name, work, ca);
        if (serverCpus) pin(r.pids, serverCpus);
        log(`${r.label}: c2s ${r.port}, pids ${r.pids.join(' ')}${serverCpus ? `, pinned to CPU ${serverCpus}` : ''}`);
        return r;
      };
      try {
        log(`starting ${name} …`);
        server = await start();
      } catch (err) {
        log(`${name}: could not start: ${(err as Error).message}`);
        for (const s of args.scenarios) entry.scenarios[s] = { error: `server did not start: ${(err as Error).message}` };
        continue;
      }
      entry.label = server.label;
      let used = false;
      /** One invocation of the load tool; its result file, or the error that stopped it. */
      const runScenario = async (scenario: ScenarioName, runs: number, tag: string): Promise<ScenarioResult | { error: string }> => {
        const json = join(work, `${name}-${scenario}${tag}.json`);
        const argv = [
          ...(generatorCpus ? ['taskset', '-c', generatorCpus] : []),
          process.execPath,
          MAIN,
          scenario,
          '--host', '127.0.0.1',
          ...(server.extra.includes('--port') ? [] : ['--port', String(server.port)]),
          '--domain', server.domain,
          '--muc-domain', server.mucDomain,
          '--server-pid', server.pids.join(','),
          '--user-prefix', scenario,
          '--runs', String(runs),
          ...(args.quick ? QUICK : LOAD)[scenario],
          ...server.extra,
          '--json', json,
        ];
        const shown = argv.map((a) => (a === process.execPath ? 'node' : a === MAIN ? 'test/dist/bench/main.js' : a.startsWith(work) ? `${name}-${scenario}.json` : a));
        comparison.commands.push(`${name}: ${shown.map(shellQuote).join(' ')}`);
        log(`${name} ${scenario}${tag}: ${shown.join(' ')}`);
        const r = await runTool(argv);
        used = true;
        try {
          return JSON.parse(readFileSync(json, 'utf8')) as ScenarioResult;
        } catch {
          const last = r.tail.trim().split('\n').slice(-3).join(' / ');
          return { error: `exit ${r.code}: ${last.slice(0, 300)}` };
        }
      };
      try {
        for (const scenario of args.scenarios) {
          if (scenario !== 'idle') {
            entry.scenarios[scenario] = await runScenario(scenario, args.runs, '');
            continue;
          }
          // Memory per session needs a server that has never held sessions: freed memory is
          // kept by the allocator and reused, so a second run on the same process measures
          // less than it holds. Each idle run gets a freshly started server.
          const runs: ScenarioResult[] = [];
          let failed: { error: string } | null = null;
          for (let r = 1; r <= args.runs && !failed; r++) {
            if (used) {
              log(`restarting ${name} for a fresh idle run …`);
              await server.stop();
              server = await start();
            }
            const one = await runScenario('idle', 1, `-${r}`);
            if ('error' in one) failed = one;
            else runs.push(one);
          }
          entry.scenarios.idle = failed ?? mergeRuns(runs, IDLE_METRICS);
        }
      } finally {
        log(`stopping ${name} …`);
        await server.stop().catch((e: unknown) => log(`stopping ${name}: ${String(e)}`));
      }
      writeFileSync(join(args.out, 'compare.json'), JSON.stringify({ ...comparison, finishedAt: new Date().toISOString() }, null, 1) + '\n');
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  comparison.finishedAt = new Date().toISOString();
  const final = earlier ? mergeInto(earlier, comparison) : comparison;
  writeFileSync(join(args.out, 'compare.json'), JSON.stringify(final, null, 1) + '\n');
  const report = renderReport(final, { svgLink: (key) => `${key}.svg` });
  writeFileSync(join(args.out, 'compare.md'), report.markdown);
  for (const [key, svg] of Object.entries(report.svgs)) writeFileSync(join(args.out, `${key}.svg`), svg);
  log(`results: ${join(args.out, 'compare.json')}, report: ${join(args.out, 'compare.md')}, plots: ${Object.keys(report.svgs).join(', ')}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
