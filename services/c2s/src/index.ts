/**
 * @hyphae/c2s — the client connection manager. Accepts client streams on the
 * STARTTLS port and the direct-TLS port (XEP-0368), authenticates and binds
 * them, stamps and routes what they send, and writes to them what the bus
 * delivers to `xmpp.c2s.<node>`.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { HyphaeConfig } from '@hyphae/config';
import type { Bus, BusMessage, Subscription } from '@hyphae/bus';
import { EpochWatch, type Stores } from '@hyphae/store';
import type { Logger, Metrics } from '@hyphae/observability';
import { StreamError } from '@hyphae/stanza';
import { Router, H, UserActors, componentsFor, remoteFor, c2sSubject } from '@hyphae/router';
import type { ModuleRegistry } from '@hyphae/module-api';
import { tlsPolicyOptions } from '@hyphae/pki';
import { ClientStream } from './stream.js';
import { C2sRuntime } from './runtime.js';
import { TcpTransport } from './tcp-transport.js';
import type { TlsCredentials } from './tls.js';

export { loadTlsCredentials, TlsSetupError } from './tls.js';
export type { TlsCredentials } from './tls.js';
export type { ClientTransport, TransportEvents, FramingError } from './transport.js';

export interface C2sDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  tls: TlsCredentials;
  /** The process's modules (built once at the composition root, shared with every service). */
  registry: ModuleRegistry;
}

export interface C2sService {
  readonly ports: { starttls: number; directTls: number | null };
  /** Number of bound sessions on this node. */
  sessionCount(): number;
  /** Stops accepting, ends every stream with `system-shutdown`, leaves the registry. */
  stop(): Promise<void>;
}

const EMPTY = new Uint8Array(0);
/** How long draining streams stay open after leaving the registry, for deliveries already in flight. */
const DRAIN_LINGER_MS = 250;

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startC2s(deps: C2sDeps): Promise<C2sService> {
  const { config, bus, stores, logger, metrics } = deps;
  const nodeId = config.nodeId;
  const log = logger.child({ component: 'c2s' });
  // The TLS policy (tls.minVersion, tls.ciphers) lives in the context: both ports use it.
  const secureContext = createSecureContext({ key: deps.tls.key, cert: deps.tls.cert, ...tlsPolicyOptions(config.tls) });

  const actors = new UserActors(bus, config.roster.shards);
  const components = componentsFor(config, bus);
  const { registry } = deps;
  const router = new Router({ domains: config.domains, nodeId, bus, stores, logger: log, metrics, registry, actors, components, remote: remoteFor(config, bus) });
  const rt = new C2sRuntime({ config, nodeId, bus, stores, router, registry, logger: log, metrics, secureContext, tlsKey: deps.tls.key, actors });
  router.setLocal({ deliver: (sid, data) => rt.sessions.get(sid)?.deliver(data) ?? false });

  // Deliveries and control messages for sessions on this node.
  const sub: Subscription = bus.subscribe(c2sSubject(nodeId), (msg: BusMessage) => {
    const sid = msg.headers[H.sid] ?? '';
    const conn = rt.sessions.get(sid);
    if (msg.headers[H.kind] === 'control') {
      if (conn && msg.headers[H.ctl] === 'close') conn.fail((msg.headers[H.cond] ?? 'undefined-condition') as 'conflict', msg.headers[H.text]);
      return;
    }
    const ok = conn?.deliver(msg.data) ?? false;
    msg.respond(EMPTY, { [H.ack]: ok ? 'ok' : 'gone' });
  });

  const limits = { maxStanzaBytes: config.c2s.maxStanzaBytes, maxDepth: config.c2s.maxDepth, maxAttributes: config.c2s.maxAttributes };
  const onHandshakeFailure = (reason: string, kind: 'tls' | 'starttls', err?: Error) => {
    metrics.tlsHandshakeFailures.inc({ listener: `c2s-${kind}`, reason });
    log.debug({ err, reason, kind }, 'TLS handshake failed');
  };
  // Both ports take the raw TCP connection: a connection counts against the
  // per-IP limit from accept, before any TLS handshake (which may never end).
  const accept = (socket: Socket, kind: 'tcp' | 'tls') => {
    const ip = socket.remoteAddress ?? 'unknown';
    const n = (rt.perIp.get(ip) ?? 0) + 1;
    if (n > config.c2s.maxConnectionsPerIp && kind === 'tls') {
      // No stream error without TLS, and a handshake is the costly part: close at once.
      metrics.connectionsRefused.inc({ listener: 'c2s-tls', reason: 'per-ip-limit' });
      socket.destroy();
      return;
    }
    const transport = new TcpTransport(socket, { kind, secureContext, limits, handshakeTimeoutMs: config.tls.handshakeTimeoutMs, onHandshakeFailure });
    rt.perIp.set(ip, n);
    metrics.connections.inc({ transport: kind });
    const conn = new ClientStream(rt, transport);
    rt.connections.add(conn);
    if (n > config.c2s.maxConnectionsPerIp) {
      metrics.connectionsRefused.inc({ listener: 'c2s', reason: 'per-ip-limit' });
      conn.fail('policy-violation', 'Too many connections from your address');
    }
  };

  const plain = createServer({ noDelay: true }, (s) => accept(s, 'tcp'));
  const direct = config.c2s.directTlsPort === null ? null : createServer({ noDelay: true }, (s) => accept(s, 'tls'));
  const starttlsPort = await listen(plain, config.c2s.port, config.c2s.host);
  const directPort = direct ? await listen(direct, config.c2s.directTlsPort ?? 0, config.c2s.host) : null;

  // Heartbeats keep this node's sessions in the registry (sm reaps a silent
  // node) and notice a registry that lost them: a new store epoch (Redis
  // came back without its data, or was flushed) even when no beat failed.
  const epochs = new EpochWatch(stores.coordination);
  let lastBeat = Date.now();
  /** Beats left on which to re-record every session (after an outage). */
  let rebindBeats = 0;
  let beating = false;
  const beat = async () => {
    if (beating) return; // a slow store must not stack beats
    beating = true;
    try {
      await stores.sessions.heartbeat(nodeId, config.sm.nodeTtlMs);
      const gap = Date.now() - lastBeat;
      lastBeat = Date.now();
      if (gap > config.sm.nodeTtlMs) rebindBeats = 2;
      const { epoch, reset } = await epochs.check();
      if (reset) {
        metrics.storeResets.inc();
        rebindBeats = 2;
      }
      if (rebindBeats > 0) {
        // The registry was out of reach or lost: sm may have reaped us, or a
        // restarted Redis may have lost everything. Put our live sessions back
        // — twice, since a purge decided just before this beat may land just
        // after it (re-recording is idempotent).
        rebindBeats--;
        const started = performance.now();
        const n = await rt.reRecordSessions();
        const ms = Math.round(performance.now() - started);
        if (reset) log.warn({ sessions: n, ms, epoch: epoch.id, epochAgeMs: epoch.ageMs }, `registry reset detected; re-recorded ${n} sessions in ${ms} ms`);
        else log.warn({ gapMs: gap, sessions: n, ms }, `registry is back; re-recorded ${n} sessions in ${ms} ms`);
      }
      await rt.finishInterruptedEnds();
    } catch (err) {
      rebindBeats = 2;
      log.warn({ err }, 'heartbeat failed');
    } finally {
      beating = false;
    }
  };
  await beat();
  const timer = setInterval(() => void beat(), config.sm.heartbeatIntervalMs);
  timer.unref();
  // What clients have not read yet, all connections together (each is bounded by c2s.maxWriteBufferBytes).
  const unread = metrics.queueDepth.labels({ queue: 'c2s-write-bytes' });
  const sampler = setInterval(() => {
    let bytes = 0;
    for (const c of rt.connections) bytes += c.transport.backlog;
    unread.set(bytes);
  }, 5000);
  sampler.unref();

  log.info({ starttlsPort, directTlsPort: directPort, domains: config.domains }, 'c2s listening');

  return {
    ports: { starttls: starttlsPort, directTls: directPort },
    sessionCount: () => rt.sessions.size,
    async stop() {
      // Drain (DESIGN.md Operations): no new connections; readiness is already
      // false (the process turns it off first); after the grace period the
      // streams close — each session leaving the registry before its stream
      // error, so nothing addressed to it is lost (offline storage takes it).
      plain.close();
      direct?.close();
      const grace = config.c2s.drainGraceMs;
      if (grace > 0 && rt.connections.size > 0) {
        log.info({ connections: rt.connections.size, graceMs: grace }, 'draining: streams close after the grace period');
        await new Promise((r) => setTimeout(r, grace));
      }
      const err = config.c2s.seeOtherHost
        ? new StreamError('see-other-host', 'This server is shutting down; reconnect there', { seeOtherHost: config.c2s.seeOtherHost })
        : new StreamError('system-shutdown', 'The server is shutting down');
      const conns = [...rt.connections];
      // In batches, so ten thousand unbinds do not all hit the registry at once.
      for (let i = 0; i < conns.length; i += 200) {
        await Promise.all(conns.slice(i, i + 200).map((c) => c.leaveRegistry().catch((e: unknown) => {
          log.warn({ err: e }, 'a draining session could not leave the registry');
        })));
      }
      // Stanzas routed before the sessions left the registry are still on
      // their way (a bus hop): the streams take them before closing.
      await new Promise((r) => setTimeout(r, DRAIN_LINGER_MS));
      for (const c of conns) c.failWith(err);
      // Let the sockets flush and the unbinds reach the registry before we go.
      const deadline = Date.now() + 3000;
      while (rt.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      clearInterval(timer);
      clearInterval(sampler);
      router.close();
      sub.unsubscribe();
      try {
        await stores.sessions.purgeNode(nodeId);
      } catch (err) {
        log.warn({ err }, 'could not leave the registry cleanly');
      }
    },
  };
}
