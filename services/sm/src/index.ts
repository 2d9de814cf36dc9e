/**
 * @hyphae/sm — the session registry's keeper. c2s nodes write their sessions
 * and heartbeats to the store directly (one round trip on the login path);
 * this service watches the heartbeats and, when a node falls silent (crash,
 * kill -9, partition), removes its sessions and announces them as ended.
 *
 * Several sm instances may run: a lease in the store elects the one that
 * reaps, and purging is idempotent, so a handover loses nothing.
 */
import type { Bus } from '@hyphae/bus';
import { EpochWatch, type Stores } from '@hyphae/store';
import type { Logger, Metrics } from '@hyphae/observability';
import type { HyphaeConfig } from '@hyphae/config';
import { EVENTS, encodeEvent, notifySessionEnded, UserActors, type SessionEvent } from '@hyphae/router';

export interface SmDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  /** Clock, for tests. */
  now?: () => number;
}

export interface SmService {
  /** Runs one reaping pass now (tests; normally periodic). */
  sweep(): Promise<number>;
  isLeader(): boolean;
  stop(): Promise<void>;
}

const LEASE = 'sm-reaper';

export async function startSm(deps: SmDeps): Promise<SmService> {
  const { config, bus, stores, metrics } = deps;
  const log = deps.logger.child({ component: 'sm' });
  const now = deps.now ?? Date.now;
  const holder = config.nodeId;
  const actors = new UserActors(bus, config.roster.shards);
  let leader = false;
  let running = false;
  /**
   * No node can heartbeat while the store is out of reach, so expiries seen
   * right after an outage prove nothing: purge only once every live node has
   * had a full TTL to heartbeat again.
   */
  let graceUntil = 0;
  let storeFailed = false;
  /** A store that lost everything (a new epoch) has lost the registry: its nodes re-record it. */
  const epochs = new EpochWatch(stores.coordination);

  const sweep = async (): Promise<number> => {
    try {
      return await sweepOnce();
    } catch (err) {
      storeFailed = true;
      throw err;
    }
  };

  const sweepOnce = async (): Promise<number> => {
    // The lease, like every key, may have vanished with the store: taking it
    // again is the same call as renewing it.
    leader = await stores.sessions.lease(LEASE, holder, config.sm.nodeTtlMs);
    const { epoch, reset } = await epochs.check();
    if (reset) {
      metrics.storeResets.inc();
      storeFailed = true;
      log.warn({ epoch: epoch.id, epochAgeMs: epoch.ageMs, leader }, 'registry reset detected (the store lost its live state): c2s nodes re-record their sessions on their next heartbeat');
    }
    if (storeFailed) {
      // A purge decided on what was read before the loss could remove sessions just re-recorded.
      storeFailed = false;
      graceUntil = now() + config.sm.nodeTtlMs;
      log.info({ graceMs: config.sm.nodeTtlMs }, 'store reachable again; reaping resumes after a grace period');
    }
    if (!leader) return 0;
    const nodes = await stores.sessions.nodes();
    const t = now();
    metrics.nodesAlive.set(nodes.filter((n) => n.expiresAt > t).length);
    if (t < graceUntil) return 0;
    let reaped = 0;
    for (const n of nodes) {
      if (n.expiresAt > t) continue;
      const removed = await stores.sessions.purgeNode(n.node);
      reaped += removed.length;
      metrics.reapedSessions.inc(removed.length);
      log.warn({ deadNode: n.node, sessions: removed.length, silentMs: t - n.expiresAt + config.sm.nodeTtlMs }, 'node is gone; removed its sessions');
      bus.publish(EVENTS.nodeDown, encodeEvent({ node: n.node, sessions: removed.length }));
      for (const s of removed) {
        const ev: SessionEvent = { bare: s.bare, resource: s.resource, sessionId: s.sessionId, node: s.node, reason: 'node down' };
        bus.publish(EVENTS.sessionUnbound, encodeEvent(ev));
      }
      // Contacts of the dead node's users get unavailable (RFC 6121 §4.5.2),
      // without holding up the sweep.
      void Promise.all(removed.map((s) => notifySessionEnded(actors, {
        bare: s.bare, resource: s.resource, sessionId: s.sessionId, available: s.available, reason: 'node down',
      }, log)));
    }
    metrics.registrySessions.set(await stores.sessions.count());
    return reaped;
  };

  const tick = async () => {
    if (running) return; // a slow store must not stack sweeps
    running = true;
    try {
      await sweep();
    } catch (err) {
      log.warn({ err }, 'registry sweep failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), config.sm.heartbeatIntervalMs);
  timer.unref();
  void tick();
  log.info({ holder, ttlMs: config.sm.nodeTtlMs }, 'session registry keeper started');

  return {
    sweep,
    isLeader: () => leader,
    async stop() {
      clearInterval(timer);
      while (running) await new Promise((r) => setTimeout(r, 10));
    },
  };
}
