/** docs/reliability.md: the figures of a fault run as markdown. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import type { Profile } from './scenarios.js';
import type { ScenarioResult } from './run.js';

/** What one profile of the run gave. */
export interface ProfileRun {
  readonly profile: Profile;
  readonly results: readonly ScenarioResult[];
  /** Faults that could not run here, with why. */
  readonly skipped: ReadonlyArray<{ title: string; reason: string }>;
  /** Faults whose scenario threw, with the error. */
  readonly failed: ReadonlyArray<{ title: string; error: string }>;
  /** Every fault of the run with the finding CI waits for (Fault.todo). */
  readonly todo: ReadonlyArray<{ title: string; todo: string | undefined }>;
}

export interface RunInfo {
  readonly command: string;
  readonly startedAt: Date;
  readonly durationMs: number;
  /** The 1-minute load average when the run started (the machine may be shared: recovery times stretch with it). */
  readonly loadAtStart: number;
}

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${sha}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

export function machine(): string {
  const cpu = cpus();
  return `${type()} ${release()}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

const s1 = (ms: number): string => (ms / 1_000).toFixed(1);

function recovery(r: ScenarioResult): string {
  const a = r.account;
  if (a.recoveryMs === null) return 'no disruption';
  return a.recovered ? `${s1(a.recoveryMs)} s` : `not within the load (last disruption at ${s1(a.recoveryMs)} s)`;
}

/** A cell that stands out when it is not zero. */
const bad = (n: number): string => (n === 0 ? '0' : `**${n}**`);

function section(run: ProfileRun, out: string[]): void {
  const p = run.profile;
  const l = p.load;
  out.push(`## Figures: ${p.name} profile`);
  out.push('');
  out.push(
    `Load (real clients over TCP, STARTTLS): ${l.pairs} user pairs, the two users of a pair on different c2s nodes and subscribed to each other, ` +
      `each sending the other ${l.chatPerSecond} chat messages/s to the bare JID (${l.pairs * 2 * l.chatPerSecond} messages/s in all); ` +
      `a persistent room with ${l.occupants} occupants on both nodes, each sending ${l.groupchatPerSecond} groupchat messages/s; ` +
      `every user changing its presence every ${s1(l.presenceEveryMs)} s. ` +
      `Each scenario: ${s1(p.warmupMs)} s of load, the fault, the load kept running at least ${s1(p.minLoadAfterFaultMs)} s after it and until ` +
      `${s1(p.stableMs)} s in a row flowed (at most ${s1(p.maxRecoveryMs)} s after the heal), ${s1(p.stragglersMs)} s for stragglers, then every ` +
      'client logs out and back in (what offline storage kept arrives then).',
  );
  out.push('');
  out.push('| fault | outage | load | chat sent | live | offline | bounced | cut | lost | reordered | dup | groupchat copies | received | bounced | cut | lost | reordered | dup | presence stale | recovery |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of run.results) {
    const c = r.account.chat;
    const g = r.account.groupchat;
    const notes = `${r.crashed.length ? ` — **crashed: ${r.crashed.join(', ')}**` : ''}${r.unhandled.length ? ` — **${r.unhandled.length} unhandled errors**` : ''}`;
    out.push(
      `| ${r.title}${notes} | ${s1(r.outageMs)} s | ${s1(r.loadMs)} s | ${c.sent} | ${c.live} | ${c.offline} | ${c.bounced} | ${c.cut} | ${bad(c.lost)} | ${bad(c.reordered)} | ${bad(c.duplicates)} | ` +
        `${g.expected} | ${g.received} | ${g.bounced} | ${g.cut} | ${bad(g.lost)} | ${bad(g.reordered)} | ${bad(g.duplicates)} | ${bad(r.account.presence.stale)} | ${recovery(r)} |`,
    );
  }
  for (const s of run.skipped) out.push(`| ${s.title} | skipped: ${s.reason} |`);
  for (const f of run.failed) out.push(`| ${f.title} | the scenario failed: ${f.error.replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 300)} |`);
  const notes = run.results.filter(
    (r) => r.account.lostIds.length || r.account.reorderSamples.length || Object.keys(r.account.bounceConditions).length || r.accountsRecreated || r.unhandled.length,
  );
  if (notes.length) {
    out.push('');
    for (const r of notes) {
      const a = r.account;
      const bits: string[] = [];
      const conds = Object.entries(a.bounceConditions);
      if (conds.length) bits.push(`errors received: ${conds.map(([k, n]) => `\`${k}\` ×${n}`).join(', ')}`);
      if (a.chat.deliveredAndBounced) bits.push(`${a.chat.deliveredAndBounced} chat messages both delivered and bounced`);
      if (a.lostIds.length) bits.push(`lost, e.g. \`${a.lostIds.slice(0, 4).join('`, `')}\``);
      if (a.reorderSamples.length) bits.push(`reordered, e.g. ${a.reorderSamples.slice(0, 3).join('; ')}`);
      if (r.unhandled.length) bits.push(`unhandled errors reported by the processes: ${r.unhandled.slice(0, 3).map((u) => `\`${u.slice(0, 200)}\``).join(', ')}`);
      if (r.accountsRecreated) bits.push(`${r.accountsRecreated} accounts were registered again before the final login (Redis lost them)`);
      bits.push(`presence: ${a.presence.sent} updates sent, ${a.presence.received} received, ${a.presence.reordered} reordered`);
      out.push(`- ${r.title}: ${bits.join('; ')}.`);
    }
  }
  out.push('');
}

/** The heading of the hand-kept section a new report carries over from the old one (keepEarlierRuns). */
export const EARLIER_RUNS = '## Earlier runs';

/** The hand-written "Earlier runs" section of an existing report (from its heading to the end), or ''. */
export function keepEarlierRuns(previous: string): string {
  const at = previous.indexOf(`\n${EARLIER_RUNS}\n`);
  return at < 0 ? '' : previous.slice(at + 1);
}

/** The report; `kept` (keepEarlierRuns of the previous one) goes at the end. */
export function renderReport(runs: readonly ProfileRun[], info: RunInfo, kept = ''): string {
  const out: string[] = [];
  out.push('# Reliability under faults');
  out.push('');
  out.push(
    'Every fault of every service and dependency of a cluster, injected under load, with every stanza accounted for ' +
      '(DESIGN.md invariants 1, 2 and 7; issue 21). Generated by the fault harness in `test/faults/`; do not edit by hand.',
  );
  out.push('');
  out.push(`- Command: \`${info.command}\`, ${info.startedAt.toISOString()}, ${Math.round(info.durationMs / 60_000)} min in all`);
  out.push(
    `- Machine: ${machine()}; load average ${info.loadAtStart.toFixed(1)} at the start, ${loadavg()[0]?.toFixed(1)} at the end ` +
      '(the cluster, its dependencies and the clients share it: outages and recovery times stretch with the load); ' +
      `commit ${commit()}`,
  );
  out.push(
    '- Cluster: nats-server, redis-server (append-only file, fsync always), sm, 2 × roster, 2 × muc, 2 × proxy65, 2 × c2s, ' +
      'each its own process, default configuration. A client whose connection breaks logs in again on its own node at once, ' +
      'retrying until it can, and rejoins the room.',
  );
  out.push('');
  for (const run of runs) section(run, out);
  const todo = new Map<string, string>();
  for (const run of runs) for (const t of run.todo) if (t.todo) todo.set(t.title.replace(/ after \d+(\.\d+)? s$/, ''), t.todo);
  if (todo.size) {
    out.push('In CI (short profile, `test/faults/faults.test.ts`) these run as `todo` until their fix lands:');
    out.push('');
    for (const [title, why] of todo) out.push(`- ${title}: ${why}`);
    out.push('');
  }
  out.push('## How to read it');
  out.push('');
  out.push(
    [
      '- **chat**: each message is *live* (received without a XEP-0203 `<delay/>`), *offline* (received with one, from offline storage), ' +
        "*bounced* (its sender received a `type='error'` message with the same id), *cut*, or **lost** (none of those). " +
        '*Cut* is what a broken client connection had in flight, which XEP-0198 would resend or report: sent within 2 s before the ' +
        "sender's or the recipient's connection broke, and after the last message of that sender that got through on it. " +
        'Message ids read `c.<run>.<sender>.<recipient>.<seq>` (groupchat: `g.<run>.<sender>.<seq>@<occupant>`).',
      '- **groupchat copies**: one per occupant in the room when the message was sent (self-presence received, XEP-0045 §7.2.2), the ' +
        "sender's own reflection included; *received*, *bounced* (the sender got the error), *cut* (as above), or **lost**.",
      '- **reordered**: per sender → recipient, a message received after one with a higher sequence number (RFC 6120 §10.1; XEP-0045 §7.4 ' +
        'per occupant); **dup**: a second copy of one.',
      "- **presence stale**: contacts whose last view of a user, once the stragglers had arrived, was not the user's last presence (both connected). " +
        'After Redis restarted EMPTY the rosters are gone with it (Redis is also the durable store until PostgreSQL): no subscription, no presence.',
      '- **recovery**: from the injection until messages flow again end to end: the last moment something was disrupted (a message sent ' +
        'then not delivered live within 1 s, a client not connected or not in the room).',
      '- **outage**: from the kill to the process or dependency being back (ready).',
    ].join('\n'),
  );
  out.push('');
  out.push('## Reproducing');
  out.push('');
  out.push(
    [
      '```sh',
      'npm run faults                              # every fault, long profile; rewrites this file',
      'npm run faults -- --profile long,short      # both profiles, one table each',
      'npm run faults -- --only nats-15s --no-write  # one fault, the report on stdout',
      '```',
      '',
      'Fault keys: c2s, sm, roster, muc, proxy65, redis, redis-8s, nats, nats-15s, redis-empty, redis-empty-8s. `--journal <dir>` keeps every ' +
        "scenario's record of sends and receipts. CI runs the short profile of every fault (`test/faults/faults.test.ts`), asserting nothing lost, " +
        'reordered or duplicated, no process exit or unhandled error, and recovery before the load stops. ' +
        `A section headed \`${EARLIER_RUNS}\` at the end of this file is kept when the file is written again.`,
    ].join('\n'),
  );
  out.push('');
  if (kept) out.push(kept.trimEnd(), '');
  return out.join('\n');
}
