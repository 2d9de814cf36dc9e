/**
 * One fault scenario: warm up, inject, keep the load running through the
 * recovery, stop it, wait for stragglers, log every client out and back in
 * (offline messages), then account for every stanza (account.ts).
 */
import { sleep } from '../harness/clients.js';
import type { ClusterServer } from '../harness/server.js';
import { account, type Account, type Journal } from './account.js';
import type { LoadWorld } from './load.js';
import type { Fault, FaultContext, Profile } from './scenarios.js';

export interface ScenarioResult {
  readonly key: string;
  readonly title: string;
  /** From the injection to the heal (the process or dependency back). */
  readonly outageMs: number;
  /** How long the load ran. */
  readonly loadMs: number;
  readonly account: Account;
  /** Processes found not running at the start, started again (a previous scenario's leftovers). */
  readonly repaired: string[];
  /** Processes that exited on their own during the scenario (name and exit code or signal). */
  readonly crashed: string[];
  /** Unhandled rejections and exceptions the processes reported during the scenario (DESIGN.md invariant 7). */
  readonly unhandled: string[];
  /** Client connections the fault broke. */
  readonly broken: number;
  /** Accounts registered again at the end because the store lost them. */
  readonly accountsRecreated: number;
  /** Where the scenario's time went: getting ready, the load, the stragglers, logging everyone out and in. */
  readonly phasesMs: { ready: number; load: number; stragglers: number; cycle: number };
  /** Everything recorded (for --journal). */
  readonly journal: Journal;
  readonly injectedAt: number;
}

export async function runScenario(cluster: ClusterServer, world: LoadWorld, fault: Fault, p: Profile): Promise<ScenarioResult> {
  const t0 = Date.now();
  const repaired = await world.ready();
  const unhandledBefore = cluster.unhandledErrors().length;
  const recreatedBefore = world.accountsRecreated;
  world.begin();
  const ctx: FaultContext = { cluster, room: world.room, target: 0 };
  const loadStart = Date.now();
  world.start();
  let injectedAt = loadStart;
  let healedAt = loadStart;
  let stoppedAt = loadStart;
  try {
    await sleep(p.warmupMs);
    injectedAt = Date.now();
    await fault.inject(ctx);
    await sleep(Math.max(0, injectedAt + fault.downMs(p) - Date.now()));
    await fault.heal(ctx);
    healedAt = Date.now();
    for (;;) {
      const now = Date.now();
      if (now - healedAt > p.maxRecoveryMs) break;
      if (now - injectedAt >= p.minLoadAfterFaultMs && world.stable(p.stableMs, p.flowMs)) break;
      await sleep(200);
    }
  } finally {
    stoppedAt = Date.now();
    await world.stop();
  }
  // Every process is running again after the heal: one that is not exited by itself.
  const crashed = cluster
    .exitStatus()
    .filter((s) => s.code !== null || s.signal !== null)
    .map((s) => `${s.name} (exit ${s.code ?? s.signal})`);
  await sleep(p.stragglersMs);
  const settledAt = Date.now();
  await world.cycle();
  const cycledAt = Date.now();
  const journal = world.journal();
  return {
    key: fault.key,
    title: fault.title(p),
    outageMs: healedAt - injectedAt,
    loadMs: stoppedAt - loadStart,
    account: account(journal, { injectedAt, stoppedAt, settledAt, flowMs: p.flowMs, cutWindowMs: p.cutWindowMs }),
    repaired,
    crashed,
    unhandled: cluster.unhandledErrors().slice(unhandledBefore),
    broken: journal.conns.filter((c) => c.closedAt !== null && !c.closedByHarness).length,
    accountsRecreated: world.accountsRecreated - recreatedBefore,
    phasesMs: { ready: loadStart - t0, load: stoppedAt - loadStart, stragglers: settledAt - stoppedAt, cycle: cycledAt - settledAt },
    journal,
    injectedAt,
  };
}

/** One line of figures, for test diagnostics and the console. */
export function summary(r: ScenarioResult): string {
  const a = r.account;
  const c = a.chat;
  const g = a.groupchat;
  const rec = a.recoveryMs === null ? 'no disruption' : `${a.recovered ? '' : 'NOT RECOVERED, last disruption '}${(a.recoveryMs / 1_000).toFixed(1)} s`;
  const parts = [
    `${r.title}: outage ${(r.outageMs / 1_000).toFixed(1)} s, load ${(r.loadMs / 1_000).toFixed(1)} s`,
    `chat sent ${c.sent}: live ${c.live}, offline ${c.offline}, bounced ${c.bounced}, cut ${c.cut}, LOST ${c.lost}, reordered ${c.reordered}, duplicates ${c.duplicates}` +
      (c.deliveredAndBounced ? `, delivered and bounced ${c.deliveredAndBounced}` : ''),
    `groupchat ${g.sent} sent, ${g.expected} copies expected: received ${g.received}, bounced ${g.bounced}, cut ${g.cut}, LOST ${g.lost}, reordered ${g.reordered}, duplicates ${g.duplicates}`,
    `presence sent ${a.presence.sent}, received ${a.presence.received}, stale ${a.presence.stale}, reordered ${a.presence.reordered}`,
    `recovery ${rec}; ${r.broken} client connections broken`,
    `time: ready ${r.phasesMs.ready} ms, load ${r.phasesMs.load} ms, logout/login ${r.phasesMs.cycle} ms`,
  ];
  if (r.crashed.length) parts.push(`CRASHED: ${r.crashed.join(', ')}`);
  if (r.unhandled.length) parts.push(`UNHANDLED ERRORS: ${r.unhandled.length}, e.g. ${r.unhandled[0]?.slice(0, 300)}`);
  if (r.repaired.length) parts.push(`restarted before the scenario: ${r.repaired.join(', ')}`);
  if (r.accountsRecreated) parts.push(`${r.accountsRecreated} accounts registered again (lost with Redis's data)`);
  const conds = Object.entries(a.bounceConditions);
  if (conds.length) parts.push(`errors: ${conds.map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  if (a.lostIds.length) parts.push(`lost e.g. ${a.lostIds.slice(0, 5).join(' ')}`);
  if (a.reorderSamples.length) parts.push(`reordered e.g. ${a.reorderSamples.slice(0, 3).join('; ')}`);
  return parts.join(' | ');
}
