import { probeTcp, spawnServer, type ServerProcess } from './process.js';

export interface RedisOptions {
  /**
   * Append-only file with fsync on every write, so data survives kill() and
   * restart(). Off by default: routing-state tests want a clean slate and
   * the speed of a memory-only server.
   */
  persistence?: boolean;
}

/**
 * Spawns `redis-server` on a free loopback port with a fresh temp dir and
 * waits until it answers PING. Throws if redis-server is not installed:
 * tests should check `hasBinary('redis-server')` first and skip with a reason.
 */
export function startRedis(opts: RedisOptions = {}): Promise<ServerProcess> {
  return spawnServer({
    name: 'redis',
    binary: 'redis-server',
    installHint: 'e.g. apt-get install redis-server',
    args: (port, tempDir) => [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', tempDir(),
      // Log to stdout, where testkit keeps a tail of it for error messages.
      '--logfile', '',
      // appendfsync always: a kill -9 must not lose acknowledged writes, or
      // persistence tests would be flaky by up to a second of data.
      ...(opts.persistence ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ],
    // Accepting TCP is not enough: while it loads its AOF Redis answers -LOADING to every command.
    ready: (port) => probeTcp(port, { send: 'PING\r\n', verdict: (r) => (r.includes('\n') ? r.startsWith('+PONG') : undefined) }),
    readiness: 'answering PING',
    url: (port) => `redis://127.0.0.1:${port}`,
  });
}
