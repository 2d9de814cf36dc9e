/**
 * docs/reliability.md's writer: a new report keeps the hand-written
 * "Earlier runs" section of the old one, and shows a scenario's losses.
 *
 * Run: npx tsc -b test && node --test test/dist/faults/report.test.js
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { account } from './account.js';
import { EARLIER_RUNS, keepEarlierRuns, renderReport } from './report.js';
import type { ScenarioResult } from './run.js';
import { SHORT } from './scenarios.js';

const info = { command: 'npm run faults', startedAt: new Date(0), durationMs: 60_000, loadAtStart: 1 };

describe('fault report', () => {
  it('keeps the Earlier runs section of the previous report, and only that', () => {
    const previous = `# Reliability under faults\n\nold figures\n\n${EARLIER_RUNS}\n\n| when | lost |\n|---|---|\n| yesterday | 3 |\n`;
    const kept = keepEarlierRuns(previous);
    assert.equal(kept, `${EARLIER_RUNS}\n\n| when | lost |\n|---|---|\n| yesterday | 3 |\n`);
    const md = renderReport([], info, kept);
    assert.ok(md.endsWith(`${EARLIER_RUNS}\n\n| when | lost |\n|---|---|\n| yesterday | 3 |\n`), md.slice(-200));
    assert.ok(!md.includes('old figures'));
    assert.equal(keepEarlierRuns('# Reliability under faults\n\nno such section\n'), '');
  });

  it('a scenario row shows what was lost, in bold, and the CI todo list names the finding', () => {
    const s = { id: 'c.t.0.1.1', kind: 'chat' as const, from: 0, to: 1, seq: 1, at: 5_000, conn: 0 };
    const journal = { users: 2, conns: [], stays: [], sent: [s], received: [], bounces: [] };
    const r: ScenarioResult = {
      key: 'nats',
      title: 'NATS killed (-9), started again after 2 s',
      outageMs: 2_000,
      loadMs: 5_000,
      account: account(journal, { injectedAt: 4_000, stoppedAt: 9_000, settledAt: 10_000, flowMs: 1_000, cutWindowMs: 2_000 }),
      repaired: [],
      crashed: [],
      unhandled: [],
      broken: 0,
      accountsRecreated: 0,
      phasesMs: { ready: 0, load: 5_000, stragglers: 1_000, cycle: 1_000 },
      journal,
      injectedAt: 4_000,
    };
    const md = renderReport([{ profile: SHORT, results: [r], skipped: [], failed: [], todo: [{ title: r.title, todo: 'finding 3: order' }] }], info);
    const row = md.split('\n').find((l) => l.startsWith(`| ${r.title} |`));
    assert.ok(row, md);
    assert.match(row, /\| 1 \| 0 \| 0 \| 0 \| 0 \| \*\*1\*\* \| 0 \| 0 \|/, row);
    assert.match(md, /- NATS killed \(-9\), started again: finding 3: order/);
    assert.match(md, /lost, e\.g\. `c\.t\.0\.1\.1`/);
  });
});
