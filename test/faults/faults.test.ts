/**
 * The fault matrix, short profile (issue 21): every fault of scenarios.ts —
 * each service killed with -9 and started again, NATS and Redis killed and
 * started again (Redis also EMPTY, NATS also after 15 s) — under a few
 * seconds of chat, groupchat and presence load between users on both c2s
 * nodes, one cluster for all. Each must lose nothing (every message
 * delivered live, from offline storage, or answered with an error), keep
 * the order, duplicate nothing, crash nothing and recover before the load
 * stops. `npm run faults` runs the long version and writes
 * docs/reliability.md.
 *
 * A fault whose fix has not landed is `todo` with its finding (Fault.todo
 * in scenarios.ts): it runs and reports its figures (t.diagnostic) without
 * failing the suite.
 *
 * Run: npx tsc -b test && node --test test/dist/faults/faults.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mucSkipReason } from '../harness/muc.js';
import { rosterSkipReason, startCluster, type ClusterServer } from '../harness/server.js';
import { withServerLogs } from '../harness/util.js';
import { LoadWorld } from './load.js';
import { runScenario, summary } from './run.js';
import { CLUSTER, SHORT, faultsOf } from './scenarios.js';

const skip = mucSkipReason('cluster') ?? rosterSkipReason('cluster');

describe('fault matrix, short: every service and dependency killed under load, every message accounted for', () => {
  let cluster: ClusterServer | undefined;
  let world: LoadWorld | undefined;
  /** Unhandled errors the scenarios already reported (dispose() fails on any). */
  let reported = 0;
  const srv = (): ClusterServer => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };

  before(async () => {
    if (skip) return;
    cluster = await startCluster(CLUSTER);
    world = new LoadWorld(cluster, SHORT.load);
    await world.setup();
  }, { timeout: 180_000 });

  after(async () => {
    await world?.close();
    try {
      await cluster?.dispose();
    } catch (err) {
      // Unhandled errors are a defect: fail here unless a scenario reported them already.
      if ((cluster?.unhandledErrors().length ?? 0) > reported) throw err;
    }
  });

  for (const fault of faultsOf(SHORT)) {
    it(fault.title(SHORT), { timeout: 150_000, skip: skip ?? false, todo: fault.todo ?? false }, (t) =>
      withServerLogs(t, cluster, async () => {
        const why = fault.skip(srv());
        if (why) {
          t.skip(why);
          return;
        }
        if (!world) throw new Error('the load did not start');
        const r = await runScenario(srv(), world, fault, SHORT);
        reported += r.unhandled.length;
        t.diagnostic(summary(r));
        const a = r.account;
        assert.deepEqual(r.crashed, [], 'no process exits (DESIGN.md invariant 7)');
        assert.deepEqual(r.unhandled, [], 'no unhandled error in any process');
        assert.equal(a.chat.lost, 0, `chat messages silently lost, e.g. ${a.lostIds.slice(0, 5).join(' ')}`);
        assert.equal(a.groupchat.lost, 0, `groupchat copies silently lost, e.g. ${a.lostIds.filter((id) => id.includes('@')).slice(0, 5).join(' ')}`);
        assert.equal(a.chat.reordered + a.groupchat.reordered, 0, `reordered (RFC 6120 §10.1), e.g. ${a.reorderSamples.slice(0, 3).join('; ')}`);
        assert.equal(a.chat.duplicates + a.groupchat.duplicates, 0, 'duplicated');
        if (fault.noBounce) assert.equal(a.chat.bounced, 0, `chat messages bounced: ${fault.noBounce}`);
        assert.ok(a.chat.sent > 0 && a.groupchat.expected > 0, 'the load ran');
        assert.ok(a.recovered, `messages flowed again before the load stopped (last disruption ${a.recoveryMs} ms after the fault)`);
      }),
    );
  }
});
