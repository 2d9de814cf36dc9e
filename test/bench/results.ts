/**
 * Shapes of what the load tool writes: one scenario's result file
 * (`--json`) and the comparison file that `compare` assembles from several
 * servers. The report (report.ts) reads only these.
 */
import type { MachineInfo } from './proc.js';
import type { LatencySummary } from './stats.js';

/** One metric over the runs of a scenario: the median and the spread. */
export interface SummaryEntry {
  median: number | null;
  min: number | null;
  max: number | null;
  unit: string;
  runs: Array<number | null>;
}

/**
 * One step of a rising-load scenario (chat, presence, login): the offered
 * rate, what came through, and the latency at that rate. The median over
 * the runs of each field is what `LoadCurve` holds.
 */
export interface LoadStep {
  /** Offered rate (messages/s, presence changes/s or logins/s). */
  offered: number;
  /** Achieved rate of what the scenario counts (deliveries/s, logins/s). */
  achieved: number;
  /** End-to-end latency at this step, ms. */
  latency: LatencySummary;
  /** Deliveries that never arrived (or logins that failed). */
  lost: number;
  errors: number;
  /** Server CPU during the step, cores. */
  serverCores: number | null;
}

/** The median curve over the runs: one point per offered rate that every run reached. */
export interface LoadCurve {
  /** What `offered` and `achieved` count, e.g. "messages/s" and "deliveries/s". */
  offeredUnit: string;
  achievedUnit: string;
  points: Array<{ offered: number; achieved: number; p50: number | null; p99: number | null; p999: number | null; lost: number; runs: number }>;
}

/** A scenario's result file (`npm run bench -- <scenario> --json FILE`). */
export interface ScenarioResult {
  tool: 'hyphae-bench';
  format: 1;
  scenario: string;
  startedAt: string;
  finishedAt?: string;
  options: Record<string, unknown>;
  target: { mode: string; endpoints: Array<{ host: string; port: number }>; domain: string; processes: Array<{ pid: number; label: string }> };
  machine: MachineInfo;
  /** Per-run details (scenario-specific). */
  runs: unknown[];
  /** One entry per metric name (see the scenario's metric list in main.ts). */
  summary: Record<string, SummaryEntry>;
  /** Rising-load scenarios: the median curve. */
  curve?: LoadCurve;
  warnings?: string[];
  ok: boolean;
}

/** One server in a comparison. */
export interface ComparedServer {
  /** hyphae-embedded, hyphae-cluster, prosody, ejabberd. */
  name: string;
  /** Human label with version, e.g. "Prosody 0.12.3". */
  label: string;
  /** CPUs the server processes were pinned to (taskset list), or null. */
  serverCpus: string | null;
  /** Scenario name → its result, or the error that stopped it. */
  scenarios: Record<string, ScenarioResult | { error: string }>;
}

/** What `compare` writes: every server's results from one run of the comparison. */
export interface Comparison {
  tool: 'hyphae-bench-compare';
  format: 1;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  /** CPUs the load tool was pinned to, or null. */
  generatorCpus: string | null;
  /** The exact commands run, in order. */
  commands: string[];
  servers: ComparedServer[];
  /**
   * What later runs merged in (`--merge`): which scenarios of which servers,
   * when, and on what machine when it is not `machine`.
   */
  merged?: string[];
}

/** The servers and scenarios of `now` replace theirs in `before`. */
export function mergeInto(before: Comparison, now: Comparison): Comparison {
  const servers = before.servers.map((s) => ({ ...s, scenarios: { ...s.scenarios } }));
  for (const s of now.servers) {
    const old = servers.find((x) => x.name === s.name);
    if (old) Object.assign(old.scenarios, s.scenarios);
    else servers.push(s);
  }
  // Ratios are only fair within one machine: say where the replaced results came from.
  const where = sameMachine(before.machine, now.machine) ? 'the same machine' : `another machine: ${describeMachine(now.machine)}`;
  const what = now.servers.map((s) => `${s.name} ${Object.keys(s.scenarios).join(', ')}`).join('; ');
  const merged = [...(before.merged ?? []), `${now.startedAt} → ${now.finishedAt}, on ${where}: ${what}`];
  return { ...before, finishedAt: now.finishedAt, commands: [...before.commands, ...now.commands], servers, merged };
}

function sameMachine(a: MachineInfo, b: MachineInfo): boolean {
  return a.cpuModel === b.cpuModel && a.nproc === b.nproc;
}

function describeMachine(m: MachineInfo): string {
  return `${m.cpuModel}, nproc ${m.nproc}, ${(m.memTotalBytes / 2 ** 30).toFixed(1)} GiB`;
}
