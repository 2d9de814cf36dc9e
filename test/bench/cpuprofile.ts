/**
 * Summarizes V8 CPU profiles (`.cpuprofile`, written by a server started
 * with `node --cpu-prof`, e.g. `npm run bench -- chat --spawn embedded
 * --cpu-prof DIR`): where the samples fell, by function (self time) and by
 * module (the package or file the function is in). For flame graphs, open
 * the same file in Chrome DevTools (Performance → load profile) or
 * speedscope.
 *
 * Usage: node test/dist/bench/cpuprofile.js FILE.cpuprofile [--top N]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  seconds: number;
  samples: number;
  /** Share of samples (0…1) by function, highest first. */
  functions: Array<{ name: string; where: string; share: number }>;
  /** Share of samples by module (package, or node internals, or (idle)/(gc)/(program)). */
  modules: Array<{ module: string; share: number }>;
}

/** `@hyphae/c2s`, `ltx`, `node:tls`, … from a frame's URL. */
export function moduleOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const ws = /\/(packages|services)\/([^/]+)\//.exec(url);
  if (ws) return `@hyphae/${ws[2]}`;
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(p: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map<number, number>();
  if (p.samples) for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  else for (const n of p.nodes) counts.set(n.id, n.hitCount ?? 0);
  const total = [...counts.values()].reduce((a, b) => a + b, 0) || 1;
  const fn = new Map<string, { name: string; where: string; n: number }>();
  const mod = new Map<string, number>();
  for (const [id, n] of counts) {
    const node = byId.get(id);
    if (!node) continue;
    const f = node.callFrame;
    const name = f.functionName || '(anonymous)';
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|packages|services)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const e = fn.get(key) ?? { name, where, n: 0 };
    e.n += n;
    fn.set(key, e);
    const m = moduleOf(f.url, name);
    mod.set(m, (mod.get(m) ?? 0) + n);
  }
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    seconds: (p.endTime - p.startTime) / 1e6,
    samples: total,
    functions: [...fn.values()].sort((a, b) => b.n - a.n).slice(0, top).map((e) => ({ name: e.name, where: e.where, share: r3(e.n / total) })),
    modules: [...mod.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([module, n]) => ({ module, share: r3(n / total) })),
  };
}

function main(argv: string[]): number {
  const topAt = argv.indexOf('--top');
  const file = argv.find((a, i) => !a.startsWith('--') && i !== topAt + 1);
  const top = topAt >= 0 ? Number(argv[topAt + 1]) || 25 : 25;
  if (!file) {
    process.stderr.write('usage: node test/dist/bench/cpuprofile.js FILE.cpuprofile [--top N]\n');
    return 2;
  }
  const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, top);
  const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)}%`;
  const out = [`${file}: ${s.seconds.toFixed(1)} s, ${s.samples} samples`, '', 'self time by module:'];
  for (const m of s.modules) out.push(`  ${pct(m.share)}  ${m.module}`);
  out.push('', 'self time by function:');
  for (const f of s.functions) out.push(`  ${pct(f.share)}  ${f.name}  ${f.where}`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) process.exitCode = main(process.argv.slice(2));
