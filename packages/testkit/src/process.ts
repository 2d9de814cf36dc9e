import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';

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
