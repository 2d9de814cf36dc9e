import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The metrics every Hyphae service exposes. Names and label sets are part of
 * the operations contract (dashboards and alerts in deploy/ use them):
 * change them only together with those.
 */
export interface Metrics {
  /** This service's registry; serve it with startHttpServer. */
  registry: Registry;
  /** Open client connections by transport ('tcp', 'tls', 'websocket'). */
  connections: Gauge<'transport'>;
  /** Connections refused at accept, by listener ('c2s', 'c2s-tls', 's2s', 's2s-tls') and reason ('per-ip-limit'). */
  connectionsRefused: Counter<'listener' | 'reason'>;
  /** TLS handshakes that timed out or failed, by listener ('c2s-tls', 'c2s-starttls', 's2s-tls', 's2s-starttls') and reason ('timeout', 'error'). */
  tlsHandshakeFailures: Counter<'listener' | 'reason'>;
  /** SASL authentication attempts: result 'ok'|'failed', mechanism as negotiated. */
  logins: Counter<'result' | 'mechanism'>;
  /** Stanzas by direction ('in'|'out') and kind ('message'|'presence'|'iq'). */
  stanzas: Counter<'direction' | 'kind'>;
  /** Session registry lookups by the router: result 'hit' (served from its cache) or 'miss' (read from the store). */
  routeCache: Counter<'result'>;
  /** Time from receiving a stanza to handing it to its next hop, by path ('local', 'bus', 's2s', …). */
  routingLatency: Histogram<'path'>;
  /** Bus operation latency by op ('publish', 'request', …). */
  busLatency: Histogram<'op'>;
  /** Store (Redis / embedded) operation latency by op. */
  storeLatency: Histogram<'op'>;
  /** Bound sessions on this node. */
  sessions: Gauge;
  /** Sessions in the whole registry (reported by the sm that reaps). */
  registrySessions: Gauge;
  /** Items waiting in a named queue (mailboxes, write batches, …). */
  queueDepth: Gauge<'queue'>;
  /**
   * Work not done because of overload, by queue ('roster-mailbox', …) and
   * reason: 'full' (refused: the queue was at its bound; the sender retries
   * or answers a wait error), 'expired' (not run: its sender had stopped
   * waiting before its turn came).
   */
  overloadShed: Counter<'queue' | 'reason'>;
  /** Stream errors sent, by condition (RFC 6120 §4.9.3). */
  streamErrors: Counter<'condition'>;
  /** Stanza errors sent, by condition (RFC 6120 §8.3.3). */
  stanzaErrors: Counter<'condition'>;
  /** XEP-0077 registrations by result ('ok', 'conflict', 'rate-limited', …). */
  registrations: Counter<'result'>;
  /** c2s nodes currently alive according to the heartbeats. */
  nodesAlive: Gauge;
  /** Sessions removed because their node stopped heartbeating. */
  reapedSessions: Counter;
  /** 1 while connected to the bus, else 0. */
  busConnected: Gauge;
  /** 1 while connected to the store, else 0. */
  storeConnected: Gauge;
  /** Losses of the store's live state (a new epoch: Redis restarted empty or flushed) this process noticed. */
  storeResets: Counter;
  /** What this process wrote back after such a loss, by kind ('sessions', 'rooms'). */
  reRecorded: Counter<'kind'>;
  /** Shards of a sharded actor kind ('roster', 'muc') this instance owns. */
  shardsOwned: Gauge<'group'>;
  /** MUC rooms held in memory by this instance (those of its shards in use). */
  mucRooms: Gauge;
  /** Occupants of the rooms this instance holds. */
  mucOccupants: Gauge;
  /** XEP-0065 proxy: streams (connections paired by their DST.ADDR hash, pending or relaying) this instance holds. */
  proxyStreams: Gauge;
  /** XEP-0065 proxy: bytes relayed, by direction ('to-target', 'to-requester'). */
  proxyBytes: Counter<'direction'>;
  /** XEP-0065 proxy: connections, activations and streams refused or cut short, by reason. */
  proxyRefused: Counter<'reason'>;
  /** Federation: open server-to-server streams, by direction ('in', 'out') and remote domain. */
  s2sStreams: Gauge<'direction' | 'remote'>;
  /** Federation: stream pairs authenticated, by direction and method ('external', 'dialback', 'dialback-tls'). */
  s2sAuth: Counter<'direction' | 'method'>;
  /** Federation: failures by direction and reason (dns, connect, tls, auth, timeout, invalid-from, …). */
  s2sFailures: Counter<'direction' | 'reason'>;
  /** Federation: stanzas bounced by the s2s service, by condition. */
  s2sBounced: Counter<'condition'>;
  /**
   * Promise rejections nobody handled and exceptions nobody caught, by kind
   * ('rejection', 'exception'): each is a defect (DESIGN.md invariant 7);
   * the process logs it and goes on (process-guards.ts). Alert on any increase.
   */
  unhandledErrors: Counter<'kind'>;
}

export interface MetricsOptions {
  service: string;
  node: string;
  /**
   * Register Node.js process metrics (CPU, memory, event loop lag, GC) in
   * this registry; default true. Tests that create many registries may turn
   * it off: each collection sets up its own event-loop and GC observers.
   */
  defaultMetrics?: boolean;
}

/**
 * Latency buckets from 100 µs to 1 s. In-process routing is tens of
 * microseconds, a bus hop ~0.1–1 ms, a Redis round trip ~0.2–2 ms, and
 * anything near a second is already an incident, so resolution is spent below 10 ms.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/**
 * A fresh registry with this service's metrics. Never the prom-client global
 * registry: several services share one process in embedded mode (each gets
 * its own registry with its own `service` label) and tests create many.
 */
export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service, node: opts.node });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const buckets = [...LATENCY_BUCKETS];
  return {
    registry,
    connections: new Gauge({
      name: 'hyphae_c2s_connections',
      help: 'Open client connections',
      labelNames: ['transport'] as const,
      registers,
    }),
    connectionsRefused: new Counter({
      name: 'hyphae_connections_refused_total',
      help: 'Connections refused at accept, by listener and reason',
      labelNames: ['listener', 'reason'] as const,
      registers,
    }),
    tlsHandshakeFailures: new Counter({
      name: 'hyphae_tls_handshake_failures_total',
      help: 'TLS handshakes that timed out or failed, by listener and reason',
      labelNames: ['listener', 'reason'] as const,
      registers,
    }),
    logins: new Counter({
      name: 'hyphae_logins_total',
      help: 'SASL authentication attempts',
      labelNames: ['result', 'mechanism'] as const,
      registers,
    }),
    stanzas: new Counter({
      name: 'hyphae_stanzas_total',
      help: 'Stanzas received and sent',
      labelNames: ['direction', 'kind'] as const,
      registers,
    }),
    routeCache: new Counter({
      name: 'hyphae_route_cache_lookups_total',
      help: 'Session registry lookups by the router: served from its cache (hit) or read from the store (miss)',
      labelNames: ['result'] as const,
      registers,
    }),
    routingLatency: new Histogram({
      name: 'hyphae_routing_latency_seconds',
      help: 'Time from receiving a stanza to handing it to its next hop',
      labelNames: ['path'] as const,
      buckets,
      registers,
    }),
    busLatency: new Histogram({
      name: 'hyphae_bus_latency_seconds',
      help: 'Bus operation latency',
      labelNames: ['op'] as const,
      buckets,
      registers,
    }),
    storeLatency: new Histogram({
      name: 'hyphae_store_latency_seconds',
      help: 'Store operation latency',
      labelNames: ['op'] as const,
      buckets,
      registers,
    }),
    sessions: new Gauge({ name: 'hyphae_sessions', help: 'Bound sessions on this node', registers }),
    registrySessions: new Gauge({ name: 'hyphae_registry_sessions', help: 'Sessions in the whole registry (from the sm that reaps)', registers }),
    queueDepth: new Gauge({
      name: 'hyphae_queue_depth',
      help: 'Items waiting in a queue',
      labelNames: ['queue'] as const,
      registers,
    }),
    overloadShed: new Counter({
      name: 'hyphae_overload_shed_total',
      help: 'Work not done because of overload, by queue and reason (full: refused at the bound; expired: its sender had stopped waiting)',
      labelNames: ['queue', 'reason'] as const,
      registers,
    }),
    streamErrors: new Counter({
      name: 'hyphae_stream_errors_total',
      help: 'Stream errors sent, by condition (RFC 6120 4.9.3)',
      labelNames: ['condition'] as const,
      registers,
    }),
    stanzaErrors: new Counter({
      name: 'hyphae_stanza_errors_total',
      help: 'Stanza errors sent, by condition (RFC 6120 8.3.3)',
      labelNames: ['condition'] as const,
      registers,
    }),
    registrations: new Counter({
      name: 'hyphae_registrations_total',
      help: 'In-band registrations (XEP-0077), by result',
      labelNames: ['result'] as const,
      registers,
    }),
    nodesAlive: new Gauge({ name: 'hyphae_nodes_alive', help: 'Connection-manager nodes alive per heartbeats', registers }),
    reapedSessions: new Counter({
      name: 'hyphae_reaped_sessions_total',
      help: 'Sessions removed because their node died',
      registers,
    }),
    busConnected: new Gauge({ name: 'hyphae_bus_connected', help: '1 while connected to the bus', registers }),
    storeConnected: new Gauge({ name: 'hyphae_store_connected', help: '1 while connected to the store', registers }),
    storeResets: new Counter({ name: 'hyphae_store_resets_total', help: "Losses of the store's live state (Redis restarted empty or flushed) this process noticed", registers }),
    reRecorded: new Counter({
      name: 'hyphae_rerecorded_total',
      help: 'Live state written back after a loss of the store, by kind',
      labelNames: ['kind'] as const,
      registers,
    }),
    shardsOwned: new Gauge({ name: 'hyphae_shards_owned', help: 'Actor shards this instance owns', labelNames: ['group'] as const, registers }),
    mucRooms: new Gauge({ name: 'hyphae_muc_rooms', help: 'MUC rooms held in memory by this instance', registers }),
    mucOccupants: new Gauge({ name: 'hyphae_muc_occupants', help: 'Occupants of the MUC rooms this instance holds', registers }),
    proxyStreams: new Gauge({ name: 'hyphae_proxy65_streams', help: 'XEP-0065 streams (pending or relaying) this proxy instance holds', registers }),
    proxyBytes: new Counter({
      name: 'hyphae_proxy65_bytes_total',
      help: 'Bytes relayed by the XEP-0065 proxy, by direction',
      labelNames: ['direction'] as const,
      registers,
    }),
    proxyRefused: new Counter({
      name: 'hyphae_proxy65_refused_total',
      help: 'XEP-0065 proxy connections, activations and streams refused or cut short, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    s2sStreams: new Gauge({
      name: 'hyphae_s2s_streams',
      help: 'Open server-to-server streams, by direction and remote domain',
      labelNames: ['direction', 'remote'] as const,
      registers,
    }),
    s2sAuth: new Counter({
      name: 'hyphae_s2s_auth_total',
      help: 'Server-to-server stream pairs authenticated, by direction and method',
      labelNames: ['direction', 'method'] as const,
      registers,
    }),
    s2sFailures: new Counter({
      name: 'hyphae_s2s_failures_total',
      help: 'Server-to-server failures, by direction and reason',
      labelNames: ['direction', 'reason'] as const,
      registers,
    }),
    s2sBounced: new Counter({
      name: 'hyphae_s2s_bounced_total',
      help: 'Stanzas the s2s service bounced to their senders, by error condition',
      labelNames: ['condition'] as const,
      registers,
    }),
    unhandledErrors: new Counter({
      name: 'hyphae_unhandled_errors_total',
      help: 'Unhandled promise rejections and uncaught exceptions (defects), by kind',
      labelNames: ['kind'] as const,
      registers,
    }),
  };
}

/** Label values for a metric with label names L. */
export type Labels<L extends string> = Partial<Record<L, string | number>>;

/**
 * Run `fn` and observe its duration in `h` with `labels`, whether it
 * resolves or rejects (a slow failure is still latency).
 */
export async function timed<T, L extends string = string>(
  h: Histogram<L>,
  labels: Labels<L>,
  fn: () => Promise<T>,
): Promise<T> {
  const end = h.startTimer(labels);
  try {
    return await fn();
  } finally {
    end();
  }
}
