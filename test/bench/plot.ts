/**
 * A small SVG line-chart writer for the benchmark report (report.ts): one
 * plot area with linear or log axes, one line with point markers per
 * series, horizontal reference lines, an optional y = x diagonal and a
 * legend to the right. Output is standalone SVG 1.1 on a white background
 * (GitHub shows it through <img>), with no scripts, fonts or external
 * references.
 *
 * Every series is one <path> with class "series <role>" and
 * data-series="<id>", so a reader (or a test) can find the line of a given
 * server without depending on the drawing order.
 */

export interface SeriesPoint {
  x: number;
  /** null: no value at this x (the line has a gap there). */
  y: number | null;
  /** 'cross': a step that lost something, drawn as × instead of a dot. */
  mark?: 'cross';
}

export interface Series {
  /** Stable id (the server name), written as data-series. */
  id: string;
  /** What the line shows, e.g. 'p99', 'p50', 'achieved'; written as a class. */
  role: string;
  color: string;
  dashed?: boolean;
  /** Marker radius; 0 for no dots (crosses are still drawn). */
  marker?: number;
  points: SeriesPoint[];
}

export interface Axis {
  title: string;
  /** true: log scale; 'auto': log when the x values are spread geometrically. */
  log?: boolean | 'auto';
}

export interface LegendEntry {
  label: string;
  color: string;
  /** A line sample: solid (default), dashed, dotted. */
  line?: 'solid' | 'dashed' | 'dotted' | 'none';
  /** A marker sample: a dot, a cross, or none. */
  marker?: 'dot' | 'cross' | 'none';
}

export interface ChartSpec {
  title: string;
  x: Axis;
  y: Axis;
  series: Series[];
  /** Horizontal reference lines, e.g. the 50 ms bar. */
  hlines?: Array<{ y: number; label: string }>;
  /** Draw y = x with this label (only where both axes cover it). */
  diagonal?: string;
  /** Legend: the series (one entry per server), then a key of line styles. */
  legend: LegendEntry[];
  key?: LegendEntry[];
  /** Short lines under the legend, e.g. "ejabberd: failed". */
  notes?: string[];
  width?: number;
  height?: number;
}

const FONT = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const TEXT = '#24292f';
const MUTED = '#57606a';
const GRID = '#d8dee4';
const GRID_MINOR = '#eef1f4';

/** Rough width of a string in a sans-serif font (no canvas to measure with). */
export function textWidth(s: string, size: number): number {
  let w = 0;
  for (const ch of s) {
    if ('il.,:;|!\'’ '.includes(ch)) w += 0.3;
    else if ('mwMW@%'.includes(ch)) w += 0.9;
    else if (ch >= 'A' && ch <= 'Z') w += 0.68;
    else if (ch >= '0' && ch <= '9') w += 0.56;
    else w += 0.54;
  }
  return w * size;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** Shortens a label to fit `px` at `size`, with an ellipsis. */
function fit(s: string, px: number, size: number): string {
  if (textWidth(s, size) <= px) return s;
  let t = s;
  while (t.length > 1 && textWidth(t + '…', size) > px) t = t.slice(0, -1);
  return t + '…';
}

const r2 = (v: number): string => String(Math.round(v * 100) / 100);

/** A tick label: thousands separators, at most 2 significant digits below 1. */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1) return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return String(Number(v.toPrecision(2)));
}

interface Tick {
  v: number;
  label: string | null;
  /** Major ticks keep their label when labels would overlap. */
  major: boolean;
}

interface Scale {
  log: boolean;
  lo: number;
  hi: number;
  ticks: Tick[];
  /** Data value → 0..1 along the axis. */
  frac(v: number): number;
}

function niceStep(span: number, count: number): number {
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Linear scale from 0 (or below, for negative data) to a round maximum. */
function linearScale(values: number[]): Scale {
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks: Tick[] = [];
  for (let i = 0; lo + i * step <= hi + step * 1e-9; i++) {
    const v = Math.round((lo + i * step) * 1e9) / 1e9;
    ticks.push({ v, label: tickLabel(v), major: true });
  }
  return { log: false, lo, hi, ticks, frac: (v) => (v - lo) / (hi - lo) };
}

/** The largest 1, 2 or 5 × 10^k at or below v (at or above, with up). */
function round125(v: number, up: boolean): number {
  const p = 10 ** Math.floor(Math.log10(v));
  const steps = [1, 2, 5, 10];
  if (up) {
    for (const m of steps) if (m * p >= v * (1 - 1e-12)) return m * p;
    return 10 * p;
  }
  for (let i = steps.length - 1; i >= 0; i--) if (steps[i]! * p <= v * (1 + 1e-12)) return steps[i]! * p;
  return p;
}

/** Log scale over 1-2-5 bounds around the positive values. */
function logScale(values: number[]): Scale {
  const pos = values.filter((v) => v > 0 && Number.isFinite(v));
  let lo = pos.length ? round125(Math.min(...pos), false) : 1;
  let hi = pos.length ? round125(Math.max(...pos), true) : 10;
  // At least a decade, so that a flat line is not drawn against a cramped axis.
  for (let down = true; hi / lo < 9.99; down = !down) {
    if (down) lo = round125(lo * 0.99, false);
    else hi = round125(hi * 1.01, true);
  }
  const decades = Math.log10(hi / lo);
  const ticks: Tick[] = [];
  for (let k = Math.floor(Math.log10(lo)); 10 ** k <= hi * (1 + 1e-9); k++) {
    for (let m = 1; m <= 9; m++) {
      const v = Number((m * 10 ** k).toPrecision(12));
      if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
      const labelled = m === 1 || ((m === 2 || m === 5) && decades <= 3.5);
      if (!labelled && decades > 5) continue;
      ticks.push({ v, label: labelled ? tickLabel(v) : null, major: m === 1 });
    }
  }
  const llo = Math.log10(lo);
  const lhi = Math.log10(hi);
  return { log: true, lo, hi, ticks, frac: (v) => (Math.log10(Math.max(v, lo)) - llo) / (lhi - llo) };
}

/** Geometric steps (1k, 2k, 4k, …) read better on a log axis; even steps on a linear one. */
export function looksGeometric(values: number[]): boolean {
  const xs = [...new Set(values.filter((v) => v > 0))].sort((a, b) => a - b);
  if (xs.length < 3 || xs[xs.length - 1]! / xs[0]! < 10) return false;
  const cv = (d: number[]): number => {
    const m = d.reduce((a, b) => a + b, 0) / d.length;
    const sd = Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / d.length);
    return sd / m;
  };
  const lin = xs.slice(1).map((v, i) => v - xs[i]!);
  const geo = xs.slice(1).map((v, i) => Math.log(v / xs[i]!));
  return cv(geo) < cv(lin);
}

/** Drops labels that would overlap a label already kept (majors first). */
function thinLabels(ticks: Tick[], pos: (v: number) => number, extent: (t: Tick) => number): void {
  const kept: Array<[number, number]> = [];
  const order = [...ticks].sort((a, b) => Number(b.major) - Number(a.major));
  for (const t of order) {
    if (t.label === null) continue;
    const c = pos(t.v);
    const half = extent(t) / 2 + 3;
    if (kept.some(([a, b]) => c + half > a && c - half < b)) t.label = null;
    else kept.push([c - half, c + half]);
  }
}

function dashArray(line: LegendEntry['line'] | undefined): string {
  return line === 'dashed' ? ' stroke-dasharray="6 4"' : line === 'dotted' ? ' stroke-dasharray="2 3"' : '';
}

function cross(x: number, y: number, s: number, color: string): string {
  return `<path d="M${r2(x - s)} ${r2(y - s)}L${r2(x + s)} ${r2(y + s)}M${r2(x - s)} ${r2(y + s)}L${r2(x + s)} ${r2(y - s)}" stroke="${color}" stroke-width="2.2" stroke-linecap="round" fill="none"/>`;
}

/** Renders the chart as a standalone SVG document. */
export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 900;
  const H = spec.height ?? 500;
  const fs = 12;
  const legendLabels = [...spec.legend, ...(spec.key ?? [])].map((e) => e.label);
  const legendW = Math.min(250, Math.max(130, ...legendLabels.map((l) => textWidth(l, fs) + 46)));
  const xs = spec.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = spec.series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y])));
  for (const h of spec.hlines ?? []) ys.push(h.y);
  const xLog = spec.x.log === 'auto' ? looksGeometric(xs) : spec.x.log === true;
  const yLog = spec.y.log === 'auto' ? looksGeometric(ys) : spec.y.log === true;
  const sx = xLog ? logScale(xs) : linearScale(xs);
  const sy = yLog ? logScale(ys) : linearScale(ys);

  const yLabelW = Math.max(...sy.ticks.map((t) => (t.label ? textWidth(t.label, fs) : 0)), 10);
  const left = 30 + yLabelW + 10;
  const top = 52;
  const bottom = 58;
  const right = legendW + 28;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const px = (v: number): number => left + sx.frac(v) * pw;
  const py = (v: number): number => top + (1 - sy.frac(v)) * ph;
  thinLabels(sx.ticks, px, (t) => textWidth(t.label ?? '', fs));
  thinLabels(sy.ticks, (v) => -py(v), () => fs + 2);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${escapeXml(FONT)}" font-size="${fs}" fill="${TEXT}">`,
  );
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text class="chart-title" x="${left}" y="28" font-size="15" font-weight="600">${escapeXml(fit(spec.title, W - left - 10, 15))}</text>`);

  // Grid and ticks.
  out.push('<g class="grid" fill="none" stroke-width="1">');
  for (const t of sx.ticks) {
    const x = r2(px(t.v));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="${t.label !== null || t.major ? GRID : GRID_MINOR}"/>`);
  }
  for (const t of sy.ticks) {
    const y = r2(py(t.v));
    out.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="${t.label !== null || t.major ? GRID : GRID_MINOR}"/>`);
  }
  out.push('</g>');
  out.push(`<rect class="plot-area" x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="${MUTED}" stroke-width="1"/>`);
  out.push(`<g class="x-ticks" text-anchor="middle" fill="${MUTED}">`);
  for (const t of sx.ticks) {
    if (t.label === null) continue;
    const x = r2(px(t.v));
    out.push(`<line x1="${x}" y1="${top + ph}" x2="${x}" y2="${top + ph + 5}" stroke="${MUTED}"/><text x="${x}" y="${top + ph + 19}">${escapeXml(t.label)}</text>`);
  }
  out.push('</g>');
  out.push(`<g class="y-ticks" text-anchor="end" fill="${MUTED}">`);
  for (const t of sy.ticks) {
    if (t.label === null) continue;
    const y = py(t.v);
    out.push(`<line x1="${left - 5}" y1="${r2(y)}" x2="${left}" y2="${r2(y)}" stroke="${MUTED}"/><text x="${left - 8}" y="${r2(y + 4)}">${escapeXml(t.label)}</text>`);
  }
  out.push('</g>');
  const xTitle = spec.x.title + (xLog ? ' (log scale)' : '');
  const yTitle = spec.y.title + (yLog ? ' (log scale)' : '');
  out.push(`<text class="x-title" x="${r2(left + pw / 2)}" y="${H - 14}" text-anchor="middle" font-weight="600">${escapeXml(fit(xTitle, pw, fs))}</text>`);
  out.push(
    `<text class="y-title" transform="translate(16 ${r2(top + ph / 2)}) rotate(-90)" text-anchor="middle" font-weight="600">${escapeXml(fit(yTitle, ph, fs))}</text>`,
  );

  // Reference lines under the data.
  if (spec.diagonal !== undefined) {
    const a = Math.max(sx.lo, sy.lo);
    const b = Math.min(sx.hi, sy.hi);
    if (b > a) {
      out.push(
        `<line class="diagonal" x1="${r2(px(a))}" y1="${r2(py(a))}" x2="${r2(px(b))}" y2="${r2(py(b))}" stroke="#8c959f" stroke-width="1.5" stroke-dasharray="2 3"/>`,
      );
      // The label sits on the upper-left side of the line, along it: achieved
      // rarely exceeds offered, so that side is free of data.
      const at = sx.log || sy.log ? Math.sqrt(Math.max(a, 1e-9) * b) : a + (b - a) * 0.3;
      const angle = (Math.atan2(py(b) - py(a), px(b) - px(a)) * 180) / Math.PI;
      out.push(
        `<text class="diagonal-label" transform="translate(${r2(px(at))} ${r2(py(at))}) rotate(${r2(angle)}) translate(0 -7)" fill="${MUTED}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(spec.diagonal)}</text>`,
      );
    }
  }
  for (const h of spec.hlines ?? []) {
    if (h.y < sy.lo || h.y > sy.hi) continue;
    const y = r2(py(h.y));
    out.push(`<line class="reference" data-y="${h.y}" x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="2 3"/>`);
    out.push(
      `<text class="reference-label" x="${left + 6}" y="${r2(py(h.y) - 5)}" fill="#cf222e" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(h.label)}</text>`,
    );
  }

  // Series: the line, then its markers.
  for (const s of spec.series) {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (p.y === null) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${r2(px(p.x))} ${r2(py(p.y))}`;
      pen = true;
    }
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<path class="series ${escapeXml(s.role)}" data-series="${escapeXml(s.id)}" d="${d || 'M0 0'}" fill="none" stroke="${s.color}" stroke-width="${s.dashed ? 1.6 : 2.2}" stroke-linejoin="round"${dash}${d ? '' : ' visibility="hidden"'}/>`,
    );
    const r = s.marker ?? 3.5;
    const marks: string[] = [];
    for (const p of pts) {
      if (p.y === null) continue;
      const x = px(p.x);
      const y = py(p.y);
      if (p.mark === 'cross') marks.push(cross(x, y, 4.5, s.color));
      else if (r > 0) marks.push(`<circle cx="${r2(x)}" cy="${r2(y)}" r="${r}" fill="${s.dashed ? '#ffffff' : s.color}" stroke="${s.color}" stroke-width="1.5"/>`);
    }
    if (marks.length) out.push(`<g class="markers ${escapeXml(s.role)}" data-series="${escapeXml(s.id)}">${marks.join('')}</g>`);
  }

  // Legend.
  const lx = left + pw + 18;
  let ly = top + 8;
  out.push(`<g class="legend">`);
  const entry = (e: LegendEntry, cls: string): void => {
    const midY = ly;
    const line = e.line ?? 'solid';
    if (line !== 'none') {
      out.push(`<line x1="${lx}" y1="${midY}" x2="${lx + 26}" y2="${midY}" stroke="${e.color}" stroke-width="2.2"${dashArray(line)}/>`);
    }
    const marker = e.marker ?? 'dot';
    if (marker === 'dot') out.push(`<circle cx="${lx + 13}" cy="${midY}" r="3.5" fill="${e.color}"/>`);
    else if (marker === 'cross') out.push(cross(lx + 13, midY, 4.5, e.color));
    out.push(`<text class="${cls}" x="${lx + 34}" y="${midY + 4}">${escapeXml(fit(e.label, legendW - 36, fs))}</text>`);
    ly += 20;
  };
  for (const e of spec.legend) entry(e, 'legend-label');
  if (spec.key?.length) {
    ly += 8;
    for (const e of spec.key) entry(e, 'legend-key');
  }
  if (spec.notes?.length) {
    ly += 6;
    for (const n of spec.notes) {
      out.push(`<text class="legend-note" x="${lx}" y="${ly + 4}" fill="${MUTED}" font-size="11">${escapeXml(fit(n, legendW, 11))}</text>`);
      ly += 16;
    }
  }
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
