/**
 * @hyphae/roster — per bare JID: the roster, subscription states, presence
 * fan-out and offline messages (RFC 6121, XEP-0160), as user actors sharded
 * across roster instances (`xmpp.user.<shard>.<domain>.<local>`). All state
 * lives in the store, so a shard moves to another instance without loss.
 */
import { parse, type Element } from 'ltx';
import { JID, decodeToken, parseJid, tryParseJid } from '@hyphae/jid';
import type { Bus, BusMessage } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import type { HyphaeConfig } from '@hyphae/config';
import type { Logger, Metrics } from '@hyphae/observability';
import { startShardedService, KeyedMailbox } from '@hyphae/actor';
import type { ModuleRegistry } from '@hyphae/module-api';
import {
  Router, UserActors, componentsFor, remoteFor, USER_SUBJECT_PREFIX, OP_HEADER, RESULT_HEADER, SID_HEADER,
  type UserOp, type UserResult, type SessionEndedEvent,
} from '@hyphae/router';
import { presenceOut, stampDelay, unavailableToDirected } from './presence.js';
import { answerProbe, broadcast } from './broadcast.js';
import { rosterIq } from './roster-query.js';
import { inboundSubscription, SUBSCRIPTION_TYPES, type SubscriptionType } from './subscriptions.js';
import type { RosterContext } from './context.js';
import { Element as El } from 'ltx';

export type { RosterContext } from './context.js';

export interface RosterDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  /** The process's modules: their user-actor operations, presence and offline hooks. */
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
  const outbox = new KeyedMailbox();
  const ctx: RosterContext = { config, stores, router, actors, logger, registry: deps.registry, domains: new Set(config.domains), outbox };

  const handle = async (msg: BusMessage): Promise<UserResult | string> => {
    const op = msg.headers[OP_HEADER];
    const user = userOf(msg.subject);
    if (logger.isLevelEnabled('debug')) logger.debug({ op, user: user.toString() }, 'user actor operation');
    switch (op) {
      case 'roster-iq': {
        const iq = parse(dec.decode(msg.data));
        await rosterIq(ctx, iq, parseJid(String(iq.attrs.from)));
        return 'ok';
      }
      case 'presence-out': {
        const p = parse(dec.decode(msg.data));
        await presenceOut(ctx, p, parseJid(String(p.attrs.from)), msg.headers[SID_HEADER] ?? '');
        return 'ok';
      }
      case 'presence-in': {
        const p = parse(dec.decode(msg.data));
        const from = tryParseJid(String(p.attrs.from ?? ''));
        const type = p.attrs.type as string | undefined;
        if (from && type && SUBSCRIPTION_TYPES.has(type)) await inboundSubscription(ctx, p, user, from.bare(), type as SubscriptionType);
        else if (from && type === 'probe') await answerProbe(ctx, user.toBareString(), from.toBareString());
        return 'ok';
      }
      case 'session-end':
        await sessionEnded(ctx, JSON.parse(dec.decode(msg.data)) as SessionEndedEvent);
        return 'ok';
      case 'offline':
        return offline(ctx, user, parse(dec.decode(msg.data)));
      case 'account-deleted':
        await accountDeleted(ctx, user);
        return 'ok';
      default: {
        // An operation a module declares (ModuleInstance.userOps), in this user's mailbox like the rest.
        const moduleOp = op === undefined ? undefined : deps.registry.userOp(op);
        if (moduleOp) return moduleOp({ user, data: msg.data, headers: msg.headers, routing: router });
        logger.warn({ op, subject: msg.subject }, 'unknown user actor operation');
        return 'ok';
      }
    }
  };

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
    handler: async (msg) => {
      let result: UserResult | string;
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
  // Work waiting for other users' actors (sampled, not counted per message).
  const sampler = setInterval(() => metrics.queueDepth.set({ queue: 'roster-outbox' }, outbox.pending()), 5000);
  sampler.unref();
  logger.info({ shards: config.roster.shards }, 'roster service started');
  return {
    owned: () => service.owned(),
    async stop() {
      clearInterval(sampler);
      await service.stop();
      await outbox.drain();
      router.close();
    },
  };
}

/** A session ended (logout, broken connection, dead node): unavailable to everyone who saw it (§4.5.2, §4.6.3). */
async function sessionEnded(ctx: RosterContext, ev: SessionEndedEvent): Promise<void> {
  const full = parseJid(ev.bare).withResource(ev.resource);
  if (ev.available) {
    const p = new El('presence', { type: 'unavailable', from: full.toString() });
    await broadcast(ctx, ev.bare, p);
    await ctx.router.route(p, full); // the user's other resources
  }
  await unavailableToDirected(ctx, full);
}

/**
 * XEP-0077 cancellation: in the user's own mailbox, so nothing interleaves —
 * contacts and directed-presence recipients get unavailable from each live
 * session, then the roster, pending requests and offline messages go. The
 * sessions' own session-end (when c2s closes them) then finds nobody to tell.
 */
async function accountDeleted(ctx: RosterContext, user: JID): Promise<void> {
  const bare = user.toBareString();
  for (const s of await ctx.stores.sessions.list(bare)) {
    await sessionEnded(ctx, { bare, resource: s.resource, sessionId: s.sessionId, available: s.available, reason: 'account deleted' });
  }
  await Promise.all([ctx.stores.rosters.deleteAll(bare), ctx.stores.offline.deleteAll(bare), ctx.stores.presence.deleteAll(bare)]);
  // Every module forgets what it kept for the account (blocklist, vCard, private storage, …).
  await ctx.registry.lifecycle('account/deleted', { user: user.bare() }, (err) => ctx.logger.warn({ err, user: bare }, 'a module could not forget a deleted account'));
}

/** XEP-0160: keep a message for a user with no available resource. */
async function offline(ctx: RosterContext, user: JID, stanza: Element): Promise<UserResult> {
  if (!(await ctx.stores.accounts.get(user.domain, user.local))) return 'gone';
  const bare = user.toBareString();
  // A resource may have become available since the router looked.
  const sessions = await ctx.stores.sessions.list(bare);
  if (sessions.some((s) => s.available && s.priority >= 0)) {
    stanza.attrs.to = bare;
    await ctx.router.send(stanza);
    return 'delivered';
  }
  // Modules may refuse or drop it first (XEP-0191: from a blocked contact); they answer the sender themselves.
  if (ctx.registry.has('offline/store')) {
    const from = tryParseJid(String(stanza.attrs.from ?? ''));
    if ((await ctx.registry.run('offline/store', { stanza, user, from, routing: ctx.router })) === 'stop') return 'stored';
  }
  const cap = ctx.config.roster.offlineCap;
  if (cap === 0) return 'full';
  stampDelay(stanza, user.domain, new Date());
  return (await ctx.stores.offline.push(bare, stanza.toString(), cap)) ? 'stored' : 'full';
}

