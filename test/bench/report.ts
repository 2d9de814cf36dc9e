/**
 * The benchmark report: reads the file that `compare` writes (a
 * `Comparison`, results.ts) and renders Markdown for docs/benchmarks.md —
 * the bar (met / not met / not measured, with the numbers and the margin),
 * ratios of Hyphae to the other servers, one side-by-side table per
 * scenario (median with the min … max spread over the runs), and the setup
 * (servers, CPUs, machine, the exact commands) — plus SVG plots of each
 * rising-load scenario: p99 (and p50) latency vs offered load, and achieved
 * vs offered load.
 *
 *   node test/dist/bench/report.js <comparison.json> [--out PREFIX] [--md FILE]
 *
 * Plots go to PREFIX-<scenario>-latency.svg and PREFIX-<scenario>-throughput.svg
 * (PREFIX defaults to the comparison file's path without `.json`); the
 * Markdown goes to FILE, or to stdout, and links the plots relative to where
 * it is written. Exit status: 0, 1 when the input cannot be read, 2 on a
 * usage error.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ComparedServer, Comparison, LoadCurve, ScenarioResult, SummaryEntry } from './results.js';
import { lineChart, type LegendEntry, type Series } from './plot.js';

export interface ReportOptions {
  /** The link to a plot in the Markdown, from its key (e.g. "chat-latency"). Default: `benchmarks-<key>.svg`. */
  svgLink?: (key: string) => string;
}

export interface Report {
  markdown: string;
  /** Plot key ("chat-latency", "chat-throughput", …) → SVG document. */
  svgs: Record<string, string>;
}

export type BarStatus = 'met' | 'not met' | 'not measured';

export interface BarRow {
  bar: string;
  status: BarStatus;
  /** The numbers the verdict was made from (or why there are none). */
  measured: string;
  /** How far from the bar: + room to spare, − short of it. Empty when not measured. */
  margin: string;
}

export interface RatioCell {
  /** "<hyphae label> / <other label>". */
  pair: string;
  hyphae: string;
  other: string;
  ratio: number | null;
  text: string;
}

export interface RatioRow {
  scenario: string;
  metric: string;
  label: string;
  lowerIsBetter: boolean;
  cells: RatioCell[];
}

// ---------------------------------------------------------------------------
// What the scenarios report.

/** Scenario order in the report; unknown ones follow in the order they appear. */
const SCENARIO_ORDER = ['chat', 'presence', 'login', 'idle', 'muc', 'proxy'];

/** The metrics of each scenario's main table, in order; the rest go under "other metrics". */
const MAIN_METRICS: Record<string, string[]> = {
  chat: [
    'max_deliveries_per_s_p99_under_50ms',
    'best_offered_rate',
    'latency_p50_at_best',
    'latency_p99_at_best',
    'latency_p999_at_best',
    'lost_deliveries',
    'out_of_order',
    'errors',
    'server_cpu_at_best',
    'server_rss_max',
    'route_cache_hit_rate_at_best',
    'redis_round_trips_per_stanza',
    'redis_commands_per_stanza_at_best',
  ],
  presence: ['max_presence_deliveries_per_s_p99_under_50ms', 'best_offered_rate', 'latency_p99_at_best', 'initial_presence_deliveries', 'lost_deliveries', 'server_rss_max'],
  login: ['max_logins_per_s', 'best_offered_rate', 'login_p50_at_best', 'login_p99_at_best', 'tls_p50_at_best', 'auth_p50_at_best', 'bind_p50_at_best', 'failures'],
  idle: ['sessions', 'rss_per_session_kib', 'server_rss_idle_mib', 'server_cpu_at_rest'],
  muc: ['groupchat_deliveries_per_s', 'latency_p99', 'join_last_subject', 'lost_deliveries'],
};

/** The headline metric of each scenario (bold in the tables, and in the ratios). */
const HEADLINES: Array<{ scenario: string; metric: string; lowerIsBetter: boolean }> = [
  { scenario: 'chat', metric: 'max_deliveries_per_s_p99_under_50ms', lowerIsBetter: false },
  { scenario: 'presence', metric: 'max_presence_deliveries_per_s_p99_under_50ms', lowerIsBetter: false },
  { scenario: 'login', metric: 'max_logins_per_s', lowerIsBetter: false },
  { scenario: 'idle', metric: 'rss_per_session_kib', lowerIsBetter: true },
  { scenario: 'muc', metric: 'groupchat_deliveries_per_s', lowerIsBetter: false },
];

const LABELS: Record<string, string> = {
  max_deliveries_per_s_p99_under_50ms: 'max delivered rate with p99 < 50 ms, none lost',
  max_presence_deliveries_per_s_p99_under_50ms: 'max presence delivery rate with p99 < 50 ms, none lost',
  max_logins_per_s: 'max sustainable login rate',
  best_offered_rate: 'offered rate at that point',
  latency_p50_at_best: 'latency p50 at that rate',
  latency_p99_at_best: 'latency p99 at that rate',
  latency_p999_at_best: 'latency p99.9 at that rate',
  lost_deliveries: 'lost deliveries',
  out_of_order: 'out of order',
  server_cpu_at_best: 'server CPU at that rate',
  server_rss_max: 'server RSS, max',
  route_cache_hit_rate_at_best: 'route cache hit rate at that rate',
  redis_round_trips_per_stanza: 'Redis round trips per stanza',
  redis_commands_per_stanza_at_best: 'Redis commands per stanza at that rate',
  initial_presence_deliveries: 'initial presence deliveries',
  login_p50_at_best: 'login p50 at that rate',
  login_p99_at_best: 'login p99 at that rate',
  tls_p50_at_best: 'TLS handshake p50 at that rate',
  auth_p50_at_best: 'SASL auth p50 at that rate',
  bind_p50_at_best: 'resource bind p50 at that rate',
  failures: 'failed logins',
  sessions: 'idle sessions',
  rss_per_session_kib: 'server RSS per session',
  server_rss_idle_mib: 'server RSS with every session idle',
  server_cpu_at_rest: 'server CPU at rest',
  groupchat_deliveries_per_s: 'groupchat deliveries/s',
  latency_p99: 'latency p99',
  join_last_subject: 'join: time to the last subject',
};

/** Counts where zero is the goal: shown as a plain number. */
const ZERO_METRICS = new Set(['lost_deliveries', 'out_of_order', 'failures', 'errors']);

const TIME_UNITS = new Set(['ms', 's', 'µs', 'us']);

/** Display names for the bar, which is stated before any server is known. */
const GENERIC_NAMES: Record<string, string> = {
  'hyphae-embedded': 'Hyphae embedded',
  'hyphae-cluster': 'Hyphae cluster',
  prosody: 'Prosody',
  ejabberd: 'ejabberd',
};

const COLORS: Record<string, string> = {
  'hyphae-embedded': '#0969da',
  'hyphae-cluster': '#1a7f37',
  prosody: '#bc4c00',
  ejabberd: '#8250df',
};
const SPARE_COLORS = ['#bf3989', '#0e8a96', '#9a6700', '#6e7781', '#cf222e'];

export function metricLabel(name: string): string {
  return LABELS[name] ?? name.replace(/_/g, ' ');
}

// ---------------------------------------------------------------------------
// Formatting.

const sig3 = (v: number): string => (v === 0 ? '0' : v.toLocaleString('en-US', { maximumSignificantDigits: 3 }));

/**
 * A number for the tables: times with 3 significant digits, other values
 * with thousands separators (whole numbers from 100 up, 3 significant
 * digits below).
 */
export function formatNumber(v: number, unit = ''): string {
  if (!Number.isFinite(v)) return String(v);
  if (TIME_UNITS.has(unit)) return sig3(v);
  if (Number.isInteger(v) || Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return sig3(v);
}

/** A ratio with 3 significant digits, e.g. "2.50×". */
export function formatRatio(r: number): string {
  return `${r.toLocaleString('en-US', { minimumSignificantDigits: 3, maximumSignificantDigits: 3 })}×`;
}

const withUnit = (v: number, unit: string): string => (unit ? `${formatNumber(v, unit)} ${unit}` : formatNumber(v, unit));

/** Makes text safe inside a Markdown table cell. */
function md(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\s+/g, ' ').trim();
}

/** The first line of an error, shortened. */
export function shortError(e: string, max = 90): string {
  const line = (e.split('\n').find((l) => l.trim()) ?? e).trim().replace(/\s+/g, ' ');
  if (!line) return '(no message)';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function table(header: string[], align: Array<'l' | 'r' | 'c'>, rows: string[][]): string {
  const sep = align.map((a) => (a === 'r' ? '---:' : a === 'c' ? ':---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

// ---------------------------------------------------------------------------
// Reading the comparison without trusting it to be complete.

type Outcome = ScenarioResult | { error: string };

function isError(o: Outcome | undefined): o is { error: string } {
  return typeof o === 'object' && o !== null && typeof (o as { error?: unknown }).error === 'string' && !('summary' in o);
}

function servers(c: Comparison): ComparedServer[] {
  return Array.isArray(c.servers) ? c.servers : [];
}

function label(s: ComparedServer): string {
  return s.label || GENERIC_NAMES[s.name] || s.name;
}

/** The server of that name (or the first whose name starts with it, e.g. "prosody-0.12"). */
export function findServer(c: Comparison, name: string): ComparedServer | undefined {
  const all = servers(c);
  return all.find((s) => s.name === name) ?? all.find((s) => s.name.startsWith(`${name}-`));
}

function outcome(s: ComparedServer | undefined, scenario: string): Outcome | undefined {
  return s?.scenarios?.[scenario];
}

function result(s: ComparedServer | undefined, scenario: string): ScenarioResult | undefined {
  const o = outcome(s, scenario);
  return o && !isError(o) ? o : undefined;
}

function summaryEntry(s: ComparedServer | undefined, scenario: string, metric: string): SummaryEntry | undefined {
  return result(s, scenario)?.summary?.[metric];
}

function scenarioNames(c: Comparison): string[] {
  const seen: string[] = [];
  for (const s of servers(c)) for (const name of Object.keys(s.scenarios ?? {})) if (!seen.includes(name)) seen.push(name);
  const known = SCENARIO_ORDER.filter((n) => seen.includes(n));
  return [...known, ...seen.filter((n) => !SCENARIO_ORDER.includes(n))];
}

function colorOf(c: Comparison, s: ComparedServer): string {
  const known = Object.keys(COLORS).find((k) => s.name === k || s.name.startsWith(`${k}-`));
  if (known) return COLORS[known]!;
  const others = servers(c).filter((x) => !Object.keys(COLORS).some((k) => x.name === k || x.name.startsWith(`${k}-`)));
  return SPARE_COLORS[Math.max(0, others.indexOf(s)) % SPARE_COLORS.length]!;
}

/** A metric's median for the bar and the ratios, or why there is none. */
interface Measured {
  value: number | null;
  unit: string;
  /** "Prosody 0.12.3 12,000" or the reason it is missing. */
  text: string;
}

function measure(c: Comparison, server: string, scenario: string, metric: string): Measured {
  const s = findServer(c, server);
  const who = s ? label(s) : GENERIC_NAMES[server] ?? server;
  if (!s) return { value: null, unit: '', text: `no ${who} in this comparison` };
  const o = outcome(s, scenario);
  if (!o) return { value: null, unit: '', text: `${who}: ${scenario} not run` };
  if (isError(o)) return { value: null, unit: '', text: `${who}: ${scenario} failed (${shortError(o.error, 60)})` };
  const e = o.summary?.[metric];
  if (!e) return { value: null, unit: '', text: `${who}: no ${metric} in ${scenario}` };
  if (e.median === null || !Number.isFinite(e.median)) return { value: null, unit: e.unit, text: `${who}: ${metric} has no value` };
  return { value: e.median, unit: e.unit, text: `${who} ${withUnit(e.median, e.unit)}` };
}

// ---------------------------------------------------------------------------
// The bar.

function margin(room: number, target: number, unit: string): string {
  const sign = room > 0 ? '+' : room < 0 ? '−' : '±';
  const pct = target !== 0 ? ` (${sign}${Math.abs((room / target) * 100).toFixed(1)}%)` : '';
  return `${sign}${withUnit(Math.abs(room), unit)}${pct}`;
}

/** left ≥ factor × right (or ≤), right being another server's median or a fixed number. */
function compareRow(bar: string, left: Measured, op: '>=' | '<=', right: Measured | number, factor = 1): BarRow {
  const missing = [left, right].filter((m): m is Measured => typeof m !== 'number' && m.value === null);
  if (missing.length) return { bar, status: 'not measured', measured: missing.map((m) => m.text).join('; '), margin: '' };
  const l = left.value!;
  const r = typeof right === 'number' ? right : right.value!;
  const unit = left.unit || (typeof right === 'number' ? '' : right.unit);
  const target = factor * r;
  const met = op === '>=' ? l >= target : l <= target;
  const room = op === '>=' ? l - target : target - l;
  let measured = left.text;
  if (typeof right !== 'number') {
    measured += `; ${right.text}`;
    if (factor !== 1) measured += ` → bar ${withUnit(target, unit)}`;
  }
  return { bar, status: met ? 'met' : 'not met', measured, margin: margin(room, target, unit) };
}

/** Every lost delivery and failed login over all servers and scenarios (each run counted). */
function zeroLostRow(c: Comparison): BarRow {
  const bar = 'nothing lost: lost deliveries and failed logins are 0 in every scenario of every server';
  let counted = 0;
  let failed = 0;
  let total = 0;
  const offenders: string[] = [];
  for (const s of servers(c)) {
    for (const [scenario, o] of Object.entries(s.scenarios ?? {})) {
      if (isError(o)) {
        failed++;
        continue;
      }
      for (const metric of ['lost_deliveries', 'failures']) {
        const e = o.summary?.[metric];
        if (!e) continue;
        const runs = (e.runs ?? []).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
        const sum = runs.length ? runs.reduce((a, b) => a + b, 0) : e.max ?? e.median;
        if (sum === null || sum === undefined) continue;
        counted++;
        total += sum;
        if (sum > 0) offenders.push(`${label(s)} ${scenario}: ${formatNumber(sum)} ${metric === 'failures' ? 'failed logins' : 'lost'}`);
      }
    }
  }
  const skipped = failed ? `; ${failed} scenario result${failed === 1 ? '' : 's'} failed and could not be counted` : '';
  if (counted === 0) return { bar, status: 'not measured', measured: `no lost_deliveries or failures reported${skipped}`, margin: '' };
  if (total > 0) return { bar, status: 'not met', measured: offenders.join('; ') + skipped, margin: `−${formatNumber(total)}` };
  return { bar, status: 'met', measured: `0 over ${counted} counts (every run of every scenario)${skipped}`, margin: '±0' };
}

function routeCacheRow(c: Comparison): BarRow {
  const bar = 'Hyphae cluster chat: route cache — Redis round trips per stanza ≤ 1';
  const hit = measure(c, 'hyphae-cluster', 'chat', 'route_cache_hit_rate_at_best');
  const hitText = hit.value !== null ? `; route cache hit rate ${withUnit(hit.value, hit.unit)}` : '';
  // Round trips when the run counted them; else Redis commands per stanza,
  // which is never below the round trips (a round trip carries one command or more).
  const trips = measure(c, 'hyphae-cluster', 'chat', 'redis_round_trips_per_stanza');
  const commands = measure(c, 'hyphae-cluster', 'chat', 'redis_commands_per_stanza_at_best');
  const used = trips.value !== null ? { m: trips, what: 'Redis round trips per stanza' } : commands.value !== null ? { m: commands, what: 'Redis commands per stanza at the best rate (an upper bound on round trips)' } : null;
  if (!used) {
    const why = result(findServer(c, 'hyphae-cluster'), 'chat') ? 'no redis_round_trips_per_stanza (or redis_commands_per_stanza_at_best) in the cluster\'s chat summary' : trips.text;
    return { bar, status: 'not measured', measured: why + hitText, margin: '' };
  }
  const row = compareRow(bar, { ...used.m, text: `${withUnit(used.m.value!, used.m.unit)} ${used.what}` }, '<=', 1);
  row.measured += hitText;
  return row;
}

/** The bar Hyphae is held to, evaluated on this comparison. */
export function evaluateBar(c: Comparison): BarRow[] {
  const chat = 'max_deliveries_per_s_p99_under_50ms';
  const m = (server: string, scenario: string, metric: string): Measured => measure(c, server, scenario, metric);
  return [
    compareRow('Hyphae embedded chat: max deliveries/s with p99 < 50 ms ≥ 2 × Prosody\'s', m('hyphae-embedded', 'chat', chat), '>=', m('prosody', 'chat', chat), 2),
    compareRow('Hyphae embedded chat: max deliveries/s with p99 < 50 ms ≥ ejabberd\'s', m('hyphae-embedded', 'chat', chat), '>=', m('ejabberd', 'chat', chat)),
    compareRow('Hyphae embedded login: max logins/s ≥ ejabberd\'s', m('hyphae-embedded', 'login', 'max_logins_per_s'), '>=', m('ejabberd', 'login', 'max_logins_per_s')),
    compareRow('Hyphae embedded idle: RSS per session ≤ ½ × Prosody\'s', m('hyphae-embedded', 'idle', 'rss_per_session_kib'), '<=', m('prosody', 'idle', 'rss_per_session_kib'), 0.5),
    compareRow('Hyphae embedded idle: RSS per session ≤ 20 KiB', m('hyphae-embedded', 'idle', 'rss_per_session_kib'), '<=', 20),
    compareRow('Hyphae cluster chat: max deliveries/s with p99 < 50 ms ≥ Prosody\'s', m('hyphae-cluster', 'chat', chat), '>=', m('prosody', 'chat', chat)),
    routeCacheRow(c),
    zeroLostRow(c),
  ];
}

// ---------------------------------------------------------------------------
// Ratios.

const isHyphae = (s: ComparedServer): boolean => s.name.startsWith('hyphae');

/** Every Hyphae server against every other server, on each scenario's headline metric. */
export function ratioTable(c: Comparison): RatioRow[] {
  const hyphae = servers(c).filter(isHyphae);
  const others = servers(c).filter((s) => !isHyphae(s));
  const present = scenarioNames(c);
  const rows: RatioRow[] = [];
  for (const h of HEADLINES) {
    if (!present.includes(h.scenario)) continue;
    const cells: RatioCell[] = [];
    for (const a of hyphae) {
      for (const b of others) {
        const va = summaryEntry(a, h.scenario, h.metric)?.median ?? null;
        const vb = summaryEntry(b, h.scenario, h.metric)?.median ?? null;
        const unit = summaryEntry(a, h.scenario, h.metric)?.unit ?? summaryEntry(b, h.scenario, h.metric)?.unit ?? '';
        let ratio: number | null = null;
        let text: string;
        if (va === null || vb === null) text = 'not measured';
        else if (vb === 0) text = 'n/a (÷ 0)';
        else {
          ratio = va / vb;
          text = `${formatRatio(ratio)} <small>(${formatNumber(va, unit)} / ${formatNumber(vb, unit)})</small>`;
        }
        cells.push({ pair: `${label(a)} / ${label(b)}`, hyphae: a.name, other: b.name, ratio, text });
      }
    }
    rows.push({ scenario: h.scenario, metric: h.metric, label: metricLabel(h.metric), lowerIsBetter: h.lowerIsBetter, cells });
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Per-scenario tables.

function metricCell(e: SummaryEntry | undefined, name: string): string {
  if (!e) return 'n/a';
  if (e.median === null || !Number.isFinite(e.median)) return '–';
  const m = formatNumber(e.median, e.unit);
  if (ZERO_METRICS.has(name)) {
    // A count that should be 0: the median, and the worst run when it differs.
    return e.max !== null && e.max > e.median ? `${m} <small>(max ${formatNumber(e.max, e.unit)})</small>` : m;
  }
  if (e.min === null || e.max === null || (e.min === e.median && e.max === e.median)) return m;
  return `${m} <small>(${formatNumber(e.min, e.unit)} … ${formatNumber(e.max, e.unit)})</small>`;
}

function runCount(r: ScenarioResult): number {
  let n = Array.isArray(r.runs) ? r.runs.length : 0;
  for (const e of Object.values(r.summary ?? {})) n = Math.max(n, e.runs?.length ?? 0);
  return n;
}

function scenarioSection(c: Comparison, scenario: string, link: (key: string) => string, svgs: Record<string, string>): string {
  const all = servers(c);
  const metricsSeen: string[] = [];
  const units = new Map<string, string>();
  for (const s of all) {
    for (const [name, e] of Object.entries(result(s, scenario)?.summary ?? {})) {
      if (!metricsSeen.includes(name)) metricsSeen.push(name);
      if (!units.has(name) && e?.unit) units.set(name, e.unit);
    }
  }
  const known = MAIN_METRICS[scenario];
  const main = known ? known.filter((m) => metricsSeen.includes(m)) : metricsSeen;
  const rest = known ? metricsSeen.filter((m) => !known.includes(m)) : [];
  const headline = HEADLINES.find((h) => h.scenario === scenario)?.metric;

  const header = ['metric', ...all.map((s) => md(label(s)))];
  const align: Array<'l' | 'r'> = ['l', ...all.map((): 'r' => 'r')];
  const rowFor = (metric: string): string[] => {
    const unit = units.get(metric);
    let name = md(metricLabel(metric)) + (unit ? ` (${md(unit)})` : '');
    if (metric === headline) name = `**${name}**`;
    return [
      name,
      ...all.map((s) => {
        const o = outcome(s, scenario);
        if (!o) return 'not run';
        if (isError(o)) return 'failed';
        return metricCell(o.summary?.[metric], metric);
      }),
    ];
  };
  const runsRow = [
    'runs',
    ...all.map((s) => {
      const o = outcome(s, scenario);
      if (!o) return 'not run';
      if (isError(o)) return `failed: ${md(shortError(o.error))}`;
      return String(runCount(o));
    }),
  ];

  const parts: string[] = [`### ${scenario}`, ''];
  parts.push(table(header, align, [runsRow, ...main.map(rowFor)]));
  if (rest.length) {
    parts.push('', `<details><summary>other ${scenario} metrics</summary>`, '', table(header, align, rest.map(rowFor)), '', '</details>');
  }
  const notes: string[] = [];
  for (const s of all) {
    const r = result(s, scenario);
    if (!r) continue;
    if (r.ok === false) notes.push(`${md(label(s))}: the run reported ok: false (something lost, reordered or failed)`);
    for (const w of (r.warnings ?? []).slice(0, 5)) notes.push(`${md(label(s))}: ${md(shortError(w, 160))}`);
    if ((r.warnings?.length ?? 0) > 5) notes.push(`${md(label(s))}: ${r.warnings!.length - 5} more warnings`);
  }
  if (notes.length) parts.push('', ...notes.map((n) => `- ⚠ ${n}`));
  for (const kind of ['latency', 'throughput']) {
    const key = `${scenario}-${kind}`;
    if (svgs[key]) parts.push('', `![${scenario}: ${kind === 'latency' ? 'latency' : 'achieved'} vs offered load](${link(key)})`);
  }
  return parts.join('\n');
}

// ---------------------------------------------------------------------------
// Plots.

interface Curved {
  server: ComparedServer;
  curve: LoadCurve;
}

function curves(c: Comparison, scenario: string): { with: Curved[]; without: string[] } {
  const withCurve: Curved[] = [];
  const without: string[] = [];
  for (const s of servers(c)) {
    const o = outcome(s, scenario);
    const curve = o && !isError(o) ? o.curve : undefined;
    if (curve && Array.isArray(curve.points) && curve.points.length) withCurve.push({ server: s, curve });
    else if (isError(o)) without.push(`${label(s)}: failed`);
    else if (!o) without.push(`${label(s)}: not run`);
    else without.push(`${label(s)}: no curve`);
  }
  return { with: withCurve, without };
}

function runsPhrase(cs: Curved[]): string {
  const runs = cs.flatMap((x) => x.curve.points.map((p) => p.runs)).filter((n) => Number.isFinite(n) && n > 0);
  if (!runs.length) return '';
  const lo = Math.min(...runs);
  const hi = Math.max(...runs);
  return lo === hi ? ` (median of ${lo} run${lo === 1 ? '' : 's'})` : ` (median of ${lo}–${hi} runs)`;
}

function latencyPlot(c: Comparison, scenario: string, cs: Curved[], without: string[]): string {
  const series: Series[] = [];
  for (const { server, curve } of cs) {
    const color = colorOf(c, server);
    const pts = [...curve.points].sort((a, b) => a.offered - b.offered);
    series.push({ id: server.name, role: 'p50', color, dashed: true, marker: 2.5, points: pts.map((p) => ({ x: p.offered, y: p.p50 })) });
  }
  for (const { server, curve } of cs) {
    const color = colorOf(c, server);
    const pts = [...curve.points].sort((a, b) => a.offered - b.offered);
    series.push({ id: server.name, role: 'p99', color, points: pts.map((p) => (p.lost > 0 ? { x: p.offered, y: p.p99, mark: 'cross' as const } : { x: p.offered, y: p.p99 })) });
  }
  const isBar = scenario === 'chat' || scenario === 'presence';
  const key: LegendEntry[] = [
    { label: 'p99', color: '#57606a', line: 'solid', marker: 'dot' },
    { label: 'p50', color: '#57606a', line: 'dashed', marker: 'none' },
    { label: 'step with losses', color: '#57606a', line: 'none', marker: 'cross' },
  ];
  return lineChart({
    title: `${scenario}: p99 latency vs offered load${runsPhrase(cs)}`,
    x: { title: `offered load (${cs[0]!.curve.offeredUnit})`, log: 'auto' },
    y: { title: 'latency (ms)', log: true },
    series,
    hlines: [{ y: 50, label: isBar ? 'p99 bar (50 ms)' : '50 ms' }],
    legend: cs.map(({ server }) => ({ label: label(server), color: colorOf(c, server) })),
    key,
    notes: without,
  });
}

function throughputPlot(c: Comparison, scenario: string, cs: Curved[], without: string[]): string {
  const series: Series[] = cs.map(({ server, curve }) => ({
    id: server.name,
    role: 'achieved',
    color: colorOf(c, server),
    points: [...curve.points]
      .sort((a, b) => a.offered - b.offered)
      .map((p) => (p.lost > 0 ? { x: p.offered, y: p.achieved, mark: 'cross' as const } : { x: p.offered, y: p.achieved })),
  }));
  // y = x only means something when one offered unit gives about one achieved unit (not for fan-out).
  const ratios = cs.flatMap((x) => x.curve.points.filter((p) => p.offered > 0).map((p) => p.achieved / p.offered));
  const comparable = ratios.length > 0 && Math.max(...ratios) <= 1.5;
  const first = cs[0]!.curve;
  return lineChart({
    title: `${scenario}: achieved vs offered load${runsPhrase(cs)}`,
    x: { title: `offered load (${first.offeredUnit})` },
    y: { title: `achieved (${first.achievedUnit})` },
    series,
    ...(comparable ? { diagonal: 'achieved = offered' } : {}),
    legend: cs.map(({ server }) => ({ label: label(server), color: colorOf(c, server) })),
    key: [{ label: 'step with losses', color: '#57606a', line: 'none', marker: 'cross' }],
    notes: without,
  });
}

/** The SVG plots: for each scenario with a load curve, latency and throughput vs offered load. */
export function renderPlots(c: Comparison): Record<string, string> {
  const svgs: Record<string, string> = {};
  for (const scenario of scenarioNames(c)) {
    const { with: cs, without } = curves(c, scenario);
    if (!cs.length) continue;
    svgs[`${scenario}-latency`] = latencyPlot(c, scenario, cs, without);
    svgs[`${scenario}-throughput`] = throughputPlot(c, scenario, cs, without);
  }
  return svgs;
}

// ---------------------------------------------------------------------------
// The whole report.

function setupSection(c: Comparison): string {
  const m = c.machine;
  const parts: string[] = ['### Setup', ''];
  parts.push(
    table(
      ['server', 'label', 'server CPUs'],
      ['l', 'l', 'l'],
      servers(c).map((s) => [`\`${md(s.name)}\``, md(label(s)), s.serverCpus ? `\`${md(s.serverCpus)}\`` : 'not pinned']),
    ),
  );
  parts.push('', `Load generator CPUs: ${c.generatorCpus ? `\`${md(c.generatorCpus)}\`` : 'not pinned'}.`, '');
  if (m) {
    const mem = typeof m.memTotalBytes === 'number' ? `${(m.memTotalBytes / 2 ** 30).toFixed(1)} GiB` : 'unknown';
    parts.push(
      `Machine: ${md(m.cpuModel ?? 'unknown CPU')}, nproc ${m.nproc ?? '?'}, ${mem} memory, Node ${md(m.node ?? '?')} on ${md(m.platform ?? '?')}` +
        (Array.isArray(m.loadavg) && m.loadavg.length ? `, load average at start ${m.loadavg.join(' / ')}` : '') +
        '.',
    );
  } else {
    parts.push('Machine: not recorded.');
  }
  parts.push('', `Run: ${c.startedAt ?? '?'} → ${c.finishedAt ?? '?'}.`, '', 'Commands, in order:', '', '```sh', ...(c.commands ?? []), '```');
  return parts.join('\n');
}

const STATUS_TEXT: Record<BarStatus, string> = { met: '✔ met', 'not met': '✘ not met', 'not measured': '– not measured' };

export function renderReport(c: Comparison, opts: ReportOptions = {}): Report {
  const link = opts.svgLink ?? ((key: string) => `benchmarks-${key}.svg`);
  const svgs = renderPlots(c);
  const parts: string[] = [];
  const m = c.machine;
  parts.push(
    '## Comparison',
    '',
    `${servers(c).map((s) => md(label(s))).join(', ')}` +
      (m ? ` on ${md(m.cpuModel ?? '?')} (nproc ${m.nproc ?? '?'})` : '') +
      `, ${c.startedAt ?? '?'}. Each cell is the median over the runs, with the min … max spread in small print; ` +
      'n/a: not reported by that server\'s run; –: no value (e.g. no load step met the bar).',
  );

  if (c.merged?.length) {
    parts.push('', 'Merged in from later runs (replacing those servers\' results for those scenarios):', '');
    for (const line of c.merged) parts.push(`- ${md(line)}`);
  }

  parts.push('', '### The bar', '');
  parts.push(table(['bar', 'verdict', 'measured (medians)', 'margin (+ room, − short)'], ['l', 'l', 'l', 'r'], evaluateBar(c).map((r) => [md(r.bar), STATUS_TEXT[r.status], md(r.measured), md(r.margin)])));

  const ratios = ratioTable(c);
  if (ratios.length && ratios[0]!.cells.length) {
    parts.push('', '### Ratios of medians', '');
    parts.push(
      table(
        ['metric', ...ratios[0]!.cells.map((x) => md(x.pair))],
        ['l', ...ratios[0]!.cells.map((): 'r' => 'r')],
        ratios.map((r) => [`${r.scenario}: ${md(r.label)}${r.lowerIsBetter ? ' (lower is better)' : ''}`, ...r.cells.map((x) => x.text)]),
      ),
    );
  }

  for (const scenario of scenarioNames(c)) parts.push('', scenarioSection(c, scenario, link, svgs));
  parts.push('', setupSection(c));
  return { markdown: parts.join('\n') + '\n', svgs };
}

// ---------------------------------------------------------------------------
// Command line.

const USAGE = `usage: node test/dist/bench/report.js <comparison.json> [--out PREFIX] [--md FILE]

  --out PREFIX  write the plots to PREFIX-<scenario>-latency.svg and
                PREFIX-<scenario>-throughput.svg (default: the comparison
                file's path without .json)
  --md FILE     write the Markdown to FILE (default: stdout); plot links
                are relative to FILE's directory
`;

function main(argv: string[]): number {
  let input: string | undefined;
  let out: string | undefined;
  let mdFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (a === '--out' || a === '--md') {
      const v = argv[++i];
      if (!v) {
        process.stderr.write(`report: ${a} needs a value\n${USAGE}`);
        return 2;
      }
      if (a === '--out') out = v;
      else mdFile = v;
    } else if (a.startsWith('--')) {
      process.stderr.write(`report: unknown option ${a}\n${USAGE}`);
      return 2;
    } else if (input === undefined) input = a;
    else {
      process.stderr.write(`report: one comparison file only\n${USAGE}`);
      return 2;
    }
  }
  if (!input) {
    process.stderr.write(USAGE);
    return 2;
  }
  let c: Comparison;
  try {
    c = JSON.parse(readFileSync(input, 'utf8')) as Comparison;
  } catch (err) {
    process.stderr.write(`report: cannot read ${input}: ${(err as Error).message}\n`);
    return 1;
  }
  if (c?.tool !== 'hyphae-bench-compare' || !Array.isArray(c.servers)) {
    process.stderr.write(`report: ${input} is not a comparison file (tool: ${String((c as { tool?: unknown })?.tool)})\n`);
    return 1;
  }
  const prefix = out ?? input.replace(/\.json$/i, '');
  const linkBase = mdFile ? dirname(resolve(mdFile)) : process.cwd();
  const { markdown, svgs } = renderReport(c, { svgLink: (key) => relative(linkBase, resolve(`${prefix}-${key}.svg`)).split('\\').join('/') });
  for (const [key, svg] of Object.entries(svgs)) {
    const file = `${prefix}-${key}.svg`;
    mkdirSync(dirname(resolve(file)), { recursive: true });
    writeFileSync(file, svg);
    process.stderr.write(`report: wrote ${file}\n`);
  }
  if (mdFile) {
    mkdirSync(dirname(resolve(mdFile)), { recursive: true });
    writeFileSync(mdFile, markdown);
    process.stderr.write(`report: wrote ${mdFile}\n`);
  } else {
    process.stdout.write(markdown);
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
