/**
 * The benchmark report (test/bench/report.ts, plot.ts) on a synthetic
 * comparison (test/bench/fixtures/comparison.ts): the side-by-side tables,
 * the ratios, the bar (including its exact boundaries and what is not
 * measured), the SVG plots, and the command line. No server is started.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/bench-report.test.js
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, type Element } from 'ltx';
import { evaluateBar, formatNumber, formatRatio, ratioTable, renderReport, type BarStatus } from '../bench/report.js';
import { entry, presence, sampleComparison } from '../bench/fixtures/comparison.js';
import { mergeInto, type Comparison, type ComparedServer, type ScenarioResult } from '../bench/results.js';

const REPORT = fileURLToPath(new URL('../bench/report.js', import.meta.url));

const EMB = 'Hyphae 0.1.0 (embedded)';
const CLU = 'Hyphae 0.1.0 (cluster)';
const PRO = 'Prosody 0.12.3';
const EJA = 'ejabberd 23.01';

/** The Markdown from `### heading` up to the next heading of that level or higher. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n### ${heading}\n`);
  assert.ok(start >= 0, `no section ${heading}`);
  const rest = markdown.slice(start + 1);
  const end = rest.slice(4).search(/\n##/);
  return end < 0 ? rest : rest.slice(0, end + 4);
}

/** The first Markdown table in `text`: header row first, the separator dropped. */
function firstTable(text: string): string[][] {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith('|'));
  assert.ok(i >= 0, 'no table');
  const rows: string[][] = [];
  for (const l of lines.slice(i)) {
    if (!l.startsWith('|')) break;
    const cells = l
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push(cells);
  }
  return rows;
}

/** The cell in the row whose first cell contains `row`, under the column headed `column`. */
function cell(t: string[][], row: string, column: string): string {
  const col = t[0]!.indexOf(column);
  assert.ok(col > 0, `no column ${column} in ${t[0]!.join(' | ')}`);
  const r = t.find((cells) => cells[0]!.includes(row));
  assert.ok(r, `no row ${row}`);
  return r[col]!;
}

function clone(c: Comparison): Comparison {
  return structuredClone(c);
}

function server(c: Comparison, name: string): ComparedServer {
  const s = c.servers.find((x) => x.name === name);
  assert.ok(s);
  return s;
}

function scenario(c: Comparison, name: string, sc: string): ScenarioResult {
  const o = server(c, name).scenarios[sc];
  assert.ok(o && !('error' in o));
  return o as ScenarioResult;
}

function setMedian(c: Comparison, name: string, sc: string, metric: string, v: number): void {
  const e = scenario(c, name, sc).summary[metric];
  assert.ok(e);
  e.median = v;
}

const statuses = (c: Comparison): BarStatus[] => evaluateBar(c).map((r) => r.status);

describe('bench report: formatting', () => {
  it('puts thousands separators in rates and 3 significant digits in latencies', () => {
    assert.equal(formatNumber(12_345.6, 'deliveries/s'), '12,346');
    assert.equal(formatNumber(1234.5, 'ms'), '1,230');
    assert.equal(formatNumber(31.44, 'ms'), '31.4');
    assert.equal(formatNumber(0.012_34, 'ms'), '0.0123');
    assert.equal(formatNumber(45.678, 'KiB'), '45.7');
    assert.equal(formatNumber(3, ''), '3');
    assert.equal(formatRatio(24_000 / 25_000), '0.960×');
    assert.equal(formatRatio(2), '2.00×');
  });
});

describe('bench report: side-by-side tables', () => {
  const { markdown } = renderReport(sampleComparison());

  it('has one column per server, in the order of the comparison, with each server\'s medians and spread', () => {
    const t = firstTable(section(markdown, 'chat'));
    assert.deepEqual(t[0], ['metric', EMB, CLU, PRO, EJA]);
    const head = 'max delivered rate with p99 &lt; 50 ms, none lost (deliveries/s)';
    assert.equal(cell(t, head, EMB), '24,000 <small>(23,100 … 24,900)</small>');
    assert.equal(cell(t, head, CLU), '11,000 <small>(10,500 … 11,800)</small>');
    assert.equal(cell(t, head, PRO), '12,000 <small>(11,800 … 12,200)</small>');
    assert.equal(cell(t, head, EJA), '25,000 <small>(24,000 … 26,000)</small>');
    // The headline is the first metric row, in bold.
    assert.equal(t[2]![0], `**${head}**`);
    // Latencies: 3 significant digits (31.4 / 4 = 7.85; 31.4 / 5 = 6.28; 31.4 / 3 = 10.47).
    assert.equal(cell(t, 'latency p50 at that rate (ms)', EMB), '7.85 <small>(6.28 … 10.5)</small>');
    assert.equal(cell(t, 'latency p99 at that rate (ms)', PRO), '47.9 <small>(43.1 … 52.7)</small>');
    assert.equal(cell(t, 'lost deliveries', CLU), '0');
    assert.equal(cell(t, 'runs', EJA), '3');
    // The cluster's route-cache metrics; the others did not report them.
    assert.equal(cell(t, 'Redis round trips per stanza', CLU), '0.42 <small>(0.4 … 0.45)</small>');
    assert.equal(cell(t, 'Redis round trips per stanza', EMB), 'n/a');
  });

  it('keeps the main metrics in their order and the rest under "other metrics"', () => {
    const chat = section(markdown, 'chat');
    const main = firstTable(chat).map((r) => r[0]);
    const order = ['runs', 'max delivered rate', 'offered rate at that point', 'latency p50', 'latency p99 at', 'latency p99.9', 'lost deliveries', 'out of order', 'errors', 'server CPU', 'server RSS'];
    assert.deepEqual(
      order.map((o) => main.findIndex((m) => m!.includes(o))),
      order.map((_, i) => i + 1),
    );
    assert.ok(!main.some((m) => m!.includes('generator cpu')));
    const other = chat.slice(chat.indexOf('<details>'));
    assert.match(other, /\| generator cpu \(cores\) \| 1\.3 <small>\(1\.2 … 1\.4\)<\/small> \|/);
    assert.ok(other.indexOf('highest offered rate') < other.indexOf('generator cpu'));
  });

  it('shows a failed scenario as failed with the first line of its error, and a missing one as not run', () => {
    const p = firstTable(section(markdown, 'presence'));
    assert.equal(cell(p, 'runs', PRO), 'failed: connect ECONNREFUSED 127.0.0.1:5222');
    assert.equal(cell(p, 'max presence delivery rate', PRO), 'failed');
    assert.equal(cell(p, 'max presence delivery rate', EJA), '45,000 <small>(42,750 … 47,250)</small>');
    // A zero-goal count shows its worst run when that differs from the median.
    assert.equal(cell(p, 'lost deliveries', EJA), '0 <small>(max 3)</small>');
    assert.equal(cell(p, 'lost deliveries', EMB), '0');
    const idle = firstTable(section(markdown, 'idle'));
    assert.equal(cell(idle, 'server RSS per session (KiB)', EJA), 'not run');
    assert.equal(cell(idle, 'server RSS per session (KiB)', PRO), '38 <small>(37 … 40)</small>');
    const login = firstTable(section(markdown, 'login'));
    assert.equal(cell(login, 'max sustainable login rate (logins/s)', PRO), '400 <small>(360 … 440)</small>');
  });

  it('lists the setup: servers with their CPUs, the generator CPUs, the machine and the exact commands', () => {
    const setup = section(markdown, 'Setup');
    const t = firstTable(setup);
    assert.deepEqual(t[0], ['server', 'label', 'server CPUs']);
    assert.deepEqual(t[3], ['`prosody`', PRO, '`0-7`']);
    assert.match(setup, /Load generator CPUs: `8-15`/);
    assert.match(setup, /AMD EPYC 7B13, nproc 16, 64\.0 GiB memory, Node v20\.19\.0/);
    const c = sampleComparison();
    assert.ok(setup.includes(['```sh', ...c.commands, '```'].join('\n')));
  });

  it('a merged run replaces those servers\' scenarios and the report says when and on which machine it ran', () => {
    const before = sampleComparison();
    const later = sampleComparison();
    later.startedAt = '2030-01-02T03:04:05.000Z';
    later.machine = { ...later.machine, cpuModel: 'Intel Xeon Test', nproc: 2 };
    const prosody = later.servers.find((s) => s.name === 'prosody')!;
    later.servers = [{ ...prosody, scenarios: { presence: presence(12_345, [1, 2, 3, 4, 5], 1000) } }];
    const merged = mergeInto(before, later);
    const mergedProsody = merged.servers.find((s) => s.name === 'prosody')!;
    assert.equal(mergedProsody.scenarios.presence, later.servers[0]!.scenarios.presence, 'the later presence result replaces the earlier one');
    assert.equal(mergedProsody.scenarios.chat, before.servers.find((s) => s.name === 'prosody')!.scenarios.chat, 'other scenarios are kept');
    assert.equal(merged.machine.cpuModel, before.machine.cpuModel);
    assert.equal(merged.merged?.length, 1);
    assert.match(merged.merged![0]!, /^2030-01-02T03:04:05\.000Z → .*another machine: Intel Xeon Test, nproc 2.*: prosody presence$/);
    const md = renderReport(merged).markdown;
    assert.ok(md.includes('Merged in from later runs'), 'the report lists merged runs');
    assert.ok(md.includes('Intel Xeon Test'));
    // Merging again on the first machine says so, and keeps the earlier line.
    const again = mergeInto(merged, { ...sampleComparison(), servers: [] });
    assert.equal(again.merged?.length, 2);
    assert.match(again.merged![1]!, /on the same machine/);
    assert.ok(!renderReport(before).markdown.includes('Merged in'), 'nothing said when nothing was merged');
  });

  it('orders scenarios chat, presence, login, idle and links the plots', () => {
    const at = ['chat', 'presence', 'login', 'idle', 'Setup'].map((s) => markdown.indexOf(`\n### ${s}\n`));
    assert.deepEqual([...at].sort((a, b) => a - b), at);
    assert.ok(!at.includes(-1));
    assert.match(section(markdown, 'chat'), /!\[chat: latency vs offered load\]\(benchmarks-chat-latency\.svg\)/);
    assert.ok(!section(markdown, 'idle').includes('!['));
  });
});

describe('bench report: ratios', () => {
  const c = sampleComparison();
  const rows = ratioTable(c);

  it('compares every Hyphae server with every other server on the headline metrics, from medians', () => {
    assert.deepEqual(
      rows.map((r) => r.scenario),
      ['chat', 'presence', 'login', 'idle'],
    );
    const chat = rows[0]!;
    assert.deepEqual(
      chat.cells.map((x) => x.pair),
      [`${EMB} / ${PRO}`, `${EMB} / ${EJA}`, `${CLU} / ${PRO}`, `${CLU} / ${EJA}`],
    );
    assert.deepEqual(
      chat.cells.map((x) => x.ratio),
      [24_000 / 12_000, 24_000 / 25_000, 11_000 / 12_000, 11_000 / 25_000],
    );
    const login = rows.find((r) => r.scenario === 'login')!;
    assert.deepEqual(
      login.cells.map((x) => x.ratio),
      [1500 / 400, 1500 / 1500, 1200 / 400, 1200 / 1500],
    );
    const idle = rows.find((r) => r.scenario === 'idle')!;
    assert.equal(idle.lowerIsBetter, true);
    assert.deepEqual(
      idle.cells.map((x) => x.ratio),
      [20 / 38, null, 25 / 38, null],
    );
    // Prosody's presence failed: not measured, never a number.
    const presence = rows.find((r) => r.scenario === 'presence')!;
    assert.deepEqual(
      presence.cells.map((x) => x.ratio),
      [null, 90_000 / 45_000, null, 60_000 / 45_000],
    );
    assert.equal(presence.cells[0]!.text, 'not measured');
  });

  it('renders the ratio table under the right pair', () => {
    const t = firstTable(section(renderReport(c).markdown, 'Ratios of medians'));
    assert.equal(cell(t, 'chat:', `${EMB} / ${PRO}`), '2.00× <small>(24,000 / 12,000)</small>');
    assert.equal(cell(t, 'chat:', `${EMB} / ${EJA}`), '0.960× <small>(24,000 / 25,000)</small>');
    assert.equal(cell(t, 'chat:', `${CLU} / ${PRO}`), '0.917× <small>(11,000 / 12,000)</small>');
    assert.equal(cell(t, 'idle:', `${EMB} / ${PRO}`), '0.526× <small>(20 / 38)</small>');
    assert.equal(cell(t, 'idle:', `${EMB} / ${EJA}`), 'not measured');
    assert.match(t.find((r) => r[0]!.startsWith('idle:'))![0]!, /lower is better/);
  });
});

describe('bench report: the bar', () => {
  it('says met / not met from the measured numbers, equal counting as met', () => {
    const rows = evaluateBar(sampleComparison());
    assert.deepEqual(
      rows.map((r) => r.status),
      [
        'met', // embedded chat 24,000 ≥ 2 × Prosody's 12,000 (equal)
        'not met', // embedded chat 24,000 < ejabberd's 25,000
        'met', // embedded login 1,500 ≥ ejabberd's 1,500 (equal)
        'not met', // embedded 20 KiB/session > ½ × Prosody's 38
        'met', // embedded 20 KiB/session ≤ 20 (equal)
        'not met', // cluster chat 11,000 < Prosody's 12,000
        'met', // 0.42 Redis round trips per stanza ≤ 1
        'not met', // ejabberd lost 3 presence deliveries in one run
      ],
    );
    assert.match(rows[0]!.bar, /2 × Prosody/);
    assert.equal(rows[0]!.measured, `${EMB} 24,000 deliveries/s; ${PRO} 12,000 deliveries/s → bar 24,000 deliveries/s`);
    assert.equal(rows[1]!.margin, '−1,000 deliveries/s (−4.0%)');
    assert.equal(rows[3]!.measured, `${EMB} 20 KiB; ${PRO} 38 KiB → bar 19 KiB`);
    assert.equal(rows[3]!.margin, '−1 KiB (−5.3%)');
    assert.equal(rows[5]!.margin, '−1,000 deliveries/s (−8.3%)');
    assert.match(rows[6]!.measured, /0\.42 Redis round trips per stanza; route cache hit rate 0\.97/);
    assert.match(rows[7]!.measured, /ejabberd 23\.01 presence: 3 lost/);
    assert.match(rows[7]!.measured, /1 scenario result failed/);
  });

  it('turns each verdict when the numbers cross the boundary', () => {
    const c = clone(sampleComparison());
    setMedian(c, 'prosody', 'chat', 'max_deliveries_per_s_p99_under_50ms', 12_001); // 2 × = 24,002 > 24,000
    setMedian(c, 'hyphae-embedded', 'chat', 'max_deliveries_per_s_p99_under_50ms', 25_000); // = ejabberd's
    setMedian(c, 'ejabberd', 'login', 'max_logins_per_s', 1501);
    setMedian(c, 'hyphae-embedded', 'idle', 'rss_per_session_kib', 19); // = ½ × 38
    setMedian(c, 'hyphae-cluster', 'chat', 'max_deliveries_per_s_p99_under_50ms', 12_001);
    setMedian(c, 'hyphae-cluster', 'chat', 'redis_round_trips_per_stanza', 1.01);
    const lost = scenario(c, 'ejabberd', 'presence').summary.lost_deliveries!;
    lost.runs = [0, 0, 0];
    lost.max = 0;
    assert.deepEqual(statuses(c), ['met', 'met', 'not met', 'met', 'met', 'met', 'not met', 'met']);
    // And with embedded chat just below twice Prosody's:
    setMedian(c, 'hyphae-embedded', 'chat', 'max_deliveries_per_s_p99_under_50ms', 24_001);
    assert.equal(evaluateBar(c)[0]!.status, 'not met');
    setMedian(c, 'hyphae-embedded', 'idle', 'rss_per_session_kib', 20.5);
    assert.equal(evaluateBar(c)[4]!.status, 'not met');
  });

  it('says not measured for a missing server, scenario or metric, and never throws', () => {
    const c = clone(sampleComparison());
    c.servers = c.servers.filter((s) => s.name !== 'prosody');
    delete scenario(c, 'hyphae-cluster', 'chat').summary.redis_round_trips_per_stanza;
    delete server(c, 'hyphae-embedded').scenarios.login;
    const rows = evaluateBar(c);
    assert.deepEqual(
      rows.map((r) => r.status),
      ['not measured', 'not met', 'not measured', 'not measured', 'met', 'not measured', 'not measured', 'not met'],
    );
    assert.match(rows[0]!.measured, /no Prosody in this comparison/);
    assert.match(rows[2]!.measured, /login not run/);
    assert.match(rows[6]!.measured, /no redis_round_trips_per_stanza.*route cache hit rate 0\.97/);
    // Without round trips, Redis commands per stanza stand in (never fewer than the round trips).
    scenario(c, 'hyphae-cluster', 'chat').summary.redis_commands_per_stanza_at_best = entry('', 0.9, 1, 1.2);
    assert.equal(evaluateBar(c)[6]!.status, 'met');
    assert.match(evaluateBar(c)[6]!.measured, /^1 Redis commands per stanza at the best rate \(an upper bound on round trips\)/);
    setMedian(c, 'hyphae-cluster', 'chat', 'redis_commands_per_stanza_at_best', 1.5);
    assert.equal(evaluateBar(c)[6]!.status, 'not met');
    assert.equal(rows[0]!.margin, '');
    // A failed scenario and a metric with no value.
    const f = clone(sampleComparison());
    server(f, 'ejabberd').scenarios.chat = { error: 'ejabberd did not start' };
    scenario(f, 'hyphae-embedded', 'idle').summary.rss_per_session_kib!.median = null;
    const fr = evaluateBar(f);
    assert.equal(fr[1]!.status, 'not measured');
    assert.match(fr[1]!.measured, /chat failed \(ejabberd did not start\)/);
    assert.equal(fr[4]!.status, 'not measured');
    // Nothing at all.
    const empty: Comparison = { ...clone(sampleComparison()), servers: [] };
    assert.deepEqual(statuses(empty), Array(8).fill('not measured'));
    const r = renderReport(empty);
    assert.deepEqual(Object.keys(r.svgs), []);
    assert.match(r.markdown, /### The bar/);
  });

  it('counts lost deliveries over every run, and failed logins too', () => {
    const c = clone(sampleComparison());
    scenario(c, 'ejabberd', 'presence').summary.lost_deliveries = entry('', 0, 0, 0);
    assert.equal(evaluateBar(c)[7]!.status, 'met');
    scenario(c, 'hyphae-cluster', 'login').summary.failures = entry('', 0, 0, 2, [0, 2, 0]);
    const row = evaluateBar(c)[7]!;
    assert.equal(row.status, 'not met');
    assert.match(row.measured, /Hyphae 0\.1\.0 \(cluster\) login: 2 failed logins/);
  });

  it('renders the verdicts in the bar table', () => {
    const t = firstTable(section(renderReport(sampleComparison()).markdown, 'The bar'));
    assert.deepEqual(
      t.slice(1).map((r) => r[1]),
      ['✔ met', '✘ not met', '✔ met', '✘ not met', '✔ met', '✘ not met', '✔ met', '✘ not met'],
    );
  });
});

describe('bench report: plots', () => {
  const c = sampleComparison();
  const { svgs } = renderReport(c);

  const all = (e: Element, name: string): Element[] => {
    const out: Element[] = [];
    const walk = (x: Element): void => {
      if (x.name === name) out.push(x);
      for (const ch of x.getChildElements()) walk(ch);
    };
    walk(e);
    return out;
  };
  const text = (e: Element): string[] => all(e, 'text').map((t) => t.getText());
  const series = (svg: Element, role: string): Element[] => all(svg, 'path').filter((p) => (p.attrs.class ?? '').split(' ').includes(role));
  /** The vertices of a path written as M x y L x y …. */
  const vertices = (p: Element): Array<[number, number]> =>
    [...String(p.attrs.d).matchAll(/[ML]([\d.-]+) ([\d.-]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);

  it('draws latency and throughput for each scenario with a load curve', () => {
    assert.deepEqual(Object.keys(svgs), ['chat-latency', 'chat-throughput', 'presence-latency', 'presence-throughput', 'login-latency', 'login-throughput']);
    for (const [key, svg] of Object.entries(svgs)) {
      const root = parse(svg);
      assert.equal(root.name, 'svg', key);
      assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg', key);
      // White background first, for GitHub's dark mode too.
      assert.equal(root.getChildElements()[1]?.attrs.fill, '#ffffff', key);
    }
  });

  it('chat latency: a p99 and a p50 line per server, the 50 ms bar, crosses where steps lost deliveries', () => {
    const svg = parse(svgs['chat-latency']!);
    const names = ['hyphae-embedded', 'hyphae-cluster', 'prosody', 'ejabberd'];
    const p99 = series(svg, 'p99');
    assert.deepEqual(p99.map((p) => p.attrs['data-series']), names);
    assert.deepEqual(series(svg, 'p50').map((p) => p.attrs['data-series']), names);
    assert.ok(series(svg, 'p50').every((p) => p.attrs['stroke-dasharray']));
    // p50 (a quarter of p99 in the fixture) lies below p99 at every step: larger y.
    series(svg, 'p50').forEach((p50, i) => {
      const hi = vertices(series(svg, 'p99')[i]!);
      vertices(p50).forEach(([x, y], j) => {
        assert.equal(x, hi[j]![0]);
        assert.ok(y > hi[j]![1], `${names[i]} step ${j}`);
      });
    });
    for (const p of p99) assert.equal(vertices(p).length, 7);
    // Same x for the same offered rate; Prosody's p99 (15 s at the top) above embedded's (180 ms): smaller y.
    const emb = vertices(p99[0]!);
    const pro = vertices(p99[2]!);
    assert.deepEqual(emb.map((v) => v[0]), pro.map((v) => v[0]));
    assert.ok(pro[6]![1] < emb[6]![1]);
    assert.ok(pro[0]![1] < emb[0]![1]); // 1.8 ms vs 0.9 ms
    // Each line in its own colour.
    assert.equal(new Set(p99.map((p) => p.attrs.stroke)).size, 4);
    // The reference line at 50 ms, between the two points around it on Prosody's line (47.9 ms and 1.9 s).
    const ref = all(svg, 'line').filter((l) => l.attrs.class === 'reference');
    assert.equal(ref.length, 1);
    assert.equal(ref[0]!.attrs['data-y'], '50');
    const y50 = Number(ref[0]!.attrs.y1);
    assert.ok(pro[3]![1] > y50 && pro[4]![1] < y50, `50 ms at y=${y50}, Prosody ${pro[3]![1]} / ${pro[4]![1]}`);
    assert.ok(text(svg).includes('p99 bar (50 ms)'));
    // Markers: Prosody lost from 20,000 messages/s on (3 steps), the embedded server never.
    const markers = all(svg, 'g').filter((g) => (g.attrs.class ?? '') === 'markers p99');
    const prosodyMarks = markers.find((g) => g.attrs['data-series'] === 'prosody')!;
    assert.equal(prosodyMarks.getChildren('path').length, 3);
    assert.equal(prosodyMarks.getChildren('circle').length, 4);
    const embMarks = markers.find((g) => g.attrs['data-series'] === 'hyphae-embedded')!;
    assert.equal(embMarks.getChildren('path').length, 0);
    // Legend, titles.
    const t = text(svg);
    for (const l of [EMB, CLU, PRO, EJA]) assert.ok(t.includes(l), l);
    assert.ok(t.includes('chat: p99 latency vs offered load (median of 3 runs)'));
    assert.ok(t.some((s) => s.startsWith('offered load (messages/s)')));
    assert.ok(t.some((s) => s.startsWith('latency (ms)')));
  });

  it('presence latency: only the servers with a curve, the failed one noted', () => {
    const svg = parse(svgs['presence-latency']!);
    assert.deepEqual(series(svg, 'p99').map((p) => p.attrs['data-series']), ['hyphae-embedded', 'hyphae-cluster', 'ejabberd']);
    assert.ok(text(svg).includes(`${PRO}: failed`));
    assert.equal(all(svg, 'line').filter((l) => l.attrs.class === 'reference').length, 1);
  });

  it('login latency: a step without a p99 leaves it out of the line', () => {
    const svg = parse(svgs['login-latency']!);
    const p99 = series(svg, 'p99');
    assert.equal(p99.length, 4);
    assert.equal(vertices(p99.find((p) => p.attrs['data-series'] === 'prosody')!).length, 6);
    assert.equal(vertices(p99.find((p) => p.attrs['data-series'] === 'ejabberd')!).length, 7);
    assert.equal(all(svg, 'line').filter((l) => l.attrs.class === 'reference').length, 1);
  });

  it('throughput: achieved per server, y = x where one offered unit makes one achieved unit', () => {
    const chat = parse(svgs['chat-throughput']!);
    const lines = series(chat, 'achieved');
    assert.equal(lines.length, 4);
    // Prosody flattens at 16,000 deliveries/s: its last three points share a y; embedded's keep rising.
    const pro = vertices(lines[2]!);
    assert.equal(pro[4]![1], pro[6]![1]);
    const emb = vertices(lines[0]!);
    assert.ok(emb[6]![1] < emb[5]![1]);
    assert.equal(all(chat, 'line').filter((l) => l.attrs.class === 'diagonal').length, 1);
    // Presence fans out 20 deliveries per change: no diagonal.
    const presence = parse(svgs['presence-throughput']!);
    assert.equal(all(presence, 'line').filter((l) => l.attrs.class === 'diagonal').length, 0);
  });
});

describe('bench report: command line', () => {
  it('writes the plots and the Markdown, linking the plots relative to it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    try {
      const input = join(dir, 'cmp.json');
      writeFileSync(input, JSON.stringify(sampleComparison()));
      const r = spawnSync(process.execPath, [REPORT, input, '--out', join(dir, 'plots', 'run1'), '--md', join(dir, 'doc', 'report.md')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      for (const key of ['chat-latency', 'chat-throughput', 'presence-latency', 'login-latency']) assert.ok(existsSync(join(dir, 'plots', `run1-${key}.svg`)), key);
      const md = readFileSync(join(dir, 'doc', 'report.md'), 'utf8');
      assert.match(md, /\]\(\.\.\/plots\/run1-chat-latency\.svg\)/);
      // Default: plots next to the input, Markdown to stdout.
      const d = spawnSync(process.execPath, [REPORT, input], { encoding: 'utf8', cwd: dir });
      assert.equal(d.status, 0, d.stderr);
      assert.ok(existsSync(join(dir, 'cmp-chat-latency.svg')));
      assert.match(d.stdout, /### The bar/);
      assert.match(d.stdout, /\]\(cmp-chat-latency\.svg\)/);
      // Not a comparison; no argument.
      writeFileSync(join(dir, 'other.json'), JSON.stringify({ tool: 'hyphae-bench', format: 1 }));
      const bad = spawnSync(process.execPath, [REPORT, join(dir, 'other.json')], { encoding: 'utf8' });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /not a comparison file/);
      assert.equal(spawnSync(process.execPath, [REPORT], { encoding: 'utf8' }).status, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
