/**
 * Latency histograms (hdr-histogram-js, microsecond resolution, 3
 * significant digits) and small statistics helpers shared by the runner and
 * its workers.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

/** A histogram of durations recorded in microseconds (1 µs … 10 min, auto-resizing). */
export function newHistogram(): Histogram {
  return build({ bitBucketSize: 32, autoResize: true, lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

/** Records a duration given in milliseconds. */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)));
}

export function encodeHistogram(h: Histogram): string {
  return encodeIntoCompressedBase64(h);
}

export function decodeHistogram(s: string): Histogram {
  return decodeFromCompressedBase64(s, 32, false);
}

/** Percentiles of a histogram, in milliseconds (null fields when it is empty). */
export interface LatencySummary {
  count: number;
  p50: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  mean: number | null;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50: null, p99: null, p999: null, max: null, mean: null };
  return {
    count: h.totalCount,
    p50: round3(h.getValueAtPercentile(50) / 1000),
    p99: round3(h.getValueAtPercentile(99) / 1000),
    p999: round3(h.getValueAtPercentile(99.9) / 1000),
    max: round3(h.maxValue / 1000),
    mean: round3(h.mean / 1000),
  };
}

/** Summary of a list of millisecond durations through a histogram. */
export function summarizeMs(values: readonly number[]): LatencySummary {
  const h = newHistogram();
  for (const v of values) recordMs(h, v);
  const s = summarize(h);
  h.destroy();
  return s;
}

export function median(values: readonly number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
