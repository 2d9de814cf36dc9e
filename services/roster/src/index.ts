/**
 * @hyphae/roster — the user actors: one mailbox per bare JID, sharded across
 * roster instances (`xmpp.user.<shard>.<domain>.<local>`), in which the
 * modules' user operations run in order (the roster module's roster,
 * subscriptions and presence; the offline module's storage; blocking,
 * vCard, …). All state lives in the store, so a shard moves to another
 * instance without loss.
 */
import { JID, decodeToken } from '@hyphae/jid';
import type { Bus, BusMessage } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import type { HyphaeConfig } from '@hyphae/config';
import type { Logger, Metrics } from '@hyphae/observability';
import { startShardedService } from '@hyphae/actor';
import type { ModuleRegistry } from '@hyphae/module-api';
import { Router, UserActors, componentsFor, remoteFor, USER_SUBJECT_PREFIX, OP_HEADER, RESULT_HEADER } from '@hyphae/router';

export interface RosterDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  /** The process's modules: every user-actor operation is one of theirs. */
  registry: ModuleRegistry;
}

export interface RosterService {
  /** Shards this instance owns now. */
  owned(): number[];
  stop(): Promise<void>;
}

const EMPTY = new Uint8Array(0);
const dec = new TextDecoder();

/** The user a message is for, from its subject `xmpp.user.<shard>.<domain>.<local>`. */
function userOf(subject: string): JID {
  const parts = subject.split('.');
  return new JID(decodeToken(parts[4] ?? ''), decodeToken(parts[3] ?? ''));
}

export async function startRoster(deps: RosterDeps): Promise<RosterService> {
  const { config, bus, stores, metrics } = deps;
  const logger = deps.logger.child({ component: 'roster' });
  const actors = new UserActors(bus, config.roster.shards);
  const router = new Router({ domains: config.domains, nodeId: config.nodeId, bus, stores, logger, metrics, registry: deps.registry, actors, components: componentsFor(config, bus), remote: remoteFor(config, bus) });

  // Every operation is a module's (roster, offline, blocking, vcard, …), in the user's mailbox.
  const handle = async (msg: BusMessage): Promise<string> => {
    const op = msg.headers[OP_HEADER];
    const user = userOf(msg.subject);
    if (logger.isLevelEnabled('debug')) logger.debug({ op, user: user.toString() }, 'user actor operation');
    const moduleOp = op === undefined ? undefined : deps.registry.userOp(op);
    if (moduleOp) return moduleOp({ user, data: msg.data, headers: msg.headers, routing: router });
    logger.warn({ op, subject: msg.subject }, 'unknown user actor operation');
    return 'ok';
  };

  const shed = metrics.overloadShed;
  const service = await startShardedService({
    group: 'roster',
    instanceId: config.nodeId,
    bus,
    coordination: stores.coordination,
    subjectPrefix: USER_SUBJECT_PREFIX,
    shardCount: config.roster.shards,
    leaseTtlMs: config.roster.leaseTtlMs,
    renewIntervalMs: Math.max(100, Math.floor(config.roster.leaseTtlMs / 5)),
    // One mailbox per user: the subject names the user.
    keyOf: (msg) => msg.subject,
    logger,
    // Bounded: past it, senders are told 'busy' and retry, then answer a wait error.
    maxQueued: config.roster.maxQueued,
    onShed: (reason) => shed.inc({ queue: 'roster-mailbox', reason: reason === 'busy' ? 'full' : reason }),
    handler: async (msg) => {
      let result: string;
      try {
        result = await handle(msg);
      } catch (err) {
        logger.error({ err, subject: msg.subject, op: msg.headers[OP_HEADER] }, 'user actor failed');
        result = 'error';
      }
      msg.respond(EMPTY, { [RESULT_HEADER]: result });
    },
  });
  metrics.shardsOwned.set({ group: 'roster' }, service.owned().length);
  service.onChange((owned) => metrics.shardsOwned.set({ group: 'roster' }, owned.length));
  // Sampled (a gauge per message would cost more than the mailbox itself).
  const depth = metrics.queueDepth.labels({ queue: 'roster-mailbox' });
  const sampler = setInterval(() => depth.set(service.queued()), 1000);
  sampler.unref();
  logger.info({ shards: config.roster.shards }, 'roster service started');
  return {
    owned: () => service.owned(),
    async stop() {
      clearInterval(sampler);
      await service.stop();
      router.close();
    },
  };
}
