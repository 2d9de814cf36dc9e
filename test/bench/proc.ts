/**
 * Server-side resource sampling from /proc (Linux): CPU seconds (utime +
 * stime of /proc/<pid>/stat, in clock ticks) and resident memory (VmRSS of
 * /proc/<pid>/status) of the server processes, plus the machine facts the
 * results are reported with.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename } from 'node:path';
import { cpus, loadavg, totalmem } from 'node:os';

export interface Watched {
  pid: number;
  label: string;
}

let clkTck: number | null = null;
function ticksPerSecond(): number {
  if (clkTck !== null) return clkTck;
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  clkTck = Number.isInteger(n) && n > 0 ? n : 100;
  return clkTck;
}

/** CPU seconds (user + system) of a process so far, or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** Resident set size in bytes, or null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s.length > 0);
  } catch {
    return [];
  }
}

/** A readable label for a server process from its command line. */
export function labelOf(pid: number): string {
  const args = cmdline(pid);
  const main = args.findIndex((a) => a.endsWith('main.js'));
  if (main >= 0) {
    const role = args[main + 1] ?? '?';
    const cfg = args.indexOf('--config');
    const file = cfg >= 0 && args[cfg + 1] ? basename(args[cfg + 1] as string).replace(/\.ya?ml$/, '') : '';
    return file && file !== 'hyphae' && file !== role ? `hyphae ${role} (${file})` : `hyphae ${role}`;
  }
  return basename(args[0] ?? `pid ${pid}`);
}

/** Direct children of this process (the spawned servers, nats-server, redis-server). */
export function childProcesses(): Watched[] {
  const out: Watched[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (parentPid(pid) === process.pid) out.push({ pid, label: labelOf(pid) });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

export interface Snapshot {
  /** nowNs-style monotonic ms. */
  at: number;
  cpu: Map<number, number>;
}

export interface ProcessUsage {
  pid: number;
  label: string;
  /** CPU seconds used in the window. */
  cpuSeconds: number;
  /** Average cores busy in the window (1.0 = one core). */
  cores: number;
  /** Largest RSS sampled during the whole sampling period, bytes. */
  maxRssBytes: number;
}

export interface ServerUsage {
  windowSeconds: number;
  cpuSeconds: number;
  cores: number;
  /** Largest sum of RSS over the processes at one sample, bytes. */
  maxRssBytes: number;
  processes: ProcessUsage[];
}

/** Samples RSS periodically; snapshots CPU at the marks the scenario asks for. */
export class ProcSampler {
  private timer: NodeJS.Timeout | null = null;
  private readonly maxRss = new Map<number, number>();
  private maxRssSum = 0;

  constructor(readonly watched: readonly Watched[]) {}

  snapshot(): Snapshot {
    const cpu = new Map<number, number>();
    for (const w of this.watched) {
      const c = cpuSeconds(w.pid);
      if (c !== null) cpu.set(w.pid, c);
    }
    return { at: performance.now(), cpu };
  }

  private sampleRss(): void {
    let sum = 0;
    for (const w of this.watched) {
      const r = rssBytes(w.pid);
      if (r === null) continue;
      sum += r;
      this.maxRss.set(w.pid, Math.max(this.maxRss.get(w.pid) ?? 0, r));
    }
    this.maxRssSum = Math.max(this.maxRssSum, sum);
  }

  /** Starts periodic RSS sampling (and resets the maxima). */
  start(intervalMs = 250): void {
    this.stop();
    this.maxRss.clear();
    this.maxRssSum = 0;
    this.sampleRss();
    this.timer = setInterval(() => this.sampleRss(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  usage(from: Snapshot, to: Snapshot): ServerUsage {
    this.sampleRss();
    const windowSeconds = (to.at - from.at) / 1000;
    const processes: ProcessUsage[] = this.watched.map((w) => {
      const c = (to.cpu.get(w.pid) ?? 0) - (from.cpu.get(w.pid) ?? 0);
      return { pid: w.pid, label: w.label, cpuSeconds: round2(c), cores: round2(windowSeconds > 0 ? c / windowSeconds : 0), maxRssBytes: this.maxRss.get(w.pid) ?? 0 };
    });
    const cpu = processes.reduce((a, p) => a + p.cpuSeconds, 0);
    return { windowSeconds: round2(windowSeconds), cpuSeconds: round2(cpu), cores: round2(windowSeconds > 0 ? cpu / windowSeconds : 0), maxRssBytes: this.maxRssSum, processes };
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalBytes: number;
  loadavg: number[];
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) model = m[1].trim();
  } catch {
    // not Linux
  }
  const r = spawnSync('nproc', [], { encoding: 'utf8' });
  const nproc = Number((r.stdout ?? '').trim()) || cpus().length;
  return { nproc, cpuModel: model, memTotalBytes: totalmem(), loadavg: loadavg().map((x) => Math.round(x * 100) / 100), node: process.version, platform: `${process.platform}-${process.arch}` };
}
