/**
 * `npm run faults`: every fault of every service and dependency under load
 * (the long profile by default), one cluster for all, and the figures
 * written to docs/reliability.md.
 *
 *   node test/dist/faults/main.js [--profile long|short|long,short] [--only key,key]
 *                                 [--out path] [--no-write] [--journal dir]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, rosterSkipReason, startCluster } from '../harness/server.js';
import { mucSkipReason } from '../harness/muc.js';
import { LoadWorld } from './load.js';
import { keepEarlierRuns, renderReport, type ProfileRun } from './report.js';
import { runScenario, summary, type ScenarioResult } from './run.js';
import { CLUSTER, LONG, SHORT, faultsOf, type Profile } from './scenarios.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'long' },
      only: { type: 'string' },
      out: { type: 'string', default: join(REPO_ROOT, 'docs/reliability.md') },
      'no-write': { type: 'boolean', default: false },
      /** A directory to write each scenario's journal to (<profile>-<key>.json), for a closer look. */
      journal: { type: 'string' },
    },
  });
  const profiles: Profile[] = (values.profile ?? 'long').split(',').map((name) => {
    if (name === 'long') return LONG;
    if (name === 'short') return SHORT;
    throw new Error(`--profile takes long, short or both (long,short), not ${name}`);
  });
  const only = values.only?.split(',').map((k) => k.trim()).filter(Boolean);
  const why = mucSkipReason('cluster') ?? rosterSkipReason('cluster');
  if (why) throw new Error(`cannot run a cluster here: ${why}`);

  const startedAt = new Date();
  const loadAtStart = loadavg()[0] ?? 0;
  const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  log(`starting the cluster (profiles ${profiles.map((p) => p.name).join(', ')})`);
  const cluster = await startCluster(CLUSTER);
  const runs: ProfileRun[] = [];
  try {
    for (const profile of profiles) {
      const faults = faultsOf(profile).filter((f) => !only || only.includes(f.key));
      if (faults.length === 0) throw new Error(`no fault matches --only ${values.only}`);
      const results: ScenarioResult[] = [];
      const skipped: Array<{ title: string; reason: string }> = [];
      const failed: Array<{ title: string; error: string }> = [];
      const world = new LoadWorld(cluster, profile.load);
      await world.setup();
      log(`${profile.name} profile, ${faults.length} faults; load ready: ${JSON.stringify(world.counts())}, room ${world.room}`);
      for (const f of faults) {
        const reason = f.skip(cluster);
        if (reason) {
          skipped.push({ title: f.title(profile), reason });
          log(`skip ${f.key}: ${reason}`);
          continue;
        }
        log(`${f.key}: ${f.title(profile)}`);
        try {
          const r = await runScenario(cluster, world, f, profile);
          results.push(r);
          log(summary(r));
          if (values.journal) {
            mkdirSync(values.journal, { recursive: true });
            writeFileSync(join(values.journal, `${profile.name}-${f.key}.json`), JSON.stringify({ injectedAt: r.injectedAt, ...r.journal }));
          }
        } catch (err) {
          failed.push({ title: f.title(profile), error: (err as Error).message });
          log(`${f.key} FAILED: ${(err as Error).stack ?? String(err)}`);
        }
      }
      await world.close();
      runs.push({ profile, results, skipped, failed, todo: faults.map((f) => ({ title: f.title(profile), todo: f.todo })) });
    }
  } finally {
    // dispose() throws when a process reported an unhandled error: the scenarios have counted them already.
    await cluster.dispose().catch((err: unknown) => log(`dispose: ${(err as Error).message.split('\n')[0]}`));
  }
  const command = `npm run faults${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const kept = existsSync(values.out) ? keepEarlierRuns(readFileSync(values.out, 'utf8')) : '';
  const md = renderReport(runs, { command, startedAt, durationMs: Date.now() - startedAt.getTime(), loadAtStart }, kept);
  if (values['no-write']) {
    console.log(md);
  } else {
    writeFileSync(values.out, md);
    log(`wrote ${values.out}`);
  }
  const all = runs.flatMap((r) => r.results);
  const bad = all.filter(
    (r) => r.account.chat.lost || r.account.groupchat.lost || r.account.chat.reordered || r.account.groupchat.reordered || r.crashed.length || r.unhandled.length,
  );
  return bad.length || runs.some((r) => r.failed.length) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
