/**
 * Rising load: a scenario runs one phase per offered rate, lowest first,
 * and stops stepping once the server no longer keeps up. From the steps of
 * each run come the best step (the highest rate that met the latency bar
 * with nothing lost) and, over the runs, the median curve of latency
 * against offered load that the report plots.
 */
import { median } from '../stats.js';
import type { LoadCurve, LoadStep } from '../results.js';

/** Whether to go on to the next rate after `s`. */
export function keepStepping(s: LoadStep, stopP99: number, expectedAchieved: number): boolean {
  if (s.lost > 0 || s.errors > 0) return false;
  if (s.latency.p99 === null || s.latency.p99 > stopP99) return false;
  // Throughput well below the offer: the server is saturated whatever the latency says.
  return s.achieved >= 0.8 * expectedAchieved;
}

/** The highest step whose p99 is under the bar with nothing lost or refused (null: none). */
export function bestStep(steps: readonly LoadStep[], maxP99: number): LoadStep | null {
  let best: LoadStep | null = null;
  for (const s of steps) {
    if (s.lost === 0 && s.errors === 0 && s.latency.p99 !== null && s.latency.p99 < maxP99 && (best === null || s.offered > best.offered)) best = s;
  }
  return best;
}

/** Median over the runs of every offered rate some run reached. */
export function medianCurve(runs: ReadonlyArray<readonly LoadStep[]>, offeredUnit: string, achievedUnit: string): LoadCurve {
  const rates = [...new Set(runs.flatMap((r) => r.map((s) => s.offered)))].sort((a, b) => a - b);
  const med = (xs: Array<number | null>): number | null => median(xs.filter((x): x is number => x !== null));
  const r3 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    offeredUnit,
    achievedUnit,
    points: rates.map((offered) => {
      const at = runs.map((r) => r.find((s) => s.offered === offered)).filter((s): s is LoadStep => s !== undefined);
      return {
        offered,
        achieved: Math.round((med(at.map((s) => s.achieved)) ?? 0) * 100) / 100,
        p50: r3(med(at.map((s) => s.latency.p50))),
        p99: r3(med(at.map((s) => s.latency.p99))),
        p999: r3(med(at.map((s) => s.latency.p999))),
        lost: at.reduce((a, s) => a + s.lost, 0),
        runs: at.length,
      };
    }),
  };
}
