/**
 * Small helpers the harnesses of other servers (Prosody, ejabberd) share:
 * reading a log that may not exist yet, a child's state, and the readiness
 * probe on a c2s port.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { exited, isRunning, probeTcp } from '@hyphae/testkit';
import type { C2sNode } from './server.js';

/** A file's text, or '' while it does not exist. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export { isRunning, exited };

/** What the harness of another XMPP server (Prosody, ejabberd) hands a test. */
export interface ForeignServer {
  readonly domain: string;
  /** The MUC service's domain, when the server was started with one. */
  readonly mucDomain: string | undefined;
  readonly host: '127.0.0.1';
  /** c2s, STARTTLS required. */
  readonly c2sPort: number;
  /** The temporary directory (config, data, logs); removed by stop() unless HYPHAE_E2E_KEEP is set. */
  readonly dir: string;
  /** The server's own process (while running). */
  readonly pid: number;
  /** The c2s endpoint in the shape harness/clients.ts's login() takes (`login(server, {...})`). */
  readonly c2s: readonly C2sNode[];
  /** Creates an account with the server's own command line tool; works while it runs. */
  addUser(user: string, password: string): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period; waits for the exit and removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** Whether the process is still running. */
  running(): boolean;
  /** The server's log file, then anything it wrote to stdout/stderr. */
  log(): string;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function terminate(c: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(c)) return;
  const done = exited(c);
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * One readiness probe on a c2s port: a stream header for `domain` must be
 * answered with stream features from `domain` (so it is the server we
 * started, not whoever else took the port). Never rejects.
 */
export function probeStream(port: number, domain: string): Promise<boolean> {
  const from = new RegExp(`from=['"]${domain.replace(/\./g, '\\.')}['"]`);
  return probeTcp(port, {
    send: `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
    verdict: (reply) => (/<stream:features[\s>]/.test(reply) ? from.test(reply) : undefined),
  });
}

// Cleanup when the test process ends without stop(): SIGKILL the servers,
// remove their directories. Signals that end the process without 'exit'
// are covered by each server's own parent watchdog (it stops within a
// second or two).
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
    for (const d of [...dirs]) removeDir(d);
  });
}

/** `dir` is removed when the test process exits, unless removeDir() came first. */
export function ownDir(dir: string): string {
  installExitHook();
  dirs.add(dir);
  return dir;
}

/** Removes a server's directory (kept when HYPHAE_E2E_KEEP is set). Best effort. */
export function removeDir(dir: string): void {
  dirs.delete(dir);
  if (process.env.HYPHAE_E2E_KEEP) return;
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // best effort
  }
}

/** The harness would retry on other ports: the server found one of its ports taken. */
export class PortTaken extends Error {}

/** The last `n` lines of a log. */
export function tail(s: string, n = 60): string {
  return s.split('\n').slice(-n).join('\n');
}

/** A server process, unref'd (it never holds a test process open), with the first 64 KiB of what it wrote. */
export interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  spawnError(): Error | undefined;
}

/** Spawns `bin`, killed when the test process exits (installExitHook). Reading both pipes also keeps it from blocking. */
export function spawnUnref(bin: string, args: string[], opts: SpawnOptions): Spawned {
  installExitHook();
  const c = spawn(bin, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(c);
  c.once('exit', () => live.delete(c));
  c.unref();
  let output = '';
  for (const s of [c.stdout, c.stderr]) {
    s?.on('data', (b: Buffer) => {
      if (output.length < 64 * 1024) output += b.toString('utf8');
    });
    (s as unknown as { unref?: () => void } | null)?.unref?.();
  }
  let spawnError: Error | undefined;
  c.once('error', (err) => {
    spawnError = err;
  });
  return { child: c, output: () => output, spawnError: () => spawnError };
}

/**
 * Polls every 50 ms until `ready()`. The child exiting first, `portTaken`
 * matching its log (PortTaken: the caller retries on other ports) or
 * `deadlineMs` passing end it (SIGKILL) and throw, with the log's tail.
 */
export async function untilReady(
  s: Spawned,
  o: { name: string; bin: string; deadlineMs: number; log: () => string; portTaken: RegExp; ready: () => Promise<boolean> },
): Promise<void> {
  const c = s.child;
  const deadline = Date.now() + o.deadlineMs;
  const kill = async (): Promise<void> => {
    c.kill('SIGKILL');
    await exited(c);
  };
  for (;;) {
    const spawnError = s.spawnError();
    if (spawnError) throw new Error(`${o.bin} failed to start: ${spawnError.message}`);
    if (!isRunning(c)) {
      await exited(c);
      const log = o.log();
      if (o.portTaken.test(log)) throw new PortTaken(tail(log));
      throw new Error(`${o.name} exited (code ${c.exitCode}, signal ${c.signalCode}) before it was ready:\n${tail(log)}`);
    }
    if (o.portTaken.test(o.log())) {
      await kill();
      throw new PortTaken(tail(o.log()));
    }
    if ((await o.ready()) && isRunning(c)) return;
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`${o.name} was not ready within ${o.deadlineMs} ms:\n${tail(o.log())}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `launch` until it succeeds, again (on other ports) while it throws
 * PortTaken, at most `attempts` times; then `setup`. Anything that fails
 * kills the child and calls `cleanup` before the error goes on.
 */
export async function launchWithRetries(o: {
  attempts: number;
  launch: () => Promise<void>;
  setup: () => Promise<void>;
  child: () => ChildProcess | undefined;
  cleanup: () => void;
}): Promise<void> {
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await o.launch();
        break;
      } catch (err) {
        if (!(err instanceof PortTaken) || attempt >= o.attempts) throw err;
      }
    }
    await o.setup();
  } catch (err) {
    const c = o.child();
    if (c && isRunning(c)) {
      c.kill('SIGKILL');
      await exited(c);
    }
    o.cleanup();
    throw err;
  }
}

