/**
 * Stanza routing (RFC 6120 §10, the delivery rules of RFC 6121 §8.5 that the
 * skeleton needs). Runs in the edge that received the stanza: it looks the
 * recipient up in the session registry and publishes straight to the c2s
 * node holding the session — one bus hop (DESIGN.md "Fast path").
 *
 * Nothing is silently lost: message and iq deliveries are bus requests that
 * the holding node acknowledges; "no responders", a timeout or a `gone` ack
 * falls back to the rules for an unavailable recipient, which end in
 * offline storage or an error to the sender.
 *
 * Backends fail stanzas, not processes (DESIGN.md invariant 7): what follows
 * a delivery's outcome runs after `route` has returned, so nobody awaits it;
 * it goes through `after`/`tell`, which turn any failure (a registry read
 * during a Redis outage, say) into an error to the sender and a log line.
 */
import { Element } from 'ltx';
import { JID, tryParseJid } from '@hyphae/jid';
import { StanzaError, errorReply, iqResult, canReplyWithError } from '@hyphae/stanza';
import type { Bus, Headers } from '@hyphae/bus';
import { SessionCache } from './session-cache.js';
import type { Stores, SessionEntry } from '@hyphae/store';
import type { Logger, Metrics } from '@hyphae/observability';
import { H, c2sSubject } from './delivery.js';
import { NodeLanes, type DeliveryMode, type DeliveryOutcome } from './lanes.js';
import { ModuleRegistry, type IqTarget, type IqReply, type Routing } from '@hyphae/module-api';
import type { StreamErrorCondition } from '@hyphae/stanza';
import type { UserActors } from './user-actor.js';
import type { Component } from './components.js';
import type { RemoteDomains } from './remote.js';

/** The sessions of this process, for delivery without a bus hop. */
export interface LocalSessions {
  /** Writes `data` to the session's stream; false when it no longer exists. */
  deliver(sessionId: string, data: Uint8Array): boolean;
}

export interface RouterOptions {
  domains: readonly string[];
  nodeId: string;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  /** The process's modules (one registry for every router of the process). */
  registry: ModuleRegistry;
  local?: LocalSessions;
  /** How long a delivery may wait for its ack before the sender gets an error. */
  deliveryTimeoutMs?: number;
  /** The roster service's user actors: offline storage (XEP-0160). Without them, no storage. */
  actors?: UserActors;
  /** Services with domains of their own (MUC room actors, the bytestream proxy, …). */
  components?: readonly Component[];
  /** The s2s service (federation); without it, remote domains get <remote-server-not-found/>. */
  remote?: RemoteDomains;
  /** How long a cached registry answer may be used without an invalidation (default 5 s; 0: no cache). */
  sessionCacheTtlMs?: number;
  /**
   * How long a node nobody answers for (no responders on its subject) counts
   * as dead, its sessions as absent (default 10 s; sm's `node.down` or a
   * bind on that node ends it sooner).
   */
  deadNodeMs?: number;
  /**
   * How long a delivery to a c2s node may be held while the bus is down or
   * the node's subject has no responder, before its sender gets a wait
   * error (default: the delivery timeout). See lanes.ts.
   */
  holdMs?: number;
  /** Deliveries held for one c2s node at most; past it, wait errors at once (default 10,000). */
  maxHeldPerNode?: number;
}

const enc = new TextEncoder();
/**
 * After this process's bus (re)connects, for this long "no responders" does
 * not prove a node dead: the other nodes may still be resubscribing after a
 * NATS restart (their reconnect wait is 500 ms plus jitter).
 */
const BUS_SETTLE_MS = 10_000;
/** While the registry is being re-recorded after a loss of the store, a miss is looked up again this often. */
const RECOVERY_RETRY_MS = 200;

/** What became of one delivery (lanes.ts). */
type Outcome = DeliveryOutcome;
const CHAT_STATES = 'http://jabber.org/protocol/chatstates';

function isIqReply(v: unknown): v is IqReply {
  return typeof v === 'object' && v !== null && 'after' in v && 'payload' in v;
}

export class Router implements Routing {
  private readonly domains: Set<string>;
  readonly registry: ModuleRegistry;
  private local: LocalSessions | undefined;
  private readonly timeoutMs: number;
  /** The session registry as routing reads it (cached; see session-cache.ts). */
  private readonly cache: SessionCache;
  /** Deliveries to c2s nodes over the bus, in order per node through outages (lanes.ts). */
  private readonly lanes: NodeLanes;
  /**
   * The sender's session on this node, per stanza an edge here routes
   * (`route`'s `origin`): a late error reaches it even when the registry
   * cannot be read to find it.
   */
  private readonly origins = new WeakMap<Element, string>();
  /**
   * Fallbacks still running per recipient (bare JID): a delivery came back
   * "gone" and the stanza is being routed again. Later fallbacks and stanzas
   * for that recipient wait for them, so order holds (RFC 6120 §10.1).
   */
  private readonly fallbacks = new Map<string, Promise<void>>();

  constructor(private readonly opts: RouterOptions) {
    this.domains = new Set(opts.domains);
    this.registry = opts.registry;
    this.local = opts.local;
    this.timeoutMs = opts.deliveryTimeoutMs ?? 10_000;
    // Label children resolved once: this runs for every routed stanza.
    const hits = opts.metrics.routeCache.labels({ result: 'hit' });
    const misses = opts.metrics.routeCache.labels({ result: 'miss' });
    this.cache = new SessionCache(opts.stores.sessions, {
      ttlMs: opts.sessionCacheTtlMs ?? 5_000,
      maxEntries: 100_000,
      onLookup: (hit) => (hit ? hits : misses).inc(),
    }).attach(opts.bus);
    this.lanes = new NodeLanes({
      bus: opts.bus,
      nodeId: opts.nodeId,
      deadNodes: this.cache.deadNodes,
      logger: opts.logger,
      metrics: opts.metrics,
      timeoutMs: this.timeoutMs,
      holdMs: opts.holdMs ?? this.timeoutMs,
      maxHeld: opts.maxHeldPerNode ?? 10_000,
      deadNodeMs: opts.deadNodeMs ?? 10_000,
      settleMs: BUS_SETTLE_MS,
    });
  }

  /** Stops listening for registry changes (the service's stop, once nothing is routed any more). */
  close(): void {
    this.cache.detach();
    this.lanes.close();
  }

  /** The registry's sessions of a local bare JID, as routing reads them (cached). */
  sessions(bare: string): Promise<SessionEntry[]> {
    return this.cache.list(bare);
  }

  /** The sessions of `bare` if this router has a current answer cached; undefined means "ask `sessions`". */
  sessionsNow(bare: string): readonly SessionEntry[] | undefined {
    return this.cache.peek(bare);
  }

  /** Sends an operation to a user's actor (roster service); its result word. */
  async toUserActor(user: JID, op: string, data: Uint8Array, headers: Readonly<Record<string, string>> = {}): Promise<string> {
    const actors = this.opts.actors;
    if (!actors) throw new StanzaError('service-unavailable', 'No user actors here');
    return actors.result(await actors.send(user.bare(), op, data, { ...headers }));
  }

  setLocal(local: LocalSessions): void {
    this.local = local;
  }

  isLocalDomain(domain: string): boolean {
    return this.domains.has(domain);
  }

  /**
   * Routes a stanza whose `from` the edge has stamped (`from` is that JID,
   * parsed). Resolves once the stanza has been handed to the bus (or
   * answered), so callers that await each stanza keep their order; rejects
   * when the registry or a store fails before that (the caller answers).
   * `origin`: the sender's session id when it is a session of this node.
   */
  async route(stanza: Element, from: JID, origin?: string): Promise<void> {
    if (origin !== undefined) this.origins.set(stanza, origin);
    const toAttr = stanza.attrs.to as string | undefined;
    if (toAttr === undefined || toAttr === '') {
      // RFC 6120 §10.3: no 'to' means the sender's own account.
      return this.toAccount(stanza, from, from.bare(), true);
    }
    const to = tryParseJid(toAttr);
    if (!to) return this.bounce(stanza, from, new StanzaError('jid-malformed'));
    const component = this.componentFor(to.domain);
    if (component) return this.toComponent(component, stanza, from, to);
    if (!this.domains.has(to.domain)) return this.toRemote(stanza, from, to);
    if (to.local === '') return this.toHost(stanza, from, to);
    const pending = this.fallbacks.get(to.toBareString());
    if (pending) await pending;
    if (to.resource === '') return this.toAccount(stanza, from, to, to.local === from.local && to.domain === from.domain);
    return this.toFull(stanza, from, to, 0);
  }

  /** Sends a stanza generated by the server (replies, errors) to a JID. */
  async send(stanza: Element): Promise<void> {
    const to = tryParseJid(String(stanza.attrs.to ?? ''));
    if (!to) return;
    const component = this.componentFor(to.domain);
    if (component) {
      const from = tryParseJid(String(stanza.attrs.from ?? ''));
      return from ? this.toComponent(component, stanza, from, to) : undefined;
    }
    if (!this.domains.has(to.domain)) {
      const from = tryParseJid(String(stanza.attrs.from ?? ''));
      return from ? this.toRemote(stanza, from, to) : undefined;
    }
    if (to.local === '') return;
    const self = new JID('', to.domain, '');
    if (to.resource === '') return this.toAccount(stanza, self, to, false);
    return this.toFull(stanza, self, to, 0);
  }

  /** Ends every session of `bare` with a stream error, wherever it is. */
  async closeSessions(bare: string, condition: StreamErrorCondition, text: string): Promise<void> {
    const sessions = await this.opts.stores.sessions.list(bare);
    for (const s of sessions) {
      const headers: Headers = { [H.sid]: s.sessionId, [H.kind]: 'control', [H.ctl]: 'close', [H.cond]: condition, [H.text]: text };
      this.opts.bus.publish(c2sSubject(s.node), new Uint8Array(0), headers);
    }
  }

  // --- addressed to a component (MUC, proxy, …) ----------------------------

  private componentFor(domain: string): Component | undefined {
    return this.opts.components?.find((c) => c.serves(domain));
  }

  /** The component handles it; if it cannot be reached, the sender hears so. */
  private async toComponent(component: Component, stanza: Element, from: JID, to: JID): Promise<void> {
    this.opts.metrics.stanzas.inc({ direction: 'routed', kind: stanza.name });
    try {
      await component.send(to, enc.encode(stanza.toString()));
    } catch (err) {
      this.opts.logger.warn({ err, to: to.toBareString() }, 'component unreachable');
      return this.bounce(stanza, from, new StanzaError('service-unavailable', 'The service is not reachable; try again', { type: 'wait' }));
    }
  }

  /** Whether `domain` is served here: a local domain or a component's. */
  isServed(domain: string): boolean {
    return this.domains.has(domain) || this.componentFor(domain) !== undefined;
  }

  // --- addressed to another domain (federation) ----------------------------

  /**
   * Hands the stanza to the s2s service and returns once it is on the bus
   * (not once delivered: see remote.ts). `from` is the local sender, whose
   * domain is the sending side of the stream pair.
   */
  private async toRemote(stanza: Element, from: JID, to: JID): Promise<void> {
    const remote = this.opts.remote;
    if (!remote) return this.bounce(stanza, from, new StanzaError('remote-server-not-found'));
    // Not an open relay: a stanza from one remote domain to another never
    // leaves through us (a peer that tries is refused at the s2s edge).
    if (!this.isServed(from.domain)) return;
    this.opts.metrics.stanzas.inc({ direction: 'routed', kind: stanza.name });
    // The bus carries no top-level namespace; the s2s stream's default is jabber:server.
    if (stanza.attrs.xmlns === 'jabber:client') delete stanza.attrs.xmlns;
    // Not awaited: setting a stream up can take seconds (remote.ts); the outcome comes later.
    remote
      .send(from.domain, to.domain, enc.encode(stanza.toString()))
      .then((outcome) => {
        if (outcome === 'sent' || outcome === 'bounced') return;
        this.opts.logger.warn({ to: to.domain, outcome }, 'federation unreachable');
        this.tell(stanza, from, new StanzaError(outcome === 'timeout' ? 'remote-server-timeout' : 'remote-server-not-found'));
      })
      .catch((err: unknown) => this.failedLate(stanza, from, err));
  }

  // --- addressed to the server -------------------------------------------

  private async toHost(stanza: Element, from: JID, to: JID): Promise<void> {
    switch (stanza.name) {
      case 'iq':
        return this.handleIq(stanza, from, to, 'host');
      case 'message':
        // RFC 6120 §10.3.1: a message the server does not handle gets <service-unavailable/>.
        if (stanza.attrs.type === 'error' || stanza.attrs.type === 'headline') return;
        return this.bounce(stanza, from, new StanzaError('service-unavailable'));
      default:
        // Presence to the server itself carries nothing we act on yet.
        return;
    }
  }

  // --- addressed to an account's bare JID --------------------------------

  private async toAccount(stanza: Element, from: JID, to: JID, self: boolean): Promise<void> {
    if (stanza.name === 'iq') {
      if (!self && !(await this.accountExists(to))) {
        return this.bounce(stanza, from, new StanzaError('service-unavailable'));
      }
      return this.handleIq(stanza, from, to, 'account');
    }
    const sessions = await this.cache.list(to.toBareString());
    if (stanza.name === 'message') return this.messageToBare(stanza, from, to, sessions, 0);
    if (stanza.name === 'presence') {
      // Directed presence to a bare JID goes to every available resource
      // (RFC 6121 §4.6); subscriptions and broadcast come with the roster service.
      const type = stanza.attrs.type as string | undefined;
      if (type !== undefined && type !== 'unavailable') return;
      const data = enc.encode(stanza.toString());
      // Broadcast presence (no 'to') goes to the user's own available resources,
      // the sender included for available presence (RFC 6121 §4.2.2, §4.4.2);
      // contacts are the roster service's job.
      const broadcast = self && !stanza.attrs.to;
      for (const s of sessions) {
        if (!s.available) continue;
        if (broadcast && type === 'unavailable' && s.resource === from.resource) continue;
        this.deliver(stanza, data, to.toBareString(), s, () => undefined);
      }
    }
  }

  /** RFC 6121 §8.5.2: a message to a bare JID. */
  private async messageToBare(stanza: Element, from: JID, to: JID, sessions: SessionEntry[], attempt: number): Promise<void> {
    const type = (stanza.attrs.type as string | undefined) ?? 'normal';
    if (type === 'error') return;
    if (type === 'groupchat') return this.bounce(stanza, from, new StanzaError('service-unavailable'));
    const available = sessions.filter((s) => s.available && s.priority >= 0);
    let targets: SessionEntry[];
    if (type === 'headline') {
      targets = available;
    } else {
      // §8.5.2.1.1 option (a): the most available resources = highest priority.
      const top = Math.max(...available.map((s) => s.priority));
      targets = available.filter((s) => s.priority === top);
    }
    if (targets.length === 0) {
      if (type === 'headline') return;
      // Never store offline (or refuse) on a cached answer: read the registry itself.
      if (attempt === 0) return this.retryBare(stanza, from, to);
      const back = await this.whileRecovering(async () => {
        const again = await this.cache.fresh(to.toBareString());
        return again.some((s) => s.available && s.priority >= 0) ? again : null;
      });
      if (back) return this.messageToBare(stanza, from, to, back, attempt);
      return this.offline(stanza, from, to, attempt);
    }
    const bare = to.toBareString();
    if (this.registry.has('message/deliver')) {
      // Synchronous while the hooks are (a recipient with one session costs carbons a length check).
      const hooked = this.registry.runSync('message/deliver', { stanza, from, to, targets, sessions, routing: this });
      if ((hooked instanceof Promise ? await hooked : hooked) === 'stop') return;
    }
    const data = enc.encode(stanza.toString());
    let pending = targets.length;
    let delivered = 0;
    let unanswered = 0;
    let unreachable = 0;
    for (const s of targets) {
      this.deliver(stanza, data, bare, s, (outcome) => {
        if (outcome === 'delivered') delivered++;
        if (outcome === 'unanswered') unanswered++;
        if (outcome === 'unreachable') unreachable++;
        if (--pending > 0 || delivered > 0) return;
        // A node that did not answer may have delivered it: resending could
        // duplicate (and reorder), storing offline could hide it. Tell the sender.
        if (unanswered > 0) this.tell(stanza, from, notAnswered());
        else if (unreachable > 0) this.tell(stanza, from, unreachableNode());
        // Every chosen resource vanished meanwhile: read the registry itself
        // once (a dead node's sessions are left out of it, dead-nodes.ts).
        else if (attempt === 0) this.after(bare, stanza, from, () => this.retryBare(stanza, from, to));
        // Still listed, still gone: the registry lags behind a live node (an
        // unbind not yet written). Not offline storage: the offline module's
        // own check would read the same entry and hand the message back.
        else this.tell(stanza, from, new StanzaError('service-unavailable'));
      });
    }
  }

  private async retryBare(stanza: Element, from: JID, to: JID): Promise<void> {
    const sessions = await this.cache.fresh(to.toBareString());
    return this.messageToBare(stanza, from, to, sessions, 1);
  }

  /**
   * RFC 6121 §8.5.2.2.1: no available resource for a chat/normal message.
   * Messages with a body go to the user's actor for offline storage
   * (XEP-0160); the sender gets <service-unavailable/> when it cannot be
   * stored (no storage, queue full, no such account) — never silence.
   * A bodiless message that only carries a chat state (XEP-0085) is dropped.
   */
  private async offline(stanza: Element, from: JID, to: JID, attempt: number): Promise<void> {
    const hasBody = stanza.getChild('body') !== undefined;
    if (!hasBody) {
      const onlyChatState = stanza.getChildElements().every((c) => c.attrs.xmlns === CHAT_STATES);
      if (onlyChatState) return;
      return this.bounce(stanza, from, new StanzaError('service-unavailable'));
    }
    const actors = this.opts.actors;
    if (!actors) return this.bounce(stanza, from, new StanzaError('service-unavailable'));
    try {
      const reply = await actors.send(to.bare(), 'offline', enc.encode(stanza.toString()));
      const result = actors.result(reply);
      if (result === 'stored' || result === 'delivered') return;
      // A resource became available between the lookup and the actor's: route
      // it again here (the actor does not route: that could come back to its
      // own busy mailbox). Twice in a row means the registry keeps changing.
      if (result === 'available') {
        if (attempt < 2) return this.messageToBare(stanza, from, to, await this.cache.fresh(to.toBareString()), 2);
        return this.bounce(stanza, from, new StanzaError('resource-constraint', 'The recipient\'s sessions are changing; try again', { type: 'wait' }));
      }
      return this.bounce(stanza, from, new StanzaError('service-unavailable', result === 'full' ? 'The recipient\'s offline storage is full' : undefined));
    } catch (err) {
      this.opts.logger.warn({ err, to: to.toBareString() }, 'offline storage unreachable');
      return this.bounce(stanza, from, new StanzaError('service-unavailable'));
    }
  }

  /**
   * Writes `stanza` to every available resource of `bare` (or every bound
   * one with `all`), as it is. For stanzas the roster service presents to the
   * user (subscription requests, pushes do their own addressing).
   */
  async deliverToResources(stanza: Element, bare: string, opts: { all?: boolean } = {}): Promise<number> {
    const sessions = await this.cache.list(bare);
    const data = enc.encode(stanza.toString());
    let n = 0;
    for (const s of sessions) {
      if (!opts.all && !s.available) continue;
      this.deliver(stanza, data, bare, s, () => undefined);
      n++;
    }
    return n;
  }

  /** Writes `stanza` (as it is) to one session of `bare`; false when that resource is not bound. */
  async deliverToSession(stanza: Element, bare: string, resource: string): Promise<boolean> {
    const entry = await this.cache.get(bare, resource);
    if (!entry) return false;
    this.deliver(stanza, enc.encode(stanza.toString()), bare, entry, () => undefined);
    return true;
  }

  // --- addressed to a full JID ---------------------------------------------

  private async toFull(stanza: Element, from: JID, to: JID, attempt: number): Promise<void> {
    const bare = to.toBareString();
    // After a "gone" the resource is treated as absent (and the bare JID rules read the registry itself).
    let entry = attempt === 0 ? await this.cache.get(bare, to.resource) : null;
    if (!entry && attempt === 0 && stanza.name !== 'presence') {
      entry = await this.whileRecovering(async () => (await this.cache.fresh(bare)).find((s) => s.resource === to.resource) ?? null);
    }
    if (entry) {
      if (stanza.name === 'message' && this.registry.has('message/deliver')) {
        const event = { stanza, from, to: to.bare(), targets: [entry], sessions: await this.cache.list(bare), routing: this };
        const hooked = this.registry.runSync('message/deliver', event);
        if ((hooked instanceof Promise ? await hooked : hooked) === 'stop') return;
      }
      const data = enc.encode(stanza.toString());
      this.deliver(stanza, data, bare, entry, (outcome) => {
        if (outcome === 'gone') this.after(bare, stanza, from, () => this.toFull(stanza, from, to, attempt + 1));
        // Not "no such resource" (§8.5.3.2): the session is registered, its node
        // did not answer (a bus reconnect). The sender learns it, rather than the
        // message going to the bare JID's handling (offline storage).
        else if (outcome === 'unanswered') this.tell(stanza, from, notAnswered());
        else if (outcome === 'unreachable') this.tell(stanza, from, unreachableNode());
      });
      return;
    }
    // RFC 6121 §8.5.3.2: no such resource.
    const type = stanza.attrs.type as string | undefined;
    switch (stanza.name) {
      case 'message':
        if (type === 'error' || type === 'headline') return;
        if (type === 'groupchat') return this.bounce(stanza, from, new StanzaError('service-unavailable'));
        // normal/chat: treated as if addressed to the bare JID.
        if (!(await this.accountExists(to))) return this.bounce(stanza, from, new StanzaError('service-unavailable'));
        return this.messageToBare(stanza, from, to.bare(), attempt === 0 ? await this.cache.list(bare) : await this.cache.fresh(bare), attempt);
      case 'iq':
        if (type === 'result' || type === 'error') return;
        return this.bounce(stanza, from, new StanzaError('service-unavailable'));
      default:
        return; // presence to an unavailable resource is dropped (§8.5.3.2.3)
    }
  }

  /**
   * After the store lost the registry (Redis came back without its data),
   * every c2s node re-records its sessions on its next heartbeat; until
   * then (StoreEpoch.recovering) a miss proves nothing. Looks again every
   * RECOVERY_RETRY_MS until `find` finds it, or null once the recovery
   * window is over and the usual rules apply. The sender's later stanzas
   * wait behind this one, so their order holds. One epoch read per miss.
   */
  private async whileRecovering<T>(find: () => Promise<T | null>): Promise<T | null> {
    while ((await this.opts.stores.coordination.epoch()).recovering) {
      await new Promise((r) => setTimeout(r, RECOVERY_RETRY_MS));
      const found = await find();
      if (found !== null) return found;
    }
    return null;
  }

  // --- delivery ------------------------------------------------------------

  /**
   * Hands `data` to the node holding `entry` and tells `done` what became of
   * it: on 'gone' the caller falls back (RFC 6121 §8.5), on 'unanswered' it
   * answers the sender (DESIGN.md invariant 2). Deliveries to one node leave
   * in the order handed over, also across a bus outage (lanes.ts).
   * Presence is fire-and-forget: its loss is covered by the unavailable
   * presence broadcast when a session ends.
   */
  private deliver(stanza: Element, data: Uint8Array, bare: string, entry: SessionEntry, done: (outcome: Outcome) => void): void {
    const { metrics } = this.opts;
    metrics.stanzas.inc({ direction: 'routed', kind: stanza.name });
    if (entry.node === this.opts.nodeId && this.local) {
      done(this.local.deliver(entry.sessionId, data) ? 'delivered' : 'gone');
      return;
    }
    this.toNode(entry.node, entry.sessionId, data, stanza.name === 'presence' ? 'publish' : 'request', (outcome) => {
      if (outcome === 'unanswered') this.opts.logger.warn({ bare, node: entry.node }, 'delivery not acknowledged');
      done(outcome);
    });
  }

  /**
   * Writes `data` (a stanza as it is) to session `sessionId` on c2s node
   * `node`, in order with everything this process sends there, also across
   * a bus outage; `done` hears what became of it. For services that know
   * the session already (a MUC room's occupants: 'fenced', lanes.ts).
   */
  toNode(node: string, sessionId: string, data: Uint8Array, mode: DeliveryMode, done: (outcome: Outcome) => void): void {
    this.lanes.send(node, data, { [H.sid]: sessionId, [H.origin]: this.opts.nodeId }, mode, done);
  }

  // --- late outcomes -------------------------------------------------------

  /**
   * Runs a fallback of a delivery to `bare` (`route` has long returned;
   * nobody awaits it), after the fallbacks for `bare` before it. A failure —
   * a registry or store error during an outage — becomes the sender's error
   * and a log line (DESIGN.md invariant 7).
   */
  private after(bare: string, stanza: Element, from: JID, work: () => Promise<void>): void {
    const run = (this.fallbacks.get(bare) ?? Promise.resolve())
      .then(work)
      .catch((err: unknown) => this.failedLate(stanza, from, err))
      .then(() => {
        if (this.fallbacks.get(bare) === run) this.fallbacks.delete(bare);
      });
    this.fallbacks.set(bare, run);
  }

  private failedLate(stanza: Element, from: JID, err: unknown): void {
    if (err instanceof StanzaError) return this.tell(stanza, from, err);
    this.opts.logger.warn({ err, to: stanza.attrs.to, kind: stanza.name, id: stanza.attrs.id }, 'routing failed after a delivery fallback');
    this.tell(stanza, from, temporaryFailure());
  }

  /**
   * Answers the sender of `stanza` with `err`, late. When the answer cannot
   * be routed (the registry is out of reach), it goes straight to the
   * sender's session if that is on this node; else it is logged.
   */
  private tell(stanza: Element, from: JID, err: StanzaError): void {
    this.bounce(stanza, from, err).catch((routeErr: unknown) => {
      const origin = this.origins.get(stanza);
      try {
        if (origin !== undefined && this.local && canReplyWithError(stanza)) {
          const reply = errorReply(stanza, err);
          reply.attrs.to = from.toString();
          if (this.local.deliver(origin, enc.encode(reply.toString()))) return;
        }
      } catch (e) {
        this.opts.logger.error({ err: e }, 'could not write an error to the sender\'s session');
      }
      this.opts.logger.error({ err: routeErr, to: from.toString(), id: stanza.attrs.id, condition: err.condition }, 'could not answer the sender: the error was not routed');
    });
  }

  // --- server-handled iq ---------------------------------------------------

  private async handleIq(iq: Element, from: JID, to: JID, target: IqTarget): Promise<void> {
    const type = iq.attrs.type as string;
    if (type === 'result' || type === 'error') return; // the server has no requests outstanding
    const payload = iq.getChildElements()[0];
    const route = payload && this.registry.findIq(target, type, payload.attrs.xmlns as string | undefined, payload.name);
    if (!payload || !route) {
      // RFC 6120 §8.4: an iq the server does not understand.
      return this.bounce(iq, from, new StanzaError('service-unavailable'));
    }
    const request = { iq, payload, from, to, routing: this };
    // Someone else's query the server answers for the account: modules may refuse it first (XEP-0191).
    if (target === 'account' && this.registry.has('iq/account') && from.toBareString() !== to.toBareString()) {
      if ((await this.registry.run('iq/account', request)) === 'stop') return;
    }
    let answer: Element | null | IqReply;
    try {
      answer = await route.handle(request);
    } catch (e) {
      if (e instanceof StanzaError) return this.bounce(iq, from, e);
      this.opts.logger.error({ err: e, xmlns: payload.attrs.xmlns }, 'iq handler failed');
      return this.bounce(iq, from, new StanzaError('internal-server-error'));
    }
    const reply = iqResult(iq, (isIqReply(answer) ? answer.payload : answer) ?? undefined);
    await this.reply(reply, from);
    if (isIqReply(answer)) await answer.after();
  }

  /** Answers `stanza` with an error, unless it is an error itself (RFC 6120 §8.3.1). */
  async bounce(stanza: Element, from: JID, err: StanzaError): Promise<void> {
    if (!canReplyWithError(stanza)) return;
    this.opts.metrics.stanzaErrors.inc({ condition: err.condition });
    await this.reply(errorReply(stanza, err), from);
  }

  /** Sends a reply to the entity that sent the request. */
  private async reply(reply: Element, requester: JID): Promise<void> {
    reply.attrs.to = requester.toString();
    const component = this.componentFor(requester.domain);
    if (component) return this.toComponent(component, reply, requester, requester);
    if (!this.domains.has(requester.domain)) {
      // A remote requester: the answer leaves from the entity that was asked.
      const answerer = tryParseJid(String(reply.attrs.from ?? ''));
      return answerer ? this.toRemote(reply, answerer, requester) : undefined;
    }
    if (requester.local === '') return; // a local domain has no one to read it
    if (requester.resource === '') return this.toAccount(reply, requester, requester, false);
    return this.toFull(reply, requester, requester, 0);
  }

  private async accountExists(jid: JID): Promise<boolean> {
    return (await this.opts.stores.accounts.get(jid.domain, jid.local)) !== null;
  }
}

/** RFC 6120 §8.3.3.5, type 'wait': the holder of the session did not acknowledge the stanza. */
function notAnswered(): StanzaError {
  return new StanzaError('internal-server-error', 'The recipient\'s connection manager did not answer in time; try again', { type: 'wait' });
}

/** RFC 6120 §8.3.3.19 with type 'wait' (§8.3.2): the recipient's connection manager is reconnecting to the bus. */
function unreachableNode(): StanzaError {
  return new StanzaError('service-unavailable', 'The recipient\'s connection manager is reconnecting; try again', { type: 'wait' });
}

/** RFC 6120 §8.3.3.5, type 'wait': a backend (registry, store) failed while routing. */
function temporaryFailure(): StanzaError {
  return new StanzaError('internal-server-error', 'Temporary failure; try again', { type: 'wait' });
}
