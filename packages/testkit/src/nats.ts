import { probeTcp, spawnServer, type ServerProcess } from './process.js';

export interface NatsOptions {
  /** Enable JetStream, with its store in a fresh temporary directory (removed when the test process exits). */
  jetstream?: boolean;
}

/**
 * Spawns `nats-server` on a free loopback port and waits until it accepts
 * connections. Throws if nats-server is not installed: tests should check
 * `hasBinary('nats-server')` first and skip with a reason.
 */
export function startNats(opts: NatsOptions = {}): Promise<ServerProcess> {
  return spawnServer({
    name: 'nats',
    binary: 'nats-server',
    args: (port, tempDir) => ['-a', '127.0.0.1', '-p', String(port), ...(opts.jetstream ? ['-js', '-sd', tempDir()] : [])],
    ready: (port) => probeTcp(port),
    readiness: 'accepting connections',
    url: (port) => `nats://127.0.0.1:${port}`,
  });
}
