import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

/** A spawned server the test owns. */
export interface ServerProcess {
  /** e.g. nats://127.0.0.1:41234 or redis://127.0.0.1:41235 */
  readonly url: string;
  readonly port: number;
  /** Current pid (changes on restart). */
  readonly pid: number;
  /** Graceful stop (SIGTERM), waits for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, waits for exit. */
  kill(): Promise<void>;
  /** Starts again on the same port (after stop or kill), waits until it accepts connections. */
  restart(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether an executable is on PATH (tests that need it skip with a reason otherwise). */
export function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What differs between the servers testkit runs; spawnServer() does the rest. */
export interface ServerSpec {
  /** Short name, used in the temp dir's name (hyphae-<name>-XXXXXX). */
  name: string;
  /** Executable looked up on PATH. */
  binary: string;
  /** Added to the "not installed" error, e.g. "e.g. apt-get install redis-server". */
  installHint?: string;
  /**
   * Command line for `port`. `tempDir()` makes (on first call) a fresh
   * directory for this server, kept across restarts and removed when the test
   * process exits.
   */
  args(port: number, tempDir: () => string): string[];
  /** One readiness check, repeated until it passes or the deadline; must resolve, not reject. */
  ready(port: number): Promise<boolean>;
  /** What `ready` checks, as it reads in errors: "accepting connections", "answering PING". */
  readiness: string;
  url(port: number): string;
}

/** How long start and restart wait for `ready`. */
const READY_DEADLINE_MS = 10_000;
/** How long stop() waits after SIGTERM before it falls back to SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Keep only the tail of the server's log for error messages. */
const LOG_TAIL_BYTES = 16 * 1024;
/** A port taken between freePort() and spawn is retried on a new port this many times. */
const PORT_ATTEMPTS = 3;
/** How nats-server ("address already in use") and redis-server ("Address already in use") report a taken port. */
const PORT_IN_USE = /address already in use/i;

/**
 * Every server spawned and not yet seen exiting, and every temp dir made, by
 * any start function: a test that crashes or forgets stop() must not leave
 * servers behind holding ports and memory (on a CI box they would pile up
 * across runs). One registry with one set of hooks, so cleanup does not
 * depend on which kind of server was started first.
 */
const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

/**
 * Marks our signal listeners. Symbol.for is process-wide, so a second copy
 * of this module (two installed versions of testkit) recognises the first's
 * listener too: otherwise each would take the other for the application's
 * and neither would end the process.
 */
const TESTKIT_LISTENER = Symbol.for('hyphae.testkit.signalListener');

/** Synchronous, so it can run in an 'exit' handler: sending SIGKILL is all a dying process can still do. */
function cleanupNow(): void {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of tempDirs) {
    try {
      // A server killed just now may still be writing into it; retries cover the ENOTEMPTY race.
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // best effort: the OS cleans tmp eventually
    }
  }
  tempDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Also covers process.exit() and uncaught exceptions, which end the process through 'exit'.
  process.on('exit', cleanupNow);
  // A signal's default action ends the process without running 'exit'
  // handlers (node --test sends SIGTERM to a file that times out), so we
  // listen. Our servers always go. Whether we also end the process depends
  // on who else listens: if nobody but testkit does, we exit with the
  // conventional 128+signo (rather than re-raising) so that every module's
  // 'exit' handlers run; if the application under test has its own listener,
  // its shutdown logic decides.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupNow();
      if (process.listeners(sig).every((l) => TESTKIT_LISTENER in l)) process.exit(128 + (constants.signals[sig] ?? 0));
    };
    Object.defineProperty(onSignal, TESTKIT_LISTENER, { value: true });
    process.on(sig, onSignal);
  }
}

/**
 * One readiness check on 127.0.0.1:port: true when it accepts a TCP
 * connection and, with `hello`, answers `hello.send` with a reply that
 * `hello.verdict` accepts (it sees the reply so far and returns undefined
 * until it can decide). Never rejects.
 */
export function probeTcp(port: number, hello?: { send: string; verdict: (reply: string) => boolean | undefined }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
    if (hello === undefined) {
      sock.once('connect', () => done(true));
      return;
    }
    let reply = '';
    sock.once('connect', () => sock.write(hello.send));
    sock.on('data', (b: Buffer) => {
      reply += b.toString('utf8');
      const ok = hello.verdict(reply);
      if (ok !== undefined) done(ok);
    });
  });
}

export function isRunning(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

/** Resolves once the child has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  // Unref'd children do not keep the event loop alive; hold it while we wait.
  child.ref();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

class PortInUse extends Error {}

/**
 * Spawns `spec.binary` on a free loopback port and waits until `spec.ready`
 * passes (a new port if the chosen one was taken meanwhile). Throws if the
 * binary is not on PATH, or with the server's log if it exits or is not
 * ready within 10 s.
 */
export async function spawnServer(spec: ServerSpec): Promise<ServerProcess> {
  const { binary } = spec;
  if (!hasBinary(binary)) {
    const hint = spec.installHint === undefined ? '' : ` (${spec.installHint})`;
    throw new Error(`${binary} is not installed (not found on PATH); install it${hint} or skip the test when hasBinary('${binary}') is false`);
  }
  installHooks();

  let dir: string | undefined;
  const tempDir = (): string => {
    if (dir === undefined) {
      dir = mkdtempSync(join(tmpdir(), `hyphae-${spec.name}-`));
      tempDirs.add(dir);
    }
    return dir;
  };

  let port = 0;
  let child: ChildProcess | undefined;
  let log = '';

  async function launch(): Promise<void> {
    log = '';
    const c = spawn(binary, spec.args(port, tempDir), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c);
    c.once('exit', () => live.delete(c));
    // A test that forgets stop() should still end; the exit hook kills the server.
    c.unref();
    // Servers log to stdout or stderr; keep a tail of both for error messages.
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
      if (spawnError) throw new Error(`${binary} failed to start: ${spawnError.message}`);
      if (!isRunning(c)) {
        await exited(c); // let the last log lines arrive
        const msg = `${binary} on port ${port} exited (code ${c.exitCode}, signal ${c.signalCode}) before ${spec.readiness}:\n${log}`;
        throw PORT_IN_USE.test(log) ? new PortInUse(msg) : new Error(msg);
      }
      // The port was free when chosen; checking that our child is still alive
      // after the probe guards against someone else's server having taken it
      // since and answering in its place.
      if ((await spec.ready(port)) && isRunning(c)) return;
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        await exited(c);
        throw new Error(`${binary} was not ${spec.readiness} on 127.0.0.1:${port} within ${READY_DEADLINE_MS} ms:\n${log}`);
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
    url: spec.url(port),
    port,
    get pid(): number {
      return child?.pid ?? -1;
    },
    stop: () => signalAndWait('SIGTERM'),
    kill: () => signalAndWait('SIGKILL'),
    async restart(): Promise<void> {
      // Restarting a running server means a graceful stop first; port and temp dir stay.
      await signalAndWait('SIGTERM');
      await launch();
    },
  };
}
