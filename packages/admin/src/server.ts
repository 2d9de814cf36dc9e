/**
 * The admin API on a listener of its own (`http.adminHost`:`http.adminPort`),
 * apart from /metrics and the health endpoints: those must be reachable by
 * Prometheus and the kubelet, the API only by operators (loopback: kubectl
 * exec or port-forward, docker exec).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_PREFIX, adminHttpHandler, type AdminHttpOptions } from './http.js';
import type { Admin } from './ops.js';

export interface AdminServerOptions extends AdminHttpOptions {
  /** Port to listen on at `listenHost`; 0 picks a free one. */
  port: number;
}

export interface AdminServer {
  /** The port listened on (after binding port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the listener; throws AdminConfigError (no token on a non-loopback address) before binding anything. */
export async function startAdminServer(admin: Admin, opts: AdminServerOptions): Promise<AdminServer> {
  const handler = adminHttpHandler(admin, opts);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (path === ADMIN_PREFIX || path.startsWith(`${ADMIN_PREFIX}/`)) {
      // The handler answers every request itself, errors included.
      handler(req, res).catch((err: unknown) => {
        opts.logger?.error({ err }, 'admin request failed');
        res.destroy();
      });
      return;
    }
    const body = JSON.stringify({ error: 'no-such-endpoint', message: `no admin endpoint ${path}` });
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.listenHost, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.logger?.info({ host: opts.listenHost, port }, 'admin API listening');
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
