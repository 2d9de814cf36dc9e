import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, hasBinary, type ServerProcess } from './process.js';

export interface NatsOptions {
  /** Enable JetStream, with its store in a fresh temporary directory (removed when the test process exits). */
  jetstream?: boolean;
}

const BINARY = 'nats-server';
/** How long startNats/restart wait for the port to accept connections. */
const READY_DEADLINE_MS = 10_000;
/** How long stop() waits after SIGTERM before it falls back to SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Keep only the tail of the server's log for error messages. */
const LOG_TAIL_BYTES = 16 * 1024;
/** A port taken between freePort() and spawn is retried on a new port this many times. */
const PORT_ATTEMPTS = 3;
/** Marks our signal handlers, so one testkit handler can recognise another. */
const TESTKIT_HANDLER = Symbol.for('hyphae.testkit.signalHandler');

/**
 * Every server this module spawned and has not seen exit, plus the temp dirs
 * it made. A test that crashes or forgets stop() must not leave servers
 * behind: they would hold ports and, on a CI box, pile up across runs.
 */
const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHooksInstalled = false;

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: kill() only sends the signal, which is all we need.
  process.on('exit', () => {
    killAll();
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort: the OS cleans tmp eventually
      }
    }
  });
  // A signal's default action ends the process without running 'exit'
  // handlers (node --test sends SIGTERM to a file that times out). We always
  // kill our servers on these signals. Whether we also end the process
  // depends on who else listens: if only testkit-style handlers do (ours, or
  // redis.ts's, which kills its servers and re-raises), we exit with the
  // conventional 128+signo so that every module's 'exit' hook runs; if the
  // application under test has its own handler, its shutdown logic decides.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      const others = process
        .listeners(sig)
        .filter((l) => l !== onSignal && !(l as unknown as Record<symbol, unknown>)[TESTKIT_HANDLER] && l.name !== 'onSignal');
      const stillHandled = process.listeners(sig).some((l) => l !== onSignal && l.name === 'onSignal');
      // Another testkit handler re-raises the signal; we exit when it comes back to us alone.
      if (others.length === 0 && !stillHandled) process.exit(128 + (constants.signals[sig] ?? 0));
    };
    (onSignal as unknown as Record<symbol, unknown>)[TESTKIT_HANDLER] = true;
    process.on(sig, onSignal);
  }
}

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port. */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function isRunning(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  // Unref'd children do not keep the event loop alive; hold it while we wait.
  child.ref();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

class PortInUse extends Error {}

/**
 * Spawns `nats-server` on a free loopback port and waits until it accepts
 * connections. Throws if nats-server is not installed: tests should check
 * `hasBinary('nats-server')` first and skip with a reason.
 */
export async function startNats(opts: NatsOptions = {}): Promise<ServerProcess> {
  if (!hasBinary(BINARY)) {
    throw new Error(`${BINARY} is not installed (not found on PATH); install it or skip the test when hasBinary('${BINARY}') is false`);
  }
  installExitHooks();
  let storeDir: string | undefined;
  if (opts.jetstream) {
    storeDir = mkdtempSync(join(tmpdir(), 'hyphae-nats-'));
    tempDirs.add(storeDir);
  }

  let port = 0;
  let child: ChildProcess | undefined;
  let log = '';

  function args(): string[] {
    const a = ['-a', '127.0.0.1', '-p', String(port)];
    if (storeDir !== undefined) a.push('-js', '-sd', storeDir);
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
    // nats-server logs to stderr; keep a tail for error messages. Reading both
    // pipes also keeps the server from blocking on a full pipe.
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
        const msg = `${BINARY} on port ${port} exited (code ${c.exitCode}, signal ${c.signalCode}) before accepting connections:\n${log}`;
        throw /address already in use/i.test(log) ? new PortInUse(msg) : new Error(msg);
      }
      // The port was free when chosen; checking that our child is still alive
      // after the probe guards against someone else having taken it since.
      if ((await probe(port)) && isRunning(c)) return;
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        await exited(c);
        throw new Error(`${BINARY} did not accept connections on 127.0.0.1:${port} within ${READY_DEADLINE_MS} ms:\n${log}`);
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
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid(): number {
      return child?.pid ?? -1;
    },
    stop: () => signalAndWait('SIGTERM'),
    kill: () => signalAndWait('SIGKILL'),
    async restart(): Promise<void> {
      // Restarting a running server means a graceful stop first; port (and JetStream store) stay.
      await signalAndWait('SIGTERM');
      await launch();
    },
  };
}
