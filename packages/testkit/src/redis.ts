import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, hasBinary, type ServerProcess } from './process.js';

export interface RedisOptions {
  /**
   * Append-only file with fsync on every write, so data survives kill() and
   * restart(). Off by default: routing-state tests want a clean slate and
   * the speed of a memory-only server.
   */
  persistence?: boolean;
}

const BINARY = 'redis-server';
/** How long startRedis/restart wait for the server to answer PING. */
const READY_DEADLINE_MS = 10_000;
/** How long stop() waits after SIGTERM before it falls back to SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Keep only the tail of the server's log for error messages. */
const LOG_TAIL_BYTES = 16 * 1024;
/** A port taken between freePort() and spawn is retried on a new port this many times. */
const PORT_ATTEMPTS = 3;

/**
 * Every server this module spawned and has not seen exit, plus the temp dirs
 * it made: a test that crashes or forgets stop() must not leave servers
 * behind holding ports and memory.
 */
const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHooksInstalled = false;

/** Synchronous, so it can run in an 'exit' handler: signals the servers, removes the dirs. */
function cleanupNow(): void {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of tempDirs) {
    try {
      // The server may still be writing its AOF for a moment; force ignores what vanished.
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // best effort: the OS cleans tmp eventually
    }
  }
  tempDirs.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous; sending the signal is all we need.
  process.on('exit', cleanupNow);
  // A signal's default action ends the process without 'exit' handlers
  // (node --test sends SIGTERM to a file that times out). Kill the servers
  // and re-raise, but only when nobody else handles the signal, so we never
  // take over an application's own shutdown logic.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(sig) > 0) continue;
    const onSignal = (): void => {
      cleanupNow();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/**
 * True when the server on `port` answers PING with PONG. Accepting TCP is not
 * enough: while it loads its AOF Redis answers -LOADING to every command.
 */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (b: Buffer) => {
      reply += b.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
  });
}

function isRunning(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  // Unref'd children do not keep the loop alive; hold it while we wait.
  child.ref();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

class PortInUse extends Error {}

/**
 * Spawns `redis-server` on a free loopback port with a fresh temp dir and
 * waits until it answers PING. Throws if redis-server is not installed:
 * tests should check `hasBinary('redis-server')` first and skip with a reason.
 */
export async function startRedis(opts: RedisOptions = {}): Promise<ServerProcess> {
  if (!hasBinary(BINARY)) {
    throw new Error(`${BINARY} is not installed (not found on PATH); install it (e.g. apt-get install redis-server) or skip the test when hasBinary('${BINARY}') is false`);
  }
  installExitHooks();
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-redis-'));
  tempDirs.add(dir);

  let port = 0;
  let child: ChildProcess | undefined;
  let log = '';

  function args(): string[] {
    const a = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--logfile', ''];
    // appendfsync always: a kill -9 must not lose acknowledged writes, or
    // persistence tests would be flaky by up to a second of data.
    a.push(...(opts.persistence ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
    return a;
  }

  async function launch(): Promise<void> {
    log = '';
    const c = spawn(BINARY, args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    c.once('exit', () => live.delete(c));
    // A test that forgets stop() should still end; the exit hook kills the server.
    c.unref();
    // Redis logs to stdout with --logfile ''; keep a tail for error messages.
    // Reading both pipes also keeps the server from blocking on a full pipe.
    const append = (b: Buffer): void => {
      log += b.toString('utf8');
      if (log.length > LOG_TAIL_BYTES) log = log.slice(-LOG_TAIL_BYTES);
    };
    for (const s of [c.stdout, c.stderr]) {
      s?.on('data', append);
      (s as unknown as { unref?: () => void } | null)?.unref?.();
    }
    let spawnError: Error | undefined;
    c.once('error', (err) => {
      spawnError = err;
    });

    const deadline = Date.now() + READY_DEADLINE_MS;
    for (;;) {
      if (spawnError) throw new Error(`${BINARY} failed to start: ${spawnError.message}`);
      if (!isRunning(c)) {
        await exited(c); // let the last log lines arrive
        const msg = `${BINARY} on port ${port} exited (code ${c.exitCode}, signal ${c.signalCode}) before answering PING:\n${log}`;
        throw /Address already in use/i.test(log) ? new PortInUse(msg) : new Error(msg);
      }
      // Checking our child is still alive after the PING guards against
      // another server having taken the port since freePort().
      if ((await ping(port)) && isRunning(c)) return;
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        await exited(c);
        throw new Error(`${BINARY} did not answer PING on 127.0.0.1:${port} within ${READY_DEADLINE_MS} ms:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function signalAndWait(sig: NodeJS.Signals): Promise<void> {
    const c = child;
    if (!c || !isRunning(c)) return;
    const done = exited(c);
    c.kill(sig);
    if (sig === 'SIGKILL') return done;
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        c.kill('SIGKILL');
        resolve();
      }, STOP_GRACE_MS);
    });
    await Promise.race([done, forced]);
    clearTimeout(timer);
    await done;
  }

  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (!(err instanceof PortInUse) || attempt >= PORT_ATTEMPTS) throw err;
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid(): number {
      return child?.pid ?? -1;
    },
    stop: () => signalAndWait('SIGTERM'),
    kill: () => signalAndWait('SIGKILL'),
    async restart(): Promise<void> {
      // Restarting a running server means a graceful stop first; port and dir stay.
      await signalAndWait('SIGTERM');
      await launch();
    },
  };
}
