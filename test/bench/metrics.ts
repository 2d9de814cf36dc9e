/**
 * The summary lines of each scenario: how each metric is read from a run,
 * and the median over runs (with min and max) that the summary prints and
 * the comparison reads.
 */
import type { SummaryEntry } from './results.js';
import type { MucRun } from './scenarios/muc.js';
import { loginLoadStep, type LoginRun, type LoginStep } from './scenarios/login.js';
import { loadStep, type ChatRun, type MessageStep } from './scenarios/chat.js';
import type { PresenceRun } from './scenarios/presence.js';
import type { IdleRun } from './scenarios/idle.js';
import type { OverloadRun } from './scenarios/overload.js';
import type { ProxyRun } from './scenarios/proxy.js';
import { bestStep } from './scenarios/steps.js';
import { median } from './stats.js';

export interface Metric {
  name: string;
  unit: string;
  /** Direction that is better, for the reader. */
  better: 'higher' | 'lower' | 'zero';
  pick: (r: never) => number | null;
}

export const MUC_METRICS: Array<Metric & { pick: (r: MucRun) => number | null }> = [
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

/** The step a metric "at best" reads: the highest rate under the latency bar with nothing lost. */
const bestOf = (steps: readonly MessageStep[], maxP99: number): MessageStep | null => {
  const b = bestStep(steps.map(loadStep), maxP99);
  return b ? (steps.find((s) => s.offered === b.offered) ?? null) : null;
};

function messageStepMetrics<R extends { steps: MessageStep[] }>(prefix: string, maxP99: number): Array<Metric & { pick: (r: R) => number | null }> {
  const at = (f: (s: MessageStep) => number | null) => (r: R): number | null => {
    const b = bestOf(r.steps, maxP99);
    return b ? f(b) : null;
  };
  return [
    { name: `max_${prefix}deliveries_per_s_p99_under_50ms`, unit: 'deliveries/s', better: 'higher', pick: at((s) => s.messages.deliveriesPerSecond) },
    { name: 'best_offered_rate', unit: '/s', better: 'higher', pick: at((s) => s.offered) },
    { name: 'latency_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.messages.latency.p50) },
    { name: 'latency_p99_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.messages.latency.p99) },
    { name: 'latency_p999_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.messages.latency.p999) },
    { name: 'highest_offered_rate', unit: '/s', better: 'higher', pick: (r) => Math.max(...r.steps.map((s) => s.offered)) },
    { name: 'lost_deliveries', unit: '', better: 'zero', pick: (r) => r.steps.reduce((a, s) => a + s.messages.lostDeliveries, 0) },
    { name: 'out_of_order', unit: '', better: 'zero', pick: (r) => r.steps.reduce((a, s) => a + s.messages.outOfOrder, 0) },
    { name: 'errors', unit: '', better: 'zero', pick: (r) => r.steps.reduce((a, s) => a + s.messages.errors, 0) },
    { name: 'server_cpu_at_best', unit: 'cores', better: 'lower', pick: at((s) => (s.server.processes.length ? s.server.cores : null)) },
    { name: 'server_rss_max', unit: 'MiB', better: 'lower', pick: (r) => (r.steps[0]?.server.processes.length ? Math.round(Math.max(...r.steps.map((s) => s.server.maxRssBytes)) / 1048576) : null) },
    { name: 'redis_commands_per_stanza_at_best', unit: '', better: 'lower', pick: at((s) => s.messages.redis?.perStanza ?? null) },
    { name: 'route_cache_hit_rate_at_best', unit: '', better: 'higher', pick: at((s) => s.messages.routeCache?.hitRate ?? null) },
    { name: 'generator_cpu_at_best', unit: 'cores', better: 'lower', pick: at((s) => s.generator.cores) },
    { name: 'generator_worker_elu_max', unit: '', better: 'lower', pick: (r) => Math.max(...r.steps.map((s) => s.generator.maxWorkerElu)) },
    { name: 'generator_loop_delay_p99_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.generator.maxWorkerLoopDelayP99) },
  ];
}

export const chatMetrics = (maxP99: number): Array<Metric & { pick: (r: ChatRun) => number | null }> => [
  ...messageStepMetrics<ChatRun>('', maxP99),
  { name: 'login_p50', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p50 },
];

export const presenceMetrics = (maxP99: number): Array<Metric & { pick: (r: PresenceRun) => number | null }> => {
  const m = messageStepMetrics<PresenceRun>('presence_', maxP99);
  return [
    ...m.slice(0, 5),
    { name: 'initial_presence_deliveries', unit: '', better: 'higher', pick: (r) => r.initial.received },
    { name: 'initial_presence_pairs', unit: '', better: 'higher', pick: (r) => r.initial.pairs },
    { name: 'initial_presence_expected', unit: '', better: 'higher', pick: (r) => r.initial.expected },
    { name: 'initial_presence_seconds', unit: 's', better: 'lower', pick: (r) => r.initial.seconds },
    { name: 'roster_setup_seconds', unit: 's', better: 'lower', pick: (r) => r.roster.seconds },
    { name: 'login_p50', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p50 },
    ...m.slice(5),
  ];
};

export const loginMetrics = (maxP99: number): Array<Metric & { pick: (r: LoginRun) => number | null }> => {
  const at = (f: (s: LoginStep) => number | null) => (r: LoginRun): number | null => {
    const b = bestStep(r.steps.map(loginLoadStep), maxP99);
    const s = b ? r.steps.find((x) => x.offered === b.offered) : undefined;
    return s ? f(s) : null;
  };
  return [
    { name: 'max_logins_per_s', unit: '/s', better: 'higher', pick: at((s) => s.perSecond) },
    { name: 'best_offered_rate', unit: '/s', better: 'higher', pick: at((s) => s.offered) },
    { name: 'login_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.total.p50) },
    { name: 'login_p99_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.total.p99) },
    { name: 'connect_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.steps.connect.p50) },
    { name: 'tls_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.steps.tls.p50) },
    { name: 'auth_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.steps.auth.p50) },
    { name: 'bind_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.steps.bind.p50) },
    { name: 'roster_p50_at_best', unit: 'ms', better: 'lower', pick: at((s) => s.steps.roster.p50) },
    { name: 'failures', unit: '', better: 'zero', pick: (r) => r.steps.reduce((a, s) => a + s.failed, 0) },
    { name: 'server_cpu_at_best', unit: 'cores', better: 'lower', pick: at((s) => (s.server.processes.length ? s.server.cores : null)) },
    { name: 'generator_cpu_at_best', unit: 'cores', better: 'lower', pick: at((s) => s.generator.cores) },
  ];
};

export const IDLE_METRICS: Array<Metric & { pick: (r: IdleRun) => number | null }> = [
  { name: 'sessions', unit: '', better: 'higher', pick: (r) => r.sessions },
  { name: 'rss_per_session_kib', unit: 'KiB', better: 'lower', pick: (r) => (r.rssIdleBytes > 0 ? r.rssPerSessionKiB : null) },
  { name: 'server_rss_idle_mib', unit: 'MiB', better: 'lower', pick: (r) => (r.rssIdleBytes > 0 ? Math.round(r.rssIdleBytes / 1048576) : null) },
  { name: 'server_rss_before_mib', unit: 'MiB', better: 'lower', pick: (r) => (r.rssBeforeBytes > 0 ? Math.round(r.rssBeforeBytes / 1048576) : null) },
  { name: 'server_cpu_at_rest', unit: 'cores', better: 'lower', pick: (r) => (r.idle.server.processes.length ? r.idle.server.cores : null) },
  { name: 'logins_per_s', unit: '/s', better: 'higher', pick: (r) => r.login.perSecond },
  { name: 'login_p99', unit: 'ms', better: 'lower', pick: (r) => r.login.total.p99 },
  { name: 'generator_rss_mib', unit: 'MiB', better: 'lower', pick: (r) => Math.round(r.generatorRssBytes / 1048576) },
];

export const OVERLOAD_METRICS: Array<Metric & { pick: (r: OverloadRun) => number | null }> = [
  { name: 'logins_offered', unit: '', better: 'higher', pick: (r) => r.attempted },
  { name: 'logged_in', unit: '', better: 'higher', pick: (r) => r.login.in },
  { name: 'logins_refused', unit: '', better: 'lower', pick: (r) => r.login.refused },
  { name: 'logins_lost', unit: '', better: 'zero', pick: (r) => r.login.lost },
  { name: 'presence_echoed', unit: '', better: 'higher', pick: (r) => r.echo.echoed },
  { name: 'presence_errors', unit: '', better: 'lower', pick: (r) => r.echo.error },
  { name: 'presence_lost', unit: '', better: 'zero', pick: (r) => r.echo.lost },
  { name: 'logins_per_s', unit: '/s', better: 'higher', pick: (r) => r.loginsPerSecond },
  { name: 'login_p50', unit: 'ms', better: 'lower', pick: (r) => r.loginLatency.p50 },
  { name: 'login_p99', unit: 'ms', better: 'lower', pick: (r) => r.loginLatency.p99 },
  { name: 'echo_p50', unit: 'ms', better: 'lower', pick: (r) => r.echoLatency.p50 },
  { name: 'echo_p99', unit: 'ms', better: 'lower', pick: (r) => r.echoLatency.p99 },
  { name: 'echo_max', unit: 'ms', better: 'lower', pick: (r) => r.echoLatency.max },
  { name: 'server_cpu', unit: 'cores', better: 'lower', pick: (r) => (r.server.processes.length ? r.server.cores : null) },
  { name: 'server_rss_max', unit: 'MiB', better: 'lower', pick: (r) => (r.server.processes.length ? Math.round(r.server.maxRssBytes / 1048576) : null) },
];

export const PROXY_METRICS: Array<Metric & { pick: (r: ProxyRun) => number | null }> = [
  { name: 'proxy_throughput', unit: 'MB/s', better: 'higher', pick: (r) => r.proxyMBps },
  { name: 'plain_relay_throughput', unit: 'MB/s', better: 'higher', pick: (r) => r.plainMBps },
  { name: 'proxy_to_plain_ratio', unit: '', better: 'higher', pick: (r) => r.ratio },
  { name: 'setup', unit: 'ms', better: 'lower', pick: (r) => r.setupMs },
  { name: 'generator_cpu', unit: 'cores', better: 'lower', pick: (r) => r.generator.cores },
  { name: 'server_cpu', unit: 'cores', better: 'lower', pick: (r) => (r.server.processes.length ? r.server.cores : null) },
  { name: 'server_rss_max', unit: 'MiB', better: 'lower', pick: (r) => (r.server.processes.length ? Math.round(r.server.maxRssBytes / 1048576) : null) },
];


export function summarizeRuns<R>(runs: readonly R[], metrics: ReadonlyArray<{ name: string; unit: string; pick: (r: R) => number | null }>): Record<string, SummaryEntry> {
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

