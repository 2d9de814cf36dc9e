/**
 * Spawns real Hyphae servers for end-to-end tests: `hyphae all` (embedded:
 * in-process bus, LMDB store) or a cluster (`hyphae sm` + M × `hyphae roster`
 * + N × `hyphae c2s` over a real nats-server and redis-server from
 * @hyphae/testkit).
 *
 * Every process gets its own YAML config (written as JSON, which is YAML)
 * with free loopback ports, its own node id, and a fresh temporary data
 * directory. A process is ready when GET /readyz on its HTTP port answers 200.
 * Children are SIGKILLed when the test process exits, whatever the reason.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { request } from 'node:http';
import { createServer as createNetServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, hasBinary, startNats, startRedis, type ServerProcess } from '@hyphae/testkit';
import { redisCommand } from './util.js';

/** The repository root (this file runs from test/dist/harness/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The server binary; HYPHAE_BIN overrides it. */
export const HYPHAE_BIN = process.env.HYPHAE_BIN ?? join(REPO_ROOT, 'services/hyphae/dist/main.js');
/** Key of the `env` option whose value (space-separated) goes before the script on each server's node command line. */
export const NODE_ARGS = 'HYPHAE_HARNESS_NODE_ARGS';

const READY_DEADLINE_MS = 45_000;
const STOP_GRACE_MS = 10_000;
const MAX_LOG_LINES = 50_000;

/** One connection-manager endpoint a client can connect to. */
export interface C2sNode {
  readonly nodeId: string;
  readonly host: string;
  /** Plain TCP, STARTTLS required. */
  readonly port: number;
  /** XEP-0368 direct TLS. */
  readonly directTlsPort: number;
  /** The node's own metrics/health port. */
  readonly httpPort: number;
}

/** One `hyphae roster` instance of a cluster. */
export interface RosterNode {
  readonly nodeId: string;
  /** The instance's metrics/health port. */
  readonly httpPort: number;
}

/** One XEP-0065 proxy instance (`hyphae proxy65`, or the one inside `hyphae all`). */
export interface Proxy65Node {
  readonly nodeId: string;
  /** The instance's metrics/health port (embedded: the process's). */
  readonly httpPort: number;
  /** Where its SOCKS5 listener is (also what its streamhost answers announce). */
  readonly host: string;
  readonly socksPort: number;
}

/** One s2s instance (`hyphae s2s`, or the one inside `hyphae all`): its listeners. */
export interface S2sNode {
  nodeId: string;
  httpPort: number;
  host: string;
  /** Server-to-server port (STARTTLS). */
  port: number;
  /** Direct TLS port (XEP-0368). */
  directTlsPort: number;
}

export interface ExitStatus {
  readonly name: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface HyphaeServer {
  readonly mode: 'embedded' | 'cluster';
  readonly domain: string;
  readonly c2s: readonly C2sNode[];
  /** Embedded: the process's HTTP port. Cluster: the sm process's HTTP port. */
  readonly httpPort: number;
  /** Embedded: the data directory. Cluster: the parent of every node's data directory. */
  readonly dataDir: string;
  /** The XEP-0065 proxy instances (embedded: the one in the process; none when proxy65.enabled is false). */
  readonly proxy65: readonly Proxy65Node[];
  /** The s2s instances (none unless the config turns s2s.enabled on). */
  readonly s2s: readonly S2sNode[];
  /** SIGTERM every process (servers drain), wait for them to exit (SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** SIGKILL every process. */
  kill(): Promise<void>;
  /** Stop (if running) and start again with the same configuration and data directory; waits until ready. */
  restart(): Promise<void>;
  /** Every log line (stdout and stderr) of every process, prefixed with the process name. */
  logs(): string[];
  /** How each process last exited (null fields while running). */
  exitStatus(): ExitStatus[];
  /**
   * The unhandled rejections and uncaught exceptions the processes reported
   * (their log line, or their metric at a stop): each is a defect
   * (DESIGN.md invariant 7), and dispose() fails when there is any.
   */
  unhandledErrors(): string[];
  /**
   * Stop everything and remove temporary files (unless HYPHAE_E2E_KEEP is
   * set). Idempotent. Throws, once everything is cleaned up, when a process
   * reported an unhandled error: a test cannot pass while one happens.
   */
  dispose(): Promise<void>;
}

export interface ClusterServer extends HyphaeServer {
  readonly mode: 'cluster';
  readonly nats: ServerProcess;
  readonly redis: ServerProcess;
  /** sm's HTTP port (also `httpPort`). */
  readonly smHttpPort: number;
  /** SIGKILL c2s node i. */
  killNode(i: number): Promise<void>;
  /** SIGTERM c2s node i (it drains) and wait for it to exit. */
  stopNode(i: number): Promise<void>;
  /** Start c2s node i again (same ports, node id and data directory); waits for /readyz. */
  restartNode(i: number): Promise<void>;
  /** SIGKILL the sm process. */
  killSm(): Promise<void>;
  restartSm(): Promise<void>;
  /** The roster instances (`hyphae roster`), in start order. */
  readonly roster: readonly RosterNode[];
  /** SIGKILL roster instance i. */
  killRoster(i: number): Promise<void>;
  /** Start roster instance i again (same config, node id and data directory); waits for /readyz. */
  restartRoster(i: number): Promise<void>;
  /** Whether roster instance i is running. */
  rosterRunning(i: number): boolean;
  /** The MUC instances (`hyphae muc`), in start order. */
  readonly muc: readonly RosterNode[];
  /** SIGKILL muc instance i. */
  killMuc(i: number): Promise<void>;
  /** SIGTERM muc instance i (it hands its rooms over) and wait for it to exit. */
  stopMuc(i: number): Promise<void>;
  /** Start muc instance i again; waits for /readyz. */
  restartMuc(i: number): Promise<void>;
  mucRunning(i: number): boolean;
  /** SIGKILL proxy65 instance i. */
  killProxy65(i: number): Promise<void>;
  /** Start proxy65 instance i again (same ports and node id); waits for /readyz. */
  restartProxy65(i: number): Promise<void>;
  proxy65Running(i: number): boolean;
  /** SIGKILL s2s instance i. */
  killS2s(i: number): Promise<void>;
  /** Start s2s instance i again; waits for /readyz. */
  restartS2s(i: number): Promise<void>;
  s2sRunning(i: number): boolean;
  /** Whether c2s node i is running. */
  nodeRunning(i: number): boolean;
  /** Whether the sm process is running. */
  smRunning(): boolean;
  /** Starts the named process (a name of exitStatus(): 'sm', 'c2s-1', 'roster-0', …) again, stopping it first if it runs; waits for /readyz. */
  restartProcess(name: string): Promise<void>;
  /**
   * SIGKILL redis-server. With `empty`, its data files (append-only file, RDB
   * dump) are deleted too, so the next `redis.restart()` brings up a Redis
   * that lost everything, as after a crash without persistence.
   */
  killRedis(opts?: { empty?: boolean }): Promise<void>;
  /**
   * An outage of a dependency: SIGKILL nats-server or redis-server (with
   * `empty`, Redis comes back without its data), start it again on the same
   * port `downMs` after the kill; resolves once it accepts connections again.
   */
  outage(dep: 'nats' | 'redis', downMs: number, opts?: { empty?: boolean }): Promise<void>;
}

/** A deep-partial override merged into the generated config. */
export type ConfigOverride = { [key: string]: unknown };

export interface EmbeddedOptions {
  domain?: string;
  /** Reuse an existing data directory (default: a fresh temporary one). */
  dataDir?: string;
  config?: ConfigOverride;
  env?: Record<string, string>;
}

export interface ClusterOptions {
  domain?: string;
  c2sNodes?: number;
  /** `hyphae roster` instances (default 2 when the build has the roster service, else 0). */
  rosterNodes?: number;
  /** `hyphae muc` instances (default 2). */
  mucNodes?: number;
  /** `hyphae proxy65` instances, each with its own SOCKS5 port (default 2 when the build has the proxy65 service, else 0). */
  proxy65Nodes?: number;
  /** `hyphae s2s` instances (default 2 when the config turns s2s.enabled on, else 0). */
  s2sNodes?: number;
  /** Applied to every process's config. */
  config?: ConfigOverride;
  env?: Record<string, string>;
  /** Redis with an fsync'ed append-only file, so its data survives kill -9 + restart. */
  redisPersistence?: boolean;
}

// ---------------------------------------------------------------------------
// Child bookkeeping: nothing outlives the test process.

const liveChildren = new Set<ChildProcess>();
let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) c.kill('SIGKILL');
  });
  // A signal's default action skips 'exit' handlers (node --test sends
  // SIGTERM to a file that times out): kill our children, then exit so the
  // 'exit' handlers of @hyphae/testkit (nats/redis) run too.
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      for (const c of liveChildren) c.kill('SIGKILL');
      process.exit(codes[sig]);
    });
  }
}

/** Whether the server binary has been built. */
export function serverBuilt(): boolean {
  return existsSync(HYPHAE_BIN);
}

/** Null when a cluster can run here, else the reason to skip. */
export function clusterSkipReason(): string | null {
  if (!serverBuilt()) return `server binary not built: ${HYPHAE_BIN}`;
  if (!hasBinary('nats-server')) return 'nats-server is not installed';
  if (!hasBinary('redis-server')) return 'redis-server is not installed';
  return null;
}

let rosterSupport: boolean | null = null;
/**
 * Whether the built server has the roster service (`hyphae help` lists
 * `roster`). Builds from before the roster service start clusters without
 * roster instances, and the roster tests skip.
 */
export function serverHasRoster(): boolean {
  if (rosterSupport !== null) return rosterSupport;
  if (!serverBuilt()) return (rosterSupport = false);
  const r = spawnSync(process.execPath, [HYPHAE_BIN, 'help'], { encoding: 'utf8', timeout: 20_000 });
  rosterSupport = r.status === 0 && /^\s+roster\s/m.test(r.stdout ?? '');
  return rosterSupport;
}

let proxy65Support: boolean | null = null;
/** Whether the built server has the proxy65 service (`hyphae help` lists `proxy65`). */
export function serverHasProxy65(): boolean {
  if (proxy65Support !== null) return proxy65Support;
  if (!serverBuilt()) return (proxy65Support = false);
  const r = spawnSync(process.execPath, [HYPHAE_BIN, 'help'], { encoding: 'utf8', timeout: 20_000 });
  proxy65Support = r.status === 0 && /^\s+proxy65\s/m.test(r.stdout ?? '');
  return proxy65Support;
}

/** The proxy65 section of a generated config: whether it is on, and its SOCKS5 address. */
function proxy65Of(config: Record<string, unknown>): { enabled: boolean; host: string; port: number } {
  const p = (isObject(config.proxy65) ? config.proxy65 : {}) as { enabled?: unknown; host?: unknown; port?: unknown };
  return { enabled: p.enabled !== false, host: typeof p.host === 'string' ? p.host : '127.0.0.1', port: typeof p.port === 'number' ? p.port : 7777 };
}

/** Null when roster/presence tests can run against `mode`, else the reason to skip. */
export function rosterSkipReason(mode: 'embedded' | 'cluster'): string | null {
  if (mode === 'embedded' && externalTarget()) return null;
  const base = mode === 'embedded' ? embeddedSkipReason() : clusterSkipReason();
  if (base) return base;
  if (!serverHasRoster()) return `the server build has no roster service (\`${HYPHAE_BIN} help\` does not list it): rebuild with npx tsc -b services/hyphae`;
  return null;
}

/** Null when an embedded server can run here, else the reason to skip. */
export function embeddedSkipReason(): string | null {
  if (externalTarget()) return null;
  if (!serverBuilt()) return `server binary not built: ${HYPHAE_BIN}`;
  return null;
}

interface ExternalTarget {
  host: string;
  port: number;
  directTlsPort: number;
  httpPort?: number;
  domain: string;
}

/**
 * HYPHAE_E2E_EXTERNAL='{"host":"127.0.0.1","port":15222,"directTlsPort":15223,"domain":"localhost"}'
 * points `startEmbedded()` at a server that is already running (e.g. Prosody)
 * instead of spawning Hyphae: a way to check the tests themselves against a
 * reference implementation. stop/kill/restart do nothing then.
 */
function externalTarget(): ExternalTarget | null {
  const raw = process.env.HYPHAE_E2E_EXTERNAL;
  if (!raw) return null;
  return JSON.parse(raw) as ExternalTarget;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges config overrides: objects key by key, everything else (lists too) replaced. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k];
    out[k] = isObject(cur) && isObject(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

/** GET http://127.0.0.1:port/path → {status, body}; rejects on connection errors. */
export function httpGet(port: number, path: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${port} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Prometheus text of a process's /metrics. */
export async function scrapeMetrics(port: number): Promise<string> {
  const res = await httpGet(port, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics on port ${port} answered ${res.status}`);
  return res.body;
}

/**
 * The sum of every sample of `name` in Prometheus text whose labels include
 * `labels` (all samples when none are given); null when there is none.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbls: Record<string, string> = {};
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      lbls[pair[1] ?? ''] = pair[2] ?? '';
    }
    if (!Object.entries(labels).every(([k, v]) => lbls[k] === v)) continue;
    const value = Number(m[4]);
    if (Number.isNaN(value)) continue;
    sum = (sum ?? 0) + value;
  }
  return sum;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * What a Hyphae process logs for an unhandled rejection or an uncaught
 * exception (`msg` of @hyphae/observability's guardProcess, UNHANDLED_ERROR_MSG),
 * and the metric it counts them in.
 */
const UNHANDLED_LOG = '"msg":"unhandled error"';
const UNHANDLED_METRIC = 'hyphae_unhandled_errors_total';

/** Fails with every unhandled error the processes reported (see HyphaeServer.unhandledErrors). */
function assertNoUnhandled(unhandled: readonly string[]): void {
  if (unhandled.length === 0) return;
  throw new Error(`server processes reported ${unhandled.length} unhandled error(s) (a defect, DESIGN.md invariant 7):\n${unhandled.join('\n')}`);
}

/** One spawned `hyphae <role>` process that can be stopped, killed and started again with the same config. */
class HyphaeProcess {
  private child: ChildProcess | null = null;
  private lastExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private logStream: WriteStream;
  /** Unhandled errors this run of the process has logged. */
  private unhandledLogged = 0;
  /**
   * Holds the process's HTTP port while it is down (killed or stopped), so
   * another test's server picking a free port cannot take it before the
   * restart binds it again (EADDRINUSE seen under --test-concurrency).
   */
  private portHold: Server | null = null;

  constructor(
    readonly name: string,
    private readonly role: string,
    private readonly configPath: string,
    readonly httpPort: number,
    private readonly env: Record<string, string>,
    private readonly lines: string[],
    logFile: string,
    /** Shared by the processes of one server: what they reported as unhandled. */
    private readonly unhandled: string[] = [],
  ) {
    this.logStream = createWriteStream(logFile, { flags: 'a' });
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  exitStatus(): ExitStatus {
    return { name: this.name, code: this.lastExit?.code ?? null, signal: this.lastExit?.signal ?? null };
  }

  private push(line: string): void {
    if (line.includes(UNHANDLED_LOG)) {
      this.unhandledLogged++;
      this.unhandled.push(`[${this.name}] ${line}`);
    }
    this.lines.push(`[${this.name}] ${line}`);
    if (this.lines.length > MAX_LOG_LINES) this.lines.splice(0, this.lines.length - MAX_LOG_LINES);
    this.logStream.write(line + '\n');
  }

  private pipeLines(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        this.push(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    });
    stream.on('end', () => {
      if (rest) this.push(rest);
      rest = '';
    });
  }

  tail(n = 40): string {
    const prefix = `[${this.name}] `;
    return this.lines.filter((l) => l.startsWith(prefix)).slice(-n).join('\n');
  }

  private async holdPort(): Promise<void> {
    if (this.portHold) return;
    // Connections are dropped at once: to a client the process is as down as before.
    const hold = createNetServer((socket) => socket.destroy());
    hold.unref();
    const held = await new Promise<boolean>((resolve) => {
      hold.once('error', () => resolve(false));
      hold.listen(this.httpPort, '127.0.0.1', () => resolve(true));
    });
    if (held) this.portHold = hold;
  }

  private async releasePort(): Promise<void> {
    const hold = this.portHold;
    this.portHold = null;
    if (hold) await new Promise<void>((resolve) => hold.close(() => resolve()));
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    installExitHooks();
    await this.releasePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined) continue;
      // Nothing from the test environment may reconfigure the server behind our back.
      if (k.startsWith('HYPHAE_') || k === 'NATS_URL' || k === 'REDIS_URL' || k === 'NODE_TLS_REJECT_UNAUTHORIZED') continue;
      if (k === 'NODE_TEST_CONTEXT' || k === 'NODE_OPTIONS') continue;
      env[k] = v;
    }
    Object.assign(env, this.env);
    // Node flags that NODE_OPTIONS refuses (--cpu-prof): given in `env` under NODE_ARGS, put on the command line.
    const nodeArgs = (env[NODE_ARGS] ?? '').split(' ').filter((a) => a !== '');
    delete env[NODE_ARGS];
    this.push(`--- spawn hyphae ${this.role} --config ${this.configPath}${nodeArgs.length ? ` (node ${nodeArgs.join(' ')})` : ''}`);
    const child = spawn(process.execPath, [...nodeArgs, HYPHAE_BIN, this.role, '--config', this.configPath], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.lastExit = null;
    this.unhandledLogged = 0;
    liveChildren.add(child);
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      this.lastExit = { code, signal };
      this.push(`--- exited code=${code} signal=${signal}`);
    });
    let spawnError: Error | null = null;
    child.once('error', (err) => {
      spawnError = err;
    });
    this.pipeLines(child.stdout);
    this.pipeLines(child.stderr);

    const deadline = Date.now() + READY_DEADLINE_MS;
    let last = 'no answer yet';
    for (;;) {
      if (spawnError) throw new Error(`${this.name}: spawn failed: ${(spawnError as Error).message}`);
      if (!this.running) {
        await sleep(50); // let the pipes flush
        throw new Error(`${this.name} exited (${JSON.stringify(this.lastExit)}) before it was ready:\n${this.tail()}`);
      }
      try {
        const res = await httpGet(this.httpPort, '/readyz', 2_000);
        if (res.status === 200) return;
        last = `status ${res.status}: ${res.body.slice(0, 200)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await this.exited();
        throw new Error(`${this.name} not ready within ${READY_DEADLINE_MS} ms (/readyz: ${last}):\n${this.tail()}`);
      }
      await sleep(100);
    }
  }

  private exited(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => c.once('exit', () => resolve()));
  }

  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    await this.checkUnhandled();
    c.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.push(`--- did not exit within ${graceMs} ms of SIGTERM: SIGKILL`);
      c.kill('SIGKILL');
    }, graceMs);
    await this.exited();
    clearTimeout(timer);
    await this.holdPort();
  }

  /** The process's count of unhandled errors, for those its log did not show (a quieter log level). */
  private async checkUnhandled(): Promise<void> {
    let counted: number | null;
    try {
      counted = metricValue(await scrapeMetrics(this.httpPort), UNHANDLED_METRIC);
    } catch {
      return; // no metrics endpoint answering: the log lines are all there is
    }
    if (counted !== null && counted > this.unhandledLogged) {
      this.unhandled.push(`[${this.name}] ${UNHANDLED_METRIC} = ${counted}, ${this.unhandledLogged} logged`);
      this.unhandledLogged = counted;
    }
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    c.kill('SIGKILL');
    await this.exited();
    await this.holdPort();
  }

  close(): void {
    void this.releasePort();
    this.logStream.end();
  }
}

function writeConfig(path: string, config: Record<string, unknown>): void {
  // JSON is valid YAML 1.2; no YAML writer needed.
  writeFileSync(path, JSON.stringify(config, null, 2) + '\n');
}

function logLevel(): string {
  return process.env.HYPHAE_E2E_LOG_LEVEL ?? 'info';
}

async function c2sPorts(): Promise<{ port: number; directTlsPort: number; httpPort: number }> {
  // freePort() closes its listener before returning: ask for all three at
  // once so the same port is not handed out twice.
  const [port, directTlsPort, httpPort] = await Promise.all([freePort(), freePort(), freePort()]);
  if (port === undefined || directTlsPort === undefined || httpPort === undefined) throw new Error('freePort failed');
  if (new Set([port, directTlsPort, httpPort]).size !== 3) return c2sPorts();
  return { port, directTlsPort, httpPort };
}

/** `count` free ports, distinct from each other and from `used` (which gets them added). */
/** `count` free loopback ports, different from each other and from `used` (to which they are added). */
export async function distinctPorts(count: number, used: Set<number> = new Set()): Promise<number[]> {
  const out: number[] = [];
  while (out.length < count) {
    const p = await freePort();
    if (p === undefined || used.has(p) || out.includes(p)) continue;
    out.push(p);
  }
  for (const p of out) used.add(p);
  return out;
}

function s2sEnabled(config: Record<string, unknown>): boolean {
  const s = isObject(config.s2s) ? config.s2s : {};
  return (s as { enabled?: unknown }).enabled === true;
}

/** Starts `hyphae all` and waits for /readyz. */
export async function startEmbedded(opts: EmbeddedOptions = {}): Promise<HyphaeServer> {
  const ext = externalTarget();
  if (ext) {
    const node: C2sNode = { nodeId: 'external', host: ext.host, port: ext.port, directTlsPort: ext.directTlsPort, httpPort: ext.httpPort ?? 0 };
    const noop = async (): Promise<void> => undefined;
    return {
      mode: 'embedded',
      domain: ext.domain,
      c2s: [node],
      httpPort: node.httpPort,
      dataDir: '',
      proxy65: [],
      s2s: [],
      stop: noop,
      kill: noop,
      restart: noop,
      logs: () => [],
      exitStatus: () => [],
      unhandledErrors: () => [],
      dispose: noop,
    };
  }
  const domain = opts.domain ?? 'localhost';
  const root = mkdtempSync(join(tmpdir(), 'hyphae-e2e-'));
  const dataDir = opts.dataDir ?? join(root, 'data');
  mkdirSync(dataDir, { recursive: true });
  const { port, directTlsPort, httpPort } = await c2sPorts();
  let socksPort = await freePort();
  while ([port, directTlsPort, httpPort].includes(socksPort)) socksPort = await freePort();
  const [s2sPort = 0, s2sDirect = 0] = await distinctPorts(2, new Set([port, directTlsPort, httpPort, socksPort]));
  const nodeId = `e2e-all-${process.pid}`;
  const config = deepMerge(
    {
      domains: [domain],
      nodeId,
      dataDir,
      log: { level: logLevel() },
      http: { host: '127.0.0.1', port: httpPort },
      // No drain grace period unless a test asks for one: stops stay quick.
      c2s: { host: '127.0.0.1', port, directTlsPort, drainGraceMs: 0 },
      registration: { open: true },
      // Never the default port: embedded servers run side by side in tests.
      proxy65: { host: '127.0.0.1', port: socksPort },
      // Federation only where a test asks for it, and never on the default ports.
      s2s: { enabled: false, host: '127.0.0.1', port: s2sPort, directTlsPort: s2sDirect },
    },
    opts.config ?? {},
  );
  const proxy = proxy65Of(config);
  const s2sOn = s2sEnabled(config);
  const configPath = join(root, 'hyphae.yaml');
  writeConfig(configPath, config);
  const lines: string[] = [];
  const unhandled: string[] = [];
  const proc = new HyphaeProcess('all', 'all', configPath, httpPort, opts.env ?? {}, lines, join(root, 'all.log'), unhandled);
  try {
    await proc.start();
  } catch (err) {
    proc.close();
    throw err;
  }
  let disposed = false;
  return {
    mode: 'embedded',
    domain,
    c2s: [{ nodeId, host: '127.0.0.1', port, directTlsPort, httpPort }],
    httpPort,
    dataDir,
    proxy65: proxy.enabled ? [{ nodeId, httpPort, host: proxy.host, socksPort: proxy.port }] : [],
    s2s: s2sOn ? [{ nodeId, httpPort, host: '127.0.0.1', port: s2sPort, directTlsPort: s2sDirect }] : [],
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    async restart() {
      await proc.stop();
      await proc.start();
    },
    logs: () => [...lines],
    exitStatus: () => [proc.exitStatus()],
    unhandledErrors: () => [...unhandled],
    async dispose() {
      if (disposed) return;
      disposed = true;
      await proc.stop();
      proc.close();
      if (!process.env.HYPHAE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
      assertNoUnhandled(unhandled);
    },
  };
}

/** redis-server's working directory (`CONFIG GET dir`), where its append-only file and dump live. */
async function redisDataDir(port: number): Promise<string> {
  const reply = await redisCommand(port, ['CONFIG', 'GET', 'dir']);
  const dir = Array.isArray(reply) ? reply[1] : undefined;
  if (typeof dir !== 'string' || dir === '') throw new Error(`CONFIG GET dir on port ${port} answered ${JSON.stringify(reply)}`);
  return dir;
}

/** Deletes what a stopped redis-server would load on start: the append-only files (Redis 7: appendonlydir/) and the RDB dump. */
function wipeRedisFiles(dir: string): void {
  for (const name of ['appendonlydir', 'appendonly.aof', 'dump.rdb']) rmSync(join(dir, name), { recursive: true, force: true });
}

/**
 * Starts nats-server, redis-server, one `hyphae sm`, `rosterNodes` (default 2)
 * `hyphae roster`, `mucNodes` (default 2) `hyphae muc`, `proxy65Nodes`
 * (default 2) `hyphae proxy65` and `c2sNodes` (default 2) `hyphae c2s`
 * processes, and waits until every one answers /readyz. Check
 * `clusterSkipReason()` first.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<ClusterServer> {
  const domain = opts.domain ?? 'localhost';
  const n = opts.c2sNodes ?? 2;
  const r = opts.rosterNodes ?? (serverHasRoster() ? 2 : 0);
  const root = mkdtempSync(join(tmpdir(), 'hyphae-e2e-cluster-'));
  const lines: string[] = [];
  const unhandled: string[] = [];
  const nats = await startNats();
  let redis: ServerProcess;
  try {
    redis = await startRedis({ persistence: opts.redisPersistence ?? false });
  } catch (err) {
    await nats.stop();
    throw err;
  }
  // Where redis-server keeps its files (testkit's temp dir): killRedis({ empty }) deletes them.
  const redisDir = await redisDataDir(redis.port);
  const env = { NATS_URL: nats.url, REDIS_URL: redis.url, ...(opts.env ?? {}) };
  const common = {
    domains: [domain],
    natsUrl: nats.url,
    redisUrl: redis.url,
    log: { level: logLevel() },
    registration: { open: true },
    // Federation only where a test asks for it (then s2sNodes instances run).
    s2s: { enabled: false },
  };

  const smHttpPort = await freePort();
  const smDir = join(root, 'sm');
  mkdirSync(smDir, { recursive: true });
  const smConfigPath = join(root, 'sm.yaml');
  writeConfig(
    smConfigPath,
    deepMerge({ ...common, nodeId: `e2e-sm-${process.pid}`, dataDir: smDir, http: { host: '127.0.0.1', port: smHttpPort } }, opts.config ?? {}),
  );
  const sm = new HyphaeProcess('sm', 'sm', smConfigPath, smHttpPort, env, lines, join(root, 'sm.log'), unhandled);

  const nodes: C2sNode[] = [];
  const procs: HyphaeProcess[] = [];
  const used = new Set<number>([smHttpPort, nats.port, redis.port]);
  for (let i = 0; i < n; i++) {
    let ports = await c2sPorts();
    while ([ports.port, ports.directTlsPort, ports.httpPort].some((p) => used.has(p))) ports = await c2sPorts();
    used.add(ports.port).add(ports.directTlsPort).add(ports.httpPort);
    const nodeId = `e2e-c2s-${i}-${process.pid}`;
    const dir = join(root, `c2s-${i}`);
    mkdirSync(dir, { recursive: true });
    const cfgPath = join(root, `c2s-${i}.yaml`);
    writeConfig(
      cfgPath,
      deepMerge(
        {
          ...common,
          nodeId,
          dataDir: dir,
          http: { host: '127.0.0.1', port: ports.httpPort },
          c2s: { host: '127.0.0.1', port: ports.port, directTlsPort: ports.directTlsPort, drainGraceMs: 0 },
        },
        opts.config ?? {},
      ),
    );
    nodes.push({ nodeId, host: '127.0.0.1', ...ports });
    procs.push(new HyphaeProcess(`c2s-${i}`, 'c2s', cfgPath, ports.httpPort, env, lines, join(root, `c2s-${i}.log`), unhandled));
  }

  /** Instances of a sharded service (roster, muc): no listener but their HTTP port. */
  const sharded = async (kind: 'roster' | 'muc', count: number): Promise<{ nodes: RosterNode[]; procs: HyphaeProcess[] }> => {
    const out = { nodes: [] as RosterNode[], procs: [] as HyphaeProcess[] };
    for (let i = 0; i < count; i++) {
      let httpPort = await freePort();
      while (used.has(httpPort)) httpPort = await freePort();
      used.add(httpPort);
      const nodeId = `e2e-${kind}-${i}-${process.pid}`;
      const dir = join(root, `${kind}-${i}`);
      mkdirSync(dir, { recursive: true });
      const cfgPath = join(root, `${kind}-${i}.yaml`);
      writeConfig(cfgPath, deepMerge({ ...common, nodeId, dataDir: dir, http: { host: '127.0.0.1', port: httpPort } }, opts.config ?? {}));
      out.nodes.push({ nodeId, httpPort });
      out.procs.push(new HyphaeProcess(`${kind}-${i}`, kind, cfgPath, httpPort, env, lines, join(root, `${kind}-${i}.log`), unhandled));
    }
    return out;
  };
  const { nodes: rosterNodes, procs: rosterProcs } = await sharded('roster', r);
  const { nodes: mucNodes, procs: mucProcs } = await sharded('muc', opts.mucNodes ?? 2);

  // Proxy instances: each its own SOCKS5 port (which its streamhost answers announce).
  const proxyNodes: Proxy65Node[] = [];
  const proxyProcs: HyphaeProcess[] = [];
  for (let i = 0; i < (opts.proxy65Nodes ?? (serverHasProxy65() ? 2 : 0)); i++) {
    let httpPort = await freePort();
    while (used.has(httpPort)) httpPort = await freePort();
    used.add(httpPort);
    let socksPort = await freePort();
    while (used.has(socksPort)) socksPort = await freePort();
    used.add(socksPort);
    const nodeId = `e2e-proxy65-${i}-${process.pid}`;
    const dir = join(root, `proxy65-${i}`);
    mkdirSync(dir, { recursive: true });
    const cfgPath = join(root, `proxy65-${i}.yaml`);
    const cfg = deepMerge(
      { ...common, nodeId, dataDir: dir, http: { host: '127.0.0.1', port: httpPort }, proxy65: { host: '127.0.0.1', port: socksPort } },
      opts.config ?? {},
    );
    writeConfig(cfgPath, cfg);
    const proxy = proxy65Of(cfg);
    if (proxy.enabled) proxyNodes.push({ nodeId, httpPort, host: proxy.host, socksPort: proxy.port });
    proxyProcs.push(new HyphaeProcess(`proxy65-${i}`, 'proxy65', cfgPath, httpPort, env, lines, join(root, `proxy65-${i}.log`), unhandled));
  }

  // Federation instances: each its own pair of listeners.
  const s2sNodes: S2sNode[] = [];
  const s2sProcs: HyphaeProcess[] = [];
  const s2sCount = opts.s2sNodes ?? (s2sEnabled(deepMerge({ s2s: { enabled: false } }, opts.config ?? {})) ? 2 : 0);
  for (let i = 0; i < s2sCount; i++) {
    const [httpPort = 0, s2sPort = 0, s2sDirect = 0] = await distinctPorts(3, used);
    const nodeId = `e2e-s2s-${i}-${process.pid}`;
    const dir = join(root, `s2s-${i}`);
    mkdirSync(dir, { recursive: true });
    const cfgPath = join(root, `s2s-${i}.yaml`);
    writeConfig(cfgPath, deepMerge(
      { ...common, nodeId, dataDir: dir, http: { host: '127.0.0.1', port: httpPort }, s2s: { host: '127.0.0.1', port: s2sPort, directTlsPort: s2sDirect } },
      opts.config ?? {},
    ));
    s2sNodes.push({ nodeId, httpPort, host: '127.0.0.1', port: s2sPort, directTlsPort: s2sDirect });
    s2sProcs.push(new HyphaeProcess(`s2s-${i}`, 's2s', cfgPath, httpPort, env, lines, join(root, `s2s-${i}.log`), unhandled));
  }

  const all = [sm, ...rosterProcs, ...mucProcs, ...proxyProcs, ...s2sProcs, ...procs];
  const stopAll = async (how: 'stop' | 'kill'): Promise<void> => {
    // c2s nodes first (they drain sessions), then the actor services (they
    // hand their shards over), then sm.
    await Promise.all(procs.map((p) => (how === 'stop' ? p.stop() : p.kill())));
    await Promise.all([...rosterProcs, ...mucProcs, ...proxyProcs, ...s2sProcs].map((p) => (how === 'stop' ? p.stop() : p.kill())));
    await (how === 'stop' ? sm.stop() : sm.kill());
  };
  const startAll = async (): Promise<void> => {
    await sm.start();
    // The actors before the edges, so the first stanzas find an owner.
    await Promise.all([...rosterProcs, ...mucProcs, ...proxyProcs, ...s2sProcs].map((p) => p.start()));
    await Promise.all(procs.map((p) => p.start()));
  };
  try {
    await startAll();
  } catch (err) {
    await stopAll('kill');
    for (const p of all) p.close();
    await nats.stop();
    await redis.stop();
    throw err;
  }

  const node = (i: number): HyphaeProcess => {
    const p = procs[i];
    if (!p) throw new Error(`no c2s node ${i} (cluster has ${procs.length})`);
    return p;
  };
  const rosterProc = (i: number): HyphaeProcess => {
    const p = rosterProcs[i];
    if (!p) throw new Error(`no roster instance ${i} (cluster has ${rosterProcs.length})`);
    return p;
  };
  const mucProc = (i: number): HyphaeProcess => {
    const p = mucProcs[i];
    if (!p) throw new Error(`no muc instance ${i} (cluster has ${mucProcs.length})`);
    return p;
  };
  const s2sProc = (i: number): HyphaeProcess => {
    const p = s2sProcs[i];
    if (!p) throw new Error(`no s2s instance ${i} (cluster has ${s2sProcs.length})`);
    return p;
  };
  const proxyProc = (i: number): HyphaeProcess => {
    const p = proxyProcs[i];
    if (!p) throw new Error(`no proxy65 instance ${i} (cluster has ${proxyProcs.length})`);
    return p;
  };
  let disposed = false;
  return {
    mode: 'cluster',
    domain,
    c2s: nodes,
    httpPort: smHttpPort,
    smHttpPort,
    dataDir: root,
    nats,
    redis,
    stop: () => stopAll('stop'),
    kill: () => stopAll('kill'),
    async restart() {
      await stopAll('stop');
      await startAll();
    },
    killNode: (i) => node(i).kill(),
    stopNode: (i) => node(i).stop(),
    restartNode: async (i) => {
      const p = node(i);
      if (p.running) await p.stop();
      await p.start();
    },
    killSm: () => sm.kill(),
    restartSm: async () => {
      if (sm.running) await sm.stop();
      await sm.start();
    },
    roster: rosterNodes,
    killRoster: (i) => rosterProc(i).kill(),
    restartRoster: async (i) => {
      const p = rosterProc(i);
      if (p.running) await p.stop();
      await p.start();
    },
    rosterRunning: (i) => rosterProc(i).running,
    muc: mucNodes,
    killMuc: (i) => mucProc(i).kill(),
    stopMuc: (i) => mucProc(i).stop(),
    restartMuc: async (i) => {
      const p = mucProc(i);
      if (p.running) await p.stop();
      await p.start();
    },
    mucRunning: (i) => mucProc(i).running,
    proxy65: proxyNodes,
    killProxy65: (i) => proxyProc(i).kill(),
    restartProxy65: async (i) => {
      const p = proxyProc(i);
      if (p.running) await p.stop();
      await p.start();
    },
    proxy65Running: (i) => proxyProc(i).running,
    s2s: s2sNodes,
    killS2s: (i) => s2sProc(i).kill(),
    restartS2s: async (i) => {
      const p = s2sProc(i);
      if (p.running) await p.stop();
      await p.start();
    },
    s2sRunning: (i) => s2sProc(i).running,
    nodeRunning: (i) => node(i).running,
    smRunning: () => sm.running,
    restartProcess: async (name) => {
      const p = all.find((q) => q.name === name);
      if (!p) throw new Error(`no process ${name} (cluster has ${all.map((q) => q.name).join(', ')})`);
      if (p.running) await p.stop();
      await p.start();
    },
    killRedis: async (o = {}) => {
      await redis.kill();
      if (o.empty) wipeRedisFiles(redisDir);
    },
    outage: async (dep, downMs, o = {}) => {
      const at = Date.now();
      if (dep === 'redis') {
        await redis.kill();
        if (o.empty) wipeRedisFiles(redisDir);
      } else {
        await nats.kill();
      }
      await sleep(Math.max(0, at + downMs - Date.now()));
      await (dep === 'redis' ? redis : nats).restart();
    },
    logs: () => [...lines],
    exitStatus: () => all.map((p) => p.exitStatus()),
    unhandledErrors: () => [...unhandled],
    async dispose() {
      if (disposed) return;
      disposed = true;
      await stopAll('stop');
      for (const p of all) p.close();
      await Promise.all([nats.stop(), redis.stop()]);
      if (!process.env.HYPHAE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
      assertNoUnhandled(unhandled);
    },
  };
}
