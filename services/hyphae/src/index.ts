/**
 * @hyphae/hyphae — the composition root: builds the bus, the stores and the
 * services a process runs, from one validated configuration.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { HyphaeConfig } from '@hyphae/config';
import { createMemoryBus, connectNatsBus, currentTrace, type Bus } from '@hyphae/bus';
import { openEmbeddedStores, openRedisStores, type Stores } from '@hyphae/store';
import { createLogger, createMetrics, instrumentMethods, startHttpServer, type Logger, type Metrics, type HttpServerHandle } from '@hyphae/observability';
import { startC2s, loadTlsCredentials, type C2sService } from '@hyphae/c2s';
import { startSm, type SmService } from '@hyphae/sm';
import { startRoster, type RosterService } from '@hyphae/roster';
import { startMuc, type MucService } from '@hyphae/muc';
import { startProxy65, type Proxy65Service } from '@hyphae/proxy65';
import { startS2s, type S2sService } from '@hyphae/s2s';
import { createAdmin, adminHttpHandler, startAdminServer, ADMIN_PREFIX, type AdminServer } from '@hyphae/admin';
import { announceSessionChanges } from '@hyphae/router';
import { ModuleRegistry } from '@hyphae/module-api';
import { MODULES } from './modules.js';

export { MODULES, moduleSections, declarations, SERVICE_DECLARATIONS } from './modules.js';
import { complianceFiles as filesFor } from './modules.js';
/** docs/compliance.md and docs/hyphae.doap as this build would write them (scripts/compliance.mjs). */
export const complianceFiles = (): Record<string, string> => filesFor(VERSION);

export const SERVICES = ['c2s', 'sm', 'roster', 'muc', 'proxy65', 's2s'] as const;
export type ServiceName = (typeof SERVICES)[number];

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export class StartupError extends Error {
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

export interface RunningProcess {
  logger: Logger;
  metrics: Metrics;
  bus: Bus;
  stores: Stores;
  c2s: C2sService | null;
  sm: SmService | null;
  roster: RosterService | null;
  muc: MucService | null;
  proxy65: Proxy65Service | null;
  s2s: S2sService | null;
  http: HttpServerHandle | null;
  /** The admin API's own listener (http.adminPort); null: it is on the http port, or off with it. */
  adminHttp: AdminServer | null;
  /** Graceful stop: readiness off, services drained, connections closed. */
  stop(): Promise<void>;
}

/**
 * Starts `services` in this process. `all` mode (every service) may use the
 * in-process bus and the embedded store; a single service is cluster mode
 * and needs NATS and Redis.
 */
export async function startProcess(config: HyphaeConfig, services: readonly ServiceName[], opts: { logger?: Logger } = {}): Promise<RunningProcess> {
  const all = SERVICES.every((s) => services.includes(s));
  const label = all ? 'all' : services.join('+');
  const logger = opts.logger ?? createLogger({
    service: label, node: config.nodeId, level: config.log.level,
    // The trace id of the stanza being handled, in every process it crosses.
    context: () => {
      const trace = currentTrace();
      return trace === undefined ? {} : { trace };
    },
  });
  if (!all && (!config.natsUrl || !config.redisUrl)) {
    throw new StartupError(config.natsUrl ? 'redisUrl' : 'natsUrl',
      `cluster mode ('hyphae ${label}') needs natsUrl and redisUrl (NATS_URL, REDIS_URL); 'hyphae all' runs without them`);
  }
  const metrics = createMetrics({ service: label, node: config.nodeId });

  const bus: Bus = config.natsUrl
    ? await connectNatsBus({ servers: config.natsUrl, name: `hyphae-${label}-${config.nodeId}`, logger })
    : createMemoryBus();
  bus.onStatus((s) => {
    metrics.busConnected.set(s === 'connected' ? 1 : 0);
    logger.info({ bus: bus.kind, status: s }, 'bus status');
  });
  metrics.busConnected.set(bus.isConnected() ? 1 : 0);

  let stores: Stores;
  if (config.redisUrl) {
    // After Redis loses its data, every c2s node re-records its sessions within a node TTL.
    stores = await openRedisStores({ url: config.redisUrl, logger, recoveryMs: config.sm.nodeTtlMs });
  } else {
    await mkdir(config.dataDir, { recursive: true });
    stores = await openEmbeddedStores({ dir: config.dataDir });
    logger.info({ dataDir: config.dataDir }, 'embedded store opened');
  }
  // Every store call's latency (hyphae_store_latency_seconds{op="sessions.get"}, …).
  for (const key of ['accounts', 'sessions', 'rosters', 'offline', 'presence', 'rooms', 'coordination'] as const) {
    (stores as unknown as Record<string, object>)[key] = instrumentMethods(stores[key], key, metrics.storeLatency);
  }
  // Every registry write announces the bare JID, so the routers' session caches drop it.
  stores.sessions = announceSessionChanges(stores.sessions, bus);

  // One registry for the whole process: every router and edge treats a stanza alike (DESIGN.md Modules).
  const registry = ModuleRegistry.create(MODULES, { config, stores, storage: stores.storage, bus, logger, metrics, version: VERSION });

  const sm = services.includes('sm') ? await startSm({ config, bus, stores, logger, metrics }) : null;
  const roster = services.includes('roster') ? await startRoster({ config, bus, stores, logger, metrics, registry }) : null;
  const muc = services.includes('muc') && config.muc.enabled ? await startMuc({ config, bus, stores, logger, metrics, registry }) : null;
  const proxy65 = services.includes('proxy65') && config.proxy65.enabled ? await startProxy65({ config, bus, stores, logger, metrics, registry }) : null;
  const tls = services.includes('c2s') || services.includes('s2s') ? await loadTlsCredentials(config, logger) : null;
  const s2s = tls && services.includes('s2s') && config.s2s.enabled ? await startS2s({ config, bus, stores, logger, metrics, tls, version: VERSION, registry }) : null;
  let c2s: C2sService | null = null;
  if (tls && services.includes('c2s')) {
    c2s = await startC2s({ config, bus, stores, logger, metrics, tls, registry });
    if (config.registration.open) {
      logger.warn({ domains: config.domains }, 'in-band registration is open: anyone who can reach this server can create accounts');
    }
  }

  const http = config.http.port === null ? null : await startHttpServer({
    host: config.http.host,
    port: config.http.port,
    registry: metrics.registry,
    logger,
    checks: [
      { name: 'bus', ready: () => bus.isConnected() },
      { name: 'store', ready: () => { const ok = stores.isReady(); metrics.storeConnected.set(ok ? 1 : 0); return ok; } },
    ],
  });
  // --- admin HTTP API (@hyphae/admin): /admin/... on the http port or its own listener; token or loopback only ---
  const adminOpts = { token: config.http.adminToken, serverNames: config.http.adminServerNames, logger };
  let adminHttp: AdminServer | null = null;
  if (config.http.adminPort !== null) {
    adminHttp = await startAdminServer(createAdmin({ config, bus, stores, logger }), { ...adminOpts, listenHost: config.http.adminHost, port: config.http.adminPort });
  } else if (http) {
    http.mount(ADMIN_PREFIX, adminHttpHandler(createAdmin({ config, bus, stores, logger }), { ...adminOpts, listenHost: config.http.host }));
  }
  // --- end admin HTTP API ---
  logger.info({ version: VERSION, services, http: http?.port ?? null, c2s: c2s?.ports ?? null, s2s: s2s?.ports ?? null, bus: bus.kind, store: stores.kind }, 'hyphae started');

  let stopping: Promise<void> | null = null;
  return {
    logger, metrics, bus, stores, c2s, sm, roster, muc, proxy65, s2s, http, adminHttp,
    stop() {
      stopping ??= (async () => {
        http?.setDraining(true);
        await c2s?.stop();
        await roster?.stop();
        await muc?.stop();
        await proxy65?.stop();
        await s2s?.stop();
        await sm?.stop();
        await registry.stop();
        await bus.close();
        await stores.close();
        await adminHttp?.close();
        await http?.close();
        logger.info('hyphae stopped');
      })();
      return stopping;
    },
  };
}
