/**
 * What the load runs against: an external server (--host/--port), or a
 * Hyphae the tool starts itself with the e2e harness (--spawn), configured
 * so that load from one loopback address is allowed.
 */
import { startCluster, startEmbedded, clusterSkipReason, embeddedSkipReason, deepMerge, NODE_ARGS, type ClusterServer, type HyphaeServer } from '../harness/server.js';
import { resolve } from 'node:path';
import type { Endpoint } from './client.js';
import type { Options } from './options.js';
import { childProcesses, labelOf, type Watched } from './proc.js';

export interface Target {
  mode: 'embedded' | 'cluster' | 'external';
  endpoints: Endpoint[];
  domain: string;
  mucDomain: string;
  /** Server processes whose CPU and RSS are sampled. */
  watched: Watched[];
  /** A Hyphae cluster's Redis port on 127.0.0.1 (commands per stanza are counted), or null. */
  redisPort: number | null;
  /** Hyphae processes' metrics ports (route cache hits are counted); empty when unknown. */
  metricsPorts: number[];
  /** The spawned server's warn/error log lines (empty for external targets). */
  problems(): string[];
  dispose(): Promise<void>;
}


/** Every metrics port of a Hyphae the harness started (each process of a cluster). */
export function hyphaeMetricsPorts(server: HyphaeServer): number[] {
  if (server.mode !== 'cluster') return [server.httpPort];
  const c = server as ClusterServer;
  return [...new Set([c.smHttpPort, ...c.c2s.map((n) => n.httpPort), ...c.roster.map((n) => n.httpPort), ...c.muc.map((n) => n.httpPort), ...c.proxy65.map((n) => n.httpPort)])];
}

/** The config overrides a spawned server gets: room for the load, then --server-config on top. */
export function spawnConfig(o: Options): Record<string, unknown> {
  const people = Math.max(o.users, o.occupants);
  return deepMerge(
    {
      log: { level: o.serverLogLevel },
      // One loopback address opens every connection and registers every account.
      c2s: { maxConnectionsPerIp: Math.max(1000, people * 2 + 100), maxStanzaBytes: Math.max(262_144, o.bodyBytes + 4096) },
      registration: { open: true, maxPerIp: 1_000_000, allowlist: ['127.0.0.0/8', '::1/128'] },
      // Per-occupant rate limit out of the way (the offered rate is the load tool's business); rooms big enough.
      muc: {
        messagesPerSecond: 1_000_000,
        maxMessageBytes: Math.max(65_536, o.bodyBytes + 4096),
        maxOccupants: Math.max(2000, o.occupants),
        defaultMaxUsers: Math.max(200, o.occupants),
      },
    },
    o.serverConfig,
  );
}

export async function openTarget(o: Options, log: (s: string) => void): Promise<Target> {
  if (o.spawn === null) {
    return {
      mode: 'external',
      endpoints: o.ports.map((port) => ({ host: o.host, port })),
      domain: o.domain,
      mucDomain: o.mucDomain,
      watched: o.serverPids.map((pid) => ({ pid, label: labelOf(pid) })),
      redisPort: o.redisPort,
      metricsPorts: o.metricsPorts,
      problems: () => [],
      dispose: async () => undefined,
    };
  }
  const skip = o.spawn === 'cluster' ? clusterSkipReason() : embeddedSkipReason();
  if (skip) throw new Error(`cannot --spawn ${o.spawn}: ${skip} (build the server with npx tsc -b services/hyphae)`);
  const config = spawnConfig(o);
  const t0 = performance.now();
  log(`starting ${o.spawn === 'cluster' ? `a cluster (${o.c2sNodes} c2s, ${o.rosterNodes} roster, ${o.mucNodes} muc, sm, nats-server, redis-server)` : 'hyphae all'} …`);
  // --cpu-prof: every spawned Hyphae process writes a V8 profile when it exits.
  const env = o.cpuProf ? { [NODE_ARGS]: `--cpu-prof --cpu-prof-dir=${resolve(o.cpuProf)}` } : undefined;
  const server: HyphaeServer =
    o.spawn === 'cluster'
      ? await startCluster({ domain: o.domain, c2sNodes: o.c2sNodes, rosterNodes: o.rosterNodes, mucNodes: o.mucNodes, config, ...(env ? { env } : {}) })
      : await startEmbedded({ domain: o.domain, config, ...(env ? { env } : {}) });
  log(`server ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const muc = o.serverConfig.muc;
  const sub = typeof muc === 'object' && muc !== null && !Array.isArray(muc) && typeof (muc as Record<string, unknown>).subdomain === 'string' ? String((muc as Record<string, unknown>).subdomain) : 'conference';
  return {
    mode: server.mode,
    endpoints: server.c2s.map((n) => ({ host: n.host, port: n.port })),
    domain: server.domain,
    mucDomain: `${sub}.${server.domain}`,
    watched: childProcesses(),
    redisPort: server.mode === 'cluster' ? (server as ClusterServer).redis.port : null,
    metricsPorts: hyphaeMetricsPorts(server),
    problems: () => server.logs().filter((l) => /"level":(40|50|60)\b/.test(l)),
    dispose: () => server.dispose(),
  };
}
