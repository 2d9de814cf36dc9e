import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/**
 * One dependency's health. `live` answers "is this process broken beyond
 * repair?" (Kubernetes restarts it when /healthz fails), so it should only
 * fail for things a restart fixes (a wedged event loop, a fatal internal
 * state). `ready` answers "should traffic be sent here now?" (/readyz; a
 * failing pod is taken out of Service endpoints but left running), e.g. the
 * bus or the store is disconnected.
 */
export interface HealthCheck {
  name: string;
  live?: () => boolean;
  ready: () => boolean | Promise<boolean>;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; the handle reports the real one. */
  port: number;
  registry: Registry;
  /**
   * Consulted on every request, so a service may push checks into the array
   * after the server started.
   */
  checks: HealthCheck[];
  logger?: Logger;
  /**
   * A ready check that has not answered after this long counts as failed, so
   * a hung dependency fails the probe instead of hanging it. Default 1000 ms
   * (Kubernetes' default probe timeout is 1 s).
   */
  checkTimeoutMs?: number;
}

/** A handler of mounted routes: it answers every request it gets (any method), errors included. */
export type HttpRouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface HttpServerHandle {
  /** The port actually bound. */
  port: number;
  /**
   * Serves every request whose path is `prefix` or starts with `prefix/`
   * (e.g. '/admin') with `handler`, whatever the method. The built-in
   * endpoints cannot be shadowed. Returns a function that unmounts it.
   */
  mount(prefix: string, handler: HttpRouteHandler): () => void;
  /**
   * While draining (SIGTERM received), /readyz answers 503 so the load
   * balancer stops sending new connections; /healthz stays 200 so the
   * orchestrator does not kill the process in the middle of its drain.
   */
  setDraining(draining: boolean): void;
  /** Stop listening and close open connections. */
  close(): Promise<void>;
}

interface CheckResult {
  ok: boolean;
  failing: string[];
}

function runLive(checks: readonly HealthCheck[], logger?: Logger): CheckResult {
  const failing: string[] = [];
  for (const check of checks) {
    if (!check.live) continue;
    let ok = false;
    try {
      ok = check.live() === true;
    } catch (err) {
      logger?.warn({ err, check: check.name }, 'liveness check threw');
    }
    if (!ok) failing.push(check.name);
  }
  return { ok: failing.length === 0, failing };
}

async function runReady(checks: readonly HealthCheck[], timeoutMs: number, logger?: Logger): Promise<CheckResult> {
  const results = await Promise.all(
    checks.map(async (check) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const outcome = await Promise.race([Promise.resolve().then(() => check.ready()), timeout]);
        if (outcome === 'timeout') {
          logger?.warn({ check: check.name, timeoutMs }, 'readiness check timed out');
          return false;
        }
        return outcome === true;
      } catch (err) {
        logger?.warn({ err, check: check.name }, 'readiness check threw');
        return false;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const failing = checks.filter((_, i) => !results[i]).map((c) => c.name);
  return { ok: failing.length === 0, failing };
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    // Probes and scrapes must see the current state, never a cached one.
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void {
  send(res, req, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

/**
 * The observability endpoint of a service (node:http, no framework):
 * - GET /metrics — Prometheus text exposition of `registry`;
 * - GET /healthz — liveness: 200 {status:'ok'} while every `live` check
 *   passes, else 503 {status:'fail', failing:[names]};
 * - GET /readyz — readiness: 200 {status:'ok'} when not draining and every
 *   `ready` check passes, else 503 {status:'unavailable', draining, failing};
 * - HEAD is accepted wherever GET is; other methods get 405; other paths 404,
 *   unless a handler is mounted on their prefix (`mount()`, e.g. the admin API).
 */
export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const { registry, checks, logger } = opts;
  const timeoutMs = opts.checkTimeoutMs ?? 1000;
  let draining = false;

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    '/metrics': async (req, res) => {
      const text = await registry.metrics();
      send(res, req, 200, registry.contentType, text);
    },
    '/healthz': (req, res) => {
      const live = runLive(checks, logger);
      if (live.ok) sendJson(res, req, 200, { status: 'ok' });
      else sendJson(res, req, 503, { status: 'fail', failing: live.failing });
    },
    '/readyz': async (req, res) => {
      // Checks run even while draining so the body says what else is wrong.
      const ready = await runReady(checks, timeoutMs, logger);
      if (ready.ok && !draining) sendJson(res, req, 200, { status: 'ok' });
      else sendJson(res, req, 503, { status: 'unavailable', draining, failing: ready.failing });
    },
  };

  const mounts = new Map<string, HttpRouteHandler>();
  const mounted = (path: string): HttpRouteHandler | undefined => {
    for (const [prefix, handler] of mounts) if (path === prefix || path.startsWith(prefix + '/')) return handler;
    return undefined;
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const extra = route ? undefined : mounted(path);
    if (extra) {
      Promise.resolve()
        .then(() => extra(req, res))
        .catch((err: unknown) => {
          logger?.error({ err, path }, 'mounted endpoint failed');
          if (!res.headersSent) sendJson(res, req, 500, { status: 'error' });
          else res.destroy();
        });
      return;
    }
    if (!route) {
      sendJson(res, req, 404, { status: 'not found', path });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    Promise.resolve()
      .then(() => route(req, res))
      .catch((err: unknown) => {
        logger?.error({ err, path }, 'observability endpoint failed');
        if (!res.headersSent) sendJson(res, req, 500, { status: 'error' });
        else res.destroy();
      });
  });
  // Scrapers keep connections alive; never let them pin the process at exit.
  server.unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger?.error({ err }, 'observability server error'));

  const port = (server.address() as AddressInfo).port;
  logger?.info({ host: opts.host, port }, 'metrics and health endpoints listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    mount(prefix: string, handler: HttpRouteHandler) {
      const p = prefix.replace(/\/+$/, '');
      if (!p.startsWith('/') || Object.hasOwn(routes, p)) throw new Error(`cannot mount '${prefix}'`);
      if (mounts.has(p)) throw new Error(`'${p}' is mounted already`);
      mounts.set(p, handler);
      return () => {
        if (mounts.get(p) === handler) mounts.delete(p);
      };
    },
    setDraining(value: boolean) {
      draining = value;
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections from scrapers would otherwise hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
