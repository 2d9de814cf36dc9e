/**
 * What every stream of a c2s node shares: configuration, stores, the router,
 * and the table of local sessions that deliveries from the bus are written to.
 */
import type { SecureContext } from 'node:tls';
import { createHash } from 'node:crypto';
import { prepDomain, type JID } from '@hyphae/jid';
import type { HyphaeConfig } from '@hyphae/config';
import type { Stores, SessionEntry } from '@hyphae/store';
import type { Bus } from '@hyphae/bus';
import type { Logger, Metrics } from '@hyphae/observability';
import type { Credentials } from '@hyphae/sasl';
import { prepLocal } from '@hyphae/jid';
import { H, EVENTS, c2sSubject, encodeEvent, notifySessionEnded, SID_HEADER, type SessionEvent, type UserActors } from '@hyphae/router';
import type { ModuleRegistry, Routing } from '@hyphae/module-api';
import type { Element } from 'ltx';
import type { ClientStream } from './stream.js';

const enc = new TextEncoder();
/** Sessions re-recorded at once after a registry loss: ten thousand binds must not all hit the store together. */
const REBIND_BATCH = 200;

export interface C2sRuntimeOptions {
  config: HyphaeConfig;
  nodeId: string;
  bus: Bus;
  stores: Stores;
  /** The process's router (any `Routing`: tests pass a fake). */
  router: Routing;
  /** The process's modules: stream features, nonzas, pre-auth iqs, hooks. */
  registry: ModuleRegistry;
  logger: Logger;
  metrics: Metrics;
  secureContext: SecureContext;
  tlsKey: string;
  actors: UserActors;
}

export class C2sRuntime {
  readonly config: HyphaeConfig;
  readonly nodeId: string;
  readonly domains: ReadonlySet<string>;
  readonly stores: Stores;
  readonly router: Routing;
  readonly registry: ModuleRegistry;
  /** Whether any module hooks these (read once: the registry does not change after start). */
  readonly deliverHooks: boolean;
  readonly stanzaOutHooks: boolean;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly secureContext: SecureContext;
  private readonly bus: Bus;
  readonly actors: UserActors;
  /** Bound sessions of this node by session id. */
  readonly sessions = new Map<string, ClientStream>();
  /** Open connections (bound or not). */
  readonly connections = new Set<ClientStream>();
  readonly perIp = new Map<string, number>();
  /**
   * Secret behind the fake SCRAM salts of unknown users. Derived from the TLS
   * key, which every node of a cluster shares, so all nodes answer alike.
   */
  readonly unknownUserSecret: Uint8Array;

  constructor(o: C2sRuntimeOptions) {
    this.config = o.config;
    this.nodeId = o.nodeId;
    this.domains = new Set(o.config.domains);
    this.stores = o.stores;
    this.router = o.router;
    this.registry = o.registry;
    this.deliverHooks = o.registry.has('session/deliver');
    this.stanzaOutHooks = o.registry.has('stanza/out');
    this.logger = o.logger;
    this.metrics = o.metrics;
    this.secureContext = o.secureContext;
    this.bus = o.bus;
    this.actors = o.actors;
    this.unknownUserSecret = createHash('sha256').update('hyphae scram unknown user\0').update(o.tlsKey).digest();
  }

  prepDomain(domain: string): string {
    return prepDomain(domain);
  }

  async lookupCredentials(domain: string, username: string): Promise<Credentials | null> {
    let local: string;
    try {
      local = prepLocal(username);
    } catch {
      return null;
    }
    const account = await this.stores.accounts.get(domain, local);
    return (account?.credentials as Credentials | undefined) ?? null;
  }

  sessionStarted(conn: ClientStream): void {
    const sid = conn.sessionId;
    if (sid) this.sessions.set(sid, conn);
    this.metrics.sessions.set(this.sessions.size);
  }

  /**
   * Writes every bound session of this node back to the registry, which lost
   * them (sm reaped the node during an outage, or Redis came back without
   * its data); idempotent. Returns how many were written. A store error
   * rejects; the heartbeat tries again on its next beat.
   */
  async reRecordSessions(): Promise<number> {
    const all = [...this.sessions.values()];
    let n = 0;
    for (let i = 0; i < all.length; i += REBIND_BATCH) {
      const done = await Promise.all(all.slice(i, i + REBIND_BATCH).map((c) => c.session?.rebind() ?? false));
      n += done.filter(Boolean).length;
    }
    this.metrics.reRecorded.inc({ kind: 'sessions' }, n);
    return n;
  }

  /** Removes the session from the registry only (drain); true when it was there. */
  async leaveRegistry(jid: JID, entry: SessionEntry): Promise<boolean> {
    return this.stores.sessions.unbind(jid.toBareString(), entry.resource, entry.sessionId);
  }

  /**
   * Session ends whose unbind failed (the registry was out of reach): the
   * node lives, so nobody would reap the entry, and contacts would never get
   * unavailable. The heartbeat finishes them once the store answers again.
   */
  private readonly unfinishedEnds = new Map<string, { jid: JID; entry: SessionEntry; reason: string; leftRegistry: boolean }>();

  /** Finishes the session ends a registry outage interrupted; how many are still waiting. */
  async finishInterruptedEnds(): Promise<number> {
    for (const [sid, end] of [...this.unfinishedEnds]) {
      this.unfinishedEnds.delete(sid);
      await this.unbindAndNotify(end.jid, end.entry, end.reason, end.leftRegistry);
    }
    return this.unfinishedEnds.size;
  }

  /** `leftRegistry`: leaveRegistry() removed it already; the rest of the session end still happens. */
  async sessionEnded(jid: JID, entry: SessionEntry, reason: string, leftRegistry = false): Promise<void> {
    this.sessions.delete(entry.sessionId);
    this.metrics.sessions.set(this.sessions.size);
    await this.unbindAndNotify(jid, entry, reason, leftRegistry);
  }

  private async unbindAndNotify(jid: JID, entry: SessionEntry, reason: string, leftRegistry: boolean): Promise<void> {
    const bare = jid.toBareString();
    try {
      const removed = (await this.stores.sessions.unbind(bare, entry.resource, entry.sessionId)) || leftRegistry;
      if (removed) {
        const ev: SessionEvent = { bare, resource: entry.resource, sessionId: entry.sessionId, node: this.nodeId, reason };
        this.bus.publish(EVENTS.sessionUnbound, encodeEvent(ev));
        // Contacts and directed-presence recipients get unavailable (RFC 6121 §4.5.2).
        await notifySessionEnded(this.actors, { bare, resource: entry.resource, sessionId: entry.sessionId, available: entry.available, reason }, this.logger);
      }
    } catch (err) {
      // The registry is unreachable: if the node's heartbeat lapses too, the
      // reaper removes the entry; if not, the next beat that reaches the
      // store finishes this end (finishInterruptedEnds).
      this.unfinishedEnds.set(entry.sessionId, { jid, entry, reason, leftRegistry });
      this.logger.warn({ err, jid: jid.toString() }, 'could not unbind session; will retry');
    }
  }

  /** Ends a session with a stream error, on this node or another. */
  closeSession(entry: SessionEntry, condition: string, text: string): void {
    if (entry.node === this.nodeId) {
      this.sessions.get(entry.sessionId)?.fail(condition as 'conflict', text);
      return;
    }
    this.bus.publish(c2sSubject(entry.node), new Uint8Array(0), {
      [H.sid]: entry.sessionId, [H.kind]: 'control', [H.ctl]: 'close', [H.cond]: condition, [H.text]: text,
    });
  }

  /** Hands a stanza of the user to their actor in the roster service, waiting until it is processed. */
  connectionClosed(conn: ClientStream): void {
    this.connections.delete(conn);
    this.metrics.connections.dec({ transport: conn.transport.name });
    const n = (this.perIp.get(conn.remoteAddress) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(conn.remoteAddress);
    else this.perIp.set(conn.remoteAddress, n);
  }
}
