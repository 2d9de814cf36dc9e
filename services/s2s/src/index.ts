/**
 * @hyphae/s2s — the federation gateway (RFC 6120 server-to-server).
 *
 * Outbound: the actors of remote domains (`xmpp.s2s.<shard>.<remote>`,
 * sharded with leases like every stateful service) hold one stream per pair
 * (local domain, remote domain); a shard's new owner opens its own streams.
 * Inbound: listeners on the s2s port (STARTTLS) and the direct-TLS port
 * (XEP-0368); any instance takes any inbound stream.
 */
import { createServer as createNetServer, type Server, type Socket, type AddressInfo } from 'node:net';
import type { HyphaeConfig } from '@hyphae/config';
import type { Bus, BusMessage } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import type { Logger, Metrics } from '@hyphae/observability';
import { startShardedService } from '@hyphae/actor';
import { decodeToken } from '@hyphae/jid';
import {
  Router, UserActors, componentsFor, remoteFor,
  S2S_SUBJECT_PREFIX, S2S_HEADERS, type S2sResult,
} from '@hyphae/router';
import type { ModuleRegistry } from '@hyphae/module-api';
import { Trust } from './trust.js';
import { dialbackSecretOf, resolverFor, type S2sContext } from './context.js';
import { OutboundStream, bounce } from './outbound.js';
import { InboundStream, InboundCounts } from './inbound.js';

export { Trust, chainTrusted } from './trust.js';
export type { S2sContext } from './context.js';

export interface S2sDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  tls: { cert: string; key: string };
  version: string;
  /** The process's modules: stanzas from remote servers get the same treatment as local ones. */
  registry: ModuleRegistry;
}

export interface S2sService {
  /** Ports listened on (after binding port 0). */
  ports: { port: number; directTlsPort: number | null };
  /** Shards of outbound streams this instance owns. */
  owned(): number[];
  /** Outbound streams open or being opened, as `local remote` pairs. */
  outbound(): string[];
  stop(): Promise<void>;
}

const EMPTY = new Uint8Array(0);

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startS2s(deps: S2sDeps): Promise<S2sService> {
  const { config, bus, stores, metrics } = deps;
  const s2s = config.s2s;
  const logger = deps.logger.child({ component: 's2s' });
  const trust = await Trust.load(s2s, deps.tls, config.tls);
  const actors = new UserActors(bus, config.roster.shards);
  const router = new Router({
    domains: config.domains, nodeId: config.nodeId, bus, stores, logger, metrics, registry: deps.registry, actors,
    components: componentsFor(config, bus), remote: remoteFor(config, bus),
  });
  const blocked = new Set(s2s.blocklist);
  const ctx: S2sContext = {
    config, s2s, bus, stores, logger, metrics, router, actors, trust,
    dialbackSecret: dialbackSecretOf(s2s, deps.tls.key),
    limits: { maxStanzaBytes: config.c2s.maxStanzaBytes, maxDepth: config.c2s.maxDepth, maxAttributes: config.c2s.maxAttributes },
    resolve: resolverFor(s2s),
    served: (d) => router.isServed(d),
    blocked: (d) => blocked.has(d),
  };

  // --- outbound: one actor per remote domain ----------------------------------
  const streams = new Map<string, OutboundStream>();
  const handle = (msg: BusMessage): void => {
    const respond = (r: S2sResult) => msg.respond(EMPTY, { [S2S_HEADERS.result]: r });
    const remote = decodeToken(msg.subject.split('.')[3] ?? '');
    const local = msg.headers[S2S_HEADERS.local] ?? '';
    if (!ctx.served(local) || ctx.served(remote) || remote === '') {
      // Not ours to send (a relay attempt, or a loop): nothing leaves.
      respond('bounced');
      return;
    }
    if (ctx.blocked(remote)) {
      void bounce(ctx, msg.data, 'not-allowed', 'Federation with this domain is not allowed').finally(() => respond('bounced'));
      return;
    }
    const key = `${local} ${remote}`;
    let stream = streams.get(key);
    if (!stream || stream.isClosed) {
      stream = new OutboundStream(ctx, local, remote, (s) => {
        if (streams.get(key) === s) streams.delete(key);
      });
      streams.set(key, stream);
    }
    stream.enqueue({ data: msg.data, respond });
  };
  const service = await startShardedService({
    group: 's2s',
    instanceId: config.nodeId,
    bus,
    coordination: stores.coordination,
    subjectPrefix: S2S_SUBJECT_PREFIX,
    shardCount: s2s.shards,
    leaseTtlMs: s2s.leaseTtlMs,
    renewIntervalMs: Math.max(100, Math.floor(s2s.leaseTtlMs / 5)),
    // One mailbox per remote domain: the subject names it.
    keyOf: (m) => m.subject,
    logger,
    handler: async (m) => {
      try {
        handle(m);
      } catch (err) {
        logger.error({ err, subject: m.subject }, 's2s actor failed');
        m.respond(EMPTY, { [S2S_HEADERS.result]: 'bounced' });
      }
    },
  });
  metrics.shardsOwned.set({ group: 's2s' }, service.owned().length);
  service.onChange((owned) => metrics.shardsOwned.set({ group: 's2s' }, owned.length));

  // --- inbound ------------------------------------------------------------------
  const counts = new InboundCounts();
  const sockets = new Set<Socket>();
  const perIp = new Map<string, number>();
  // Both ports take the raw TCP connection (direct TLS is wrapped by the
  // stream): a connection counts against the per-IP limit from accept, before
  // any TLS handshake, which may never end.
  const accept = (socket: Socket, transport: 'tcp' | 'tls') => {
    const ip = socket.remoteAddress ?? 'unknown';
    const n = (perIp.get(ip) ?? 0) + 1;
    if (n > s2s.maxConnectionsPerIp && transport === 'tls') {
      // No stream error without TLS, and a handshake is the costly part: close at once.
      metrics.connectionsRefused.inc({ listener: 's2s-tls', reason: 'per-ip-limit' });
      socket.destroy();
      return;
    }
    perIp.set(ip, n);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    try {
      const stream = new InboundStream(ctx, socket, counts, transport);
      if (n > s2s.maxConnectionsPerIp) {
        metrics.connectionsRefused.inc({ listener: 's2s', reason: 'per-ip-limit' });
        stream.refuse('policy-violation', 'Too many connections from your address');
      }
    } catch (err) {
      logger.warn({ err }, 's2s: could not accept a stream');
      socket.destroy();
    }
  };
  const plain = createNetServer({ noDelay: true }, (socket) => accept(socket, 'tcp'));
  const port = await listen(plain, s2s.host, s2s.port);
  let direct: Server | null = null;
  let directTlsPort: number | null = null;
  if (s2s.directTlsPort !== null) {
    direct = createNetServer({ noDelay: true }, (socket) => accept(socket, 'tls'));
    directTlsPort = await listen(direct, s2s.host, s2s.directTlsPort);
  }
  logger.info({ port, directTlsPort, shards: s2s.shards, dialback: s2s.dialback, requireTls: s2s.requireTls }, 's2s service started');

  return {
    ports: { port, directTlsPort },
    owned: () => service.owned(),
    outbound: () => [...streams.keys()],
    async stop() {
      plain.close();
      direct?.close();
      await service.stop();
      for (const s of streams.values()) s.close('shutdown');
      streams.clear();
      for (const s of sockets) s.destroy();
      router.close();
    },
  };
}
