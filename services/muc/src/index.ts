/**
 * @hyphae/muc — XEP-0045 Multi-User Chat at `<muc.subdomain>.<domain>`.
 * Each room is an actor on `xmpp.muc.<shard>.<service>.<room>` (the service
 * itself is the actor with the empty room name), sharded across muc
 * instances by lease like the user actors. A room's state is cached while
 * its shard is owned and written through to the RoomStore, so the next
 * owner carries on with occupants, subject, history and configuration.
 */
import { parse } from 'ltx';
import { JID, decodeToken, tryParseJid } from '@hyphae/jid';
import type { Bus, BusMessage } from '@hyphae/bus';
import type { StoreEpoch, Stores } from '@hyphae/store';
import type { HyphaeConfig } from '@hyphae/config';
import type { Logger, Metrics } from '@hyphae/observability';
import { KeyedMailbox, actorSubject, shardOf, startShardedService, type ShardedService } from '@hyphae/actor';
import { MUC_SUBJECT_PREFIX, Router, UserActors, componentsFor, remoteFor, subdomainsOf } from '@hyphae/router';
import type { ModuleRegistry } from '@hyphae/module-api';
import { StanzaError } from '@hyphae/stanza';
import type { MucContext } from './context.js';
import { Room } from './room.js';
import { handlePresence, leave, closeIfEmpty } from './presence.js';
import { handleMessage } from './messages.js';
import { handleRoomIq, handleServiceIq } from './iq.js';
import { replyError } from './reply.js';

export interface MucDeps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  /** The process's modules (the room service's router treats stanzas like every other). */
  registry: ModuleRegistry;
}

export interface MucService {
  /** The service domains served. */
  domains: readonly string[];
  /** Shards this instance owns now. */
  owned(): number[];
  stop(): Promise<void>;
}

const EMPTY = new Uint8Array(0);
const dec = new TextDecoder();

/** The room (or service, local '') a message is for, from its subject `xmpp.muc.<shard>.<domain>.<room>`. */
function targetOf(subject: string): JID {
  const parts = subject.split('.');
  return new JID(decodeToken(parts[4] ?? ''), decodeToken(parts[3] ?? ''));
}

export async function startMuc(deps: MucDeps): Promise<MucService> {
  const { config, bus, stores, metrics } = deps;
  const logger = deps.logger.child({ component: 'muc' });
  const mucConfig = config.muc;
  const domains = subdomainsOf(config.domains, mucConfig.subdomain);
  const actors = new UserActors(bus, config.roster.shards);
  const router = new Router({ domains: config.domains, nodeId: config.nodeId, bus, stores, logger, metrics, registry: deps.registry, actors, components: componentsFor(config, bus), remote: remoteFor(config, bus) });
  const ctx: MucContext = {
    config, bus, stores, router, logger, metrics,
    limits: {
      maxOccupants: mucConfig.maxOccupants,
      defaultMaxUsers: mucConfig.defaultMaxUsers,
      maxHistory: mucConfig.maxHistory,
      defaultHistory: mucConfig.defaultHistory,
    },
    domains: new Set(config.domains),
    outbox: new KeyedMailbox(),
    now: () => Date.now(),
  };

  if (stores.kind === 'embedded') await dropTemporaryRooms(ctx, domains);

  /** Rooms of the shards this instance owns, loaded once per ownership. */
  const cache = new Map<string, Room>();
  /**
   * Rooms of shards that left this instance since the last coordination
   * round. After a handover the store has them; but a shard dropped because
   * its lease could not be renewed (the store was down) may come back from
   * a store that lost everything, and then these are the only copy.
   */
  const parked = new Map<string, Room>();

  /** Loads a room on first use after taking its shard: occupants whose session is gone are dropped. */
  const load = async (jid: JID): Promise<Room | null> => {
    const bare = jid.toBareString();
    const hit = cache.get(bare);
    if (hit) return hit;
    const stored = await stores.rooms.load(bare);
    if (!stored) return null;
    let room: Room | null = Room.fromStore(jid, stored, ctx.limits);
    // Right after the store lost everything, a session missing from the
    // registry may just not be re-recorded yet: no ghost hunt then.
    if (!(await stores.coordination.epoch()).recovering) room = await dropGhosts(ctx, room);
    if (room) cache.set(bare, room);
    return room;
  };

  const handle = async (msg: BusMessage): Promise<void> => {
    const target = targetOf(msg.subject);
    const stanza = parse(dec.decode(msg.data));
    if (logger.isLevelEnabled('debug')) logger.debug({ room: target.toString(), kind: stanza.name, from: stanza.attrs.from, to: stanza.attrs.to }, 'room stanza');
    const from = tryParseJid(String(stanza.attrs.from ?? ''));
    const to = tryParseJid(String(stanza.attrs.to ?? ''));
    if (!from || !to) return;
    if (target.local === '') {
      if (stanza.name === 'iq') await handleServiceIq(ctx, stanza, to);
      else if (stanza.name === 'message') replyError(ctx, null, stanza, new StanzaError('service-unavailable'));
      return;
    }
    const room = await load(target);
    let after: Room | null = room;
    switch (stanza.name) {
      case 'presence':
        after = await handlePresence(ctx, room, stanza, from, to);
        break;
      case 'message':
        await handleMessage(ctx, room, stanza, from, to, msg.data.byteLength);
        break;
      case 'iq':
        after = await handleRoomIq(ctx, room, stanza, from, to);
        break;
      default:
        return;
    }
    const bare = target.toBareString();
    if (after) cache.set(bare, after);
    else cache.delete(bare);
  };

  // Sampled every few seconds, not counted on every change.
  const countOccupants = (): number => {
    let n = 0;
    for (const r of cache.values()) n += r.occupants.size;
    return n;
  };

  /**
   * The store lost its live state (a new epoch: Redis came back without its
   * data), rooms and occupants included. Rooms held here are written back
   * in their own mailbox (after the stanza being handled, before the next);
   * rooms of shards dropped during the outage are written back if nobody
   * serves their shard yet — no instance takes a shard while the new epoch
   * is younger than a lease TTL — and the store has not got them again.
   * Persistent rooms nobody held in memory are lost with the store: they are
   * durable data, which a store that can lose everything cannot keep.
   */
  /** The write-back of held rooms after a store reset, while it runs. */
  let rewriting: Promise<void> = Promise.resolve();
  const writeBack = async ({ reset, epoch }: { reset: boolean; epoch: StoreEpoch }): Promise<void> => {
    const orphans = [...parked.values()];
    parked.clear();
    if (!reset) return;
    metrics.storeResets.inc();
    const started = performance.now();
    const held = [...cache.values()];
    let restored = 0;
    for (const room of orphans) {
      if (cache.has(room.bare) || epoch.ageMs >= mucConfig.leaseTtlMs) continue;
      const shard = shardOf(room.bare, mucConfig.shards);
      try {
        const [holder] = await stores.coordination.holders([`muc:shard:${shard}`]);
        if (holder !== null || (await stores.rooms.load(room.bare)) !== null) continue;
        await room.rewrite(stores.rooms);
        restored++;
      } catch (err) {
        logger.warn({ err, room: room.bare }, 'could not write back a room after the store lost it');
      }
    }
    // Not awaited by the lease round (a room's mailbox may be busy, and the
    // round must go on); stop() waits for it. Each room catches its own failure.
    rewriting = Promise.all(held.map(async (room) => {
      const shard = shardOf(room.bare, mucConfig.shards);
      const key = actorSubject(MUC_SUBJECT_PREFIX, mucConfig.shards, room.jid.domain, room.jid.local);
      try {
        // The mailbox's room is the cache's (a handler may have replaced or closed it meanwhile).
        const ran = await service?.runInMailbox(shard, key, async () => {
          const current = cache.get(room.bare);
          if (current) await current.rewrite(stores.rooms);
        });
        return ran === true ? 1 : 0;
      } catch (err) {
        logger.warn({ err, room: room.bare }, 'could not write back a room after the store lost it');
        return 0;
      }
    })).then((done) => {
      const n = restored + done.reduce<number>((a, b) => a + b, 0);
      metrics.reRecorded.inc({ kind: 'rooms' }, n);
      logger.warn(
        { rooms: n, held: held.length, orphans: orphans.length, ms: Math.round(performance.now() - started), epoch: epoch.id },
        `store reset detected; re-recorded ${n} rooms in ${Math.round(performance.now() - started)} ms`,
      );
    }).catch((err: unknown) => logger.error({ err }, 'writing rooms back after a store reset failed'));
  };

  let service: ShardedService | undefined;
  service = await startShardedService({
    group: 'muc',
    instanceId: config.nodeId,
    bus,
    coordination: stores.coordination,
    subjectPrefix: MUC_SUBJECT_PREFIX,
    shardCount: mucConfig.shards,
    leaseTtlMs: mucConfig.leaseTtlMs,
    renewIntervalMs: Math.max(100, Math.floor(mucConfig.leaseTtlMs / 5)),
    keyOf: (msg) => msg.subject,
    logger,
    onEpoch: writeBack,
    handler: async (msg) => {
      try {
        await handle(msg);
      } catch (err) {
        logger.error({ err, subject: msg.subject }, 'room actor failed');
        try {
          const stanza = parse(dec.decode(msg.data));
          replyError(ctx, null, stanza, new StanzaError('internal-server-error'));
        } catch {
          // unparseable: nothing to answer
        }
      }
      msg.respond(EMPTY);
    },
  });
  // A shard that left this instance takes its cached rooms along: whoever
  // owns it next (maybe us again, later) loads them fresh from the store.
  // They stay parked until the next round has read the store's epoch.
  const sharded = service;
  metrics.shardsOwned.set({ group: 'muc' }, sharded.owned().length);
  const unlisten = sharded.onChange((owned) => {
    metrics.shardsOwned.set({ group: 'muc' }, owned.length);
    const mine = new Set(owned);
    for (const [bare, room] of [...cache]) {
      if (mine.has(shardOf(bare, mucConfig.shards))) continue;
      cache.delete(bare);
      parked.set(bare, room);
    }
  });
  const sample = (): void => {
    metrics.mucRooms.set(cache.size);
    metrics.mucOccupants.set(countOccupants());
    metrics.queueDepth.set({ queue: 'muc-outbox' }, ctx.outbox.pending());
  };
  const sampler = setInterval(sample, 5000);
  sampler.unref();
  logger.info({ domains, shards: mucConfig.shards }, 'muc service started');
  return {
    domains,
    owned: () => sharded.owned(),
    async stop() {
      unlisten();
      clearInterval(sampler);
      await rewriting;
      await sharded.stop();
      await ctx.outbox.drain();
      router.close();
    },
  };
}

/**
 * Occupants recorded by a previous owner whose session has ended meanwhile
 * (a whole-cluster restart, a session that ended while nobody owned the
 * room) leave now, so nobody sees ghosts.
 */
async function dropGhosts(ctx: MucContext, room: Room): Promise<Room | null> {
  for (const o of [...room.occupants.values()]) {
    for (const s of [...o.sessions]) {
      if (s.sessionId === null) continue;
      const jid = tryParseJid(s.jid);
      if (!jid) continue;
      const entry = await ctx.stores.sessions.get(jid.toBareString(), jid.resource);
      if (entry && entry.sessionId === s.sessionId) continue;
      const after = await leave(ctx, room, o, s.jid, []);
      if (!after) return null;
    }
  }
  return room.occupants.size === 0 ? closeIfEmpty(ctx, room) : room;
}

/**
 * One process holds every room in embedded mode and a restart ended every
 * session, so temporary rooms left on disk are empty: they go (§10.1.3
 * temporary rooms are destroyed with their last occupant).
 */
async function dropTemporaryRooms(ctx: MucContext, domains: readonly string[]): Promise<void> {
  for (const domain of domains) {
    let after: string | undefined;
    for (;;) {
      const page = await ctx.stores.rooms.list(domain, { ...(after !== undefined ? { after } : {}), max: 500, publicOnly: false });
      for (const r of page.items) {
        const stored = await ctx.stores.rooms.load(r.room);
        if (stored && !stored.meta.persistent) await ctx.stores.rooms.destroy(r.room);
      }
      const last = page.items[page.items.length - 1];
      if (!last || page.items.length < 500) break;
      after = last.room;
    }
  }
}

export { Room } from './room.js';
