/**
 * The module contract (docs/architecture.md "How to add a feature"). A
 * feature — one RFC area or XEP — is one module: a definition that declares
 * in one place what it implements, its config section, and a `create`
 * function returning what it adds to the server: disco features, iq
 * handlers, stanza hooks, stream features and nonzas, actor operations.
 * Modeled on Prosody's mod_* files and MongooseIM's `-xep` attributes.
 */
import type { Element } from 'ltx';
import type { JID } from '@hyphae/jid';
import type { HyphaeConfig, ConfigSection } from '@hyphae/config';
import type { Stores, SessionEntry, ModuleStorage } from '@hyphae/store';
import type { Logger, Metrics } from '@hyphae/observability';
import type { Bus } from '@hyphae/bus';
import type { StreamErrorCondition } from '@hyphae/stanza';

// --- what a module implements ------------------------------------------------

/** How much of a specification a module implements (DOAP's xmpp:status). */
export type SpecStatus = 'complete' | 'partial' | 'planned' | 'deprecated' | 'removed';

/** An RFC or XEP a module implements, for the compliance table and DOAP file. */
export interface Spec {
  /** 'RFC 6121' or 'XEP-0280'; optionally with a section ('RFC 6121 §4.2.2'). */
  spec: string;
  version?: string;
  /** Default 'complete'. */
  status?: SpecStatus;
  /** What is left out or special, in a few words. */
  note?: string;
}

// --- disco -------------------------------------------------------------------

/** Kinds of entity a module adds disco features to (XEP-0030). */
export type EntityKind = 'server' | 'account' | 'component' | 'room';

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

// --- iq ------------------------------------------------------------------------

/**
 * Where an iq handler listens:
 * - 'host': addressed to a served domain (or domain/resource);
 * - 'account': addressed to a local account's bare JID, or with no 'to'
 *   (RFC 6120 §10.3.3: the server answers on the account's behalf);
 * - 'room': addressed to a MUC room's bare JID and not XEP-0045's own; runs
 *   in the room's actor, in order with the room's other work (the room
 *   exists and the sender may see it: a locked room is item-not-found first).
 */
export type IqTarget = 'host' | 'account' | 'room';

export interface IqRequest {
  iq: Element;
  /** The child that selected the handler. */
  payload: Element;
  /** Sender (stamped by the edge). */
  from: JID;
  /** Resolved target: a domain JID for 'host', a bare JID for 'account'. */
  to: JID;
  /** The router handling it: modules send pushes and replies through it. */
  routing: Routing;
}

/** A handler's answer with work to do once the reply is on its way (e.g. pushes, closing sessions). */
export interface IqReply {
  payload: Element | null;
  after: () => Promise<void>;
}

/** Returns the result payload (null: empty result), or throws a StanzaError that becomes the error reply. */
export type IqHandler = (req: IqRequest) => Promise<Element | null | IqReply> | Element | null | IqReply;

export interface IqRoute {
  target: IqTarget;
  type: 'get' | 'set';
  xmlns: string;
  /** Element name of the payload child. */
  name: string;
  handle: IqHandler;
}

// --- routing, as modules see it ---------------------------------------------

/** What a module may ask of the router that runs it (the same in every service). */
export interface Routing {
  /**
   * Routes `stanza` as if `from` had sent it (full RFC 6120 §10 rules, hooks
   * included). `origin`: the sender's session id when the stanza comes from a
   * session of this node (a late error then reaches it without the registry).
   */
  route(stanza: Element, from: JID, origin?: string): Promise<void>;
  /** Sends a server-generated stanza to its `to`. */
  send(stanza: Element): Promise<void>;
  /** The registry's sessions of a local bare JID (cached, invalidated by session events). */
  sessions(bare: string): Promise<SessionEntry[]>;
  /**
   * The registry's sessions of `bare` if this router has a current answer
   * cached, else undefined (then ask `sessions`): a per-stanza hook decides
   * from it without a promise.
   */
  sessionsNow(bare: string): readonly SessionEntry[] | undefined;
  /** Writes `stanza` as it is to one session; false when that resource is not bound. */
  deliverToSession(stanza: Element, bare: string, resource: string): Promise<boolean>;
  /** Writes `stanza` as it is to every available (or, with all, every bound) resource. */
  deliverToResources(stanza: Element, bare: string, opts?: { all?: boolean }): Promise<number>;
  /** Ends every session of `bare` with a stream error, wherever it is. */
  closeSessions(bare: string, condition: StreamErrorCondition, text: string): Promise<void>;
  /** Sends an operation to `user`'s actor in the roster service and returns its result word. */
  toUserActor(user: JID, op: string, data: Uint8Array, headers?: Readonly<Record<string, string>>): Promise<string>;
  /** Answers `stanza` with an error unless it is an error itself (RFC 6120 §8.3.1). */
  bounce(stanza: Element, from: JID, err: import('@hyphae/stanza').StanzaError): Promise<void>;
}

// --- a client's session, as modules see it -------------------------------------

/** Per-session state a module keeps, found by a key it owns (`new SessionKey<T>('csi')`). */
export class SessionKey<T> {
  constructor(readonly name: string) {}
  /** Type witness only. */
  declare readonly _type?: T;
}

/**
 * One bound client stream, on the c2s node that holds it. Modules keep
 * their per-session state on it (`get`/`set`), write to it, and close it.
 */
export interface ClientSession {
  /** The registry's session id. */
  readonly id: string;
  /** Bound full JID. */
  readonly jid: JID;
  readonly remoteAddress: string;
  /** ms since epoch when bytes last arrived from the client. */
  readonly lastReceivedAt: number;
  get<T>(key: SessionKey<T>): T | undefined;
  set<T>(key: SessionKey<T>, value: T | undefined): void;
  /** Writes a stanza or nonza to the client now (no session/deliver hooks). */
  write(data: Element | Uint8Array | string): void;
  /**
   * Turns a registry flag of this session on or off (e.g. 'carbons'); every
   * router sees it on its next lookup. Resolves once recorded.
   */
  setFlag(flag: string, on: boolean): Promise<void>;
  /** Ends the stream with a stream error (RFC 6120 §4.9). */
  close(condition: StreamErrorCondition, text?: string): void;
}

// --- stanza hooks ---------------------------------------------------------------

/**
 * What a hook decides: undefined lets the stanza go on (possibly rewritten
 * in place), 'stop' ends its path here (the hook answered or dropped it).
 */
export type HookResult = void | 'stop';
export type Hook<E> = (event: E) => HookResult | Promise<HookResult>;

/** `stanza/out`: a bound client sent a stanza; `from` is stamped, routing comes next (c2s edge). */
export interface StanzaOutEvent {
  stanza: Element;
  from: JID;
  session: ClientSession;
  routing: Routing;
}

/**
 * `message/deliver`: the router chose the sessions of a local account that
 * get a message (RFC 6121 §8.5); runs once per message, in whichever
 * process routes it, before the deliveries.
 */
export interface MessageDeliverEvent {
  stanza: Element;
  from: JID;
  /** The recipient's bare JID. */
  to: JID;
  /** The sessions the message goes to. */
  targets: readonly SessionEntry[];
  /** Every session of the recipient. */
  sessions: readonly SessionEntry[];
  routing: Routing;
}

/** The kind of stanza a delivery carries, read from its first bytes (no parse). */
export type StanzaKind = 'message' | 'presence' | 'iq' | 'other';

/**
 * `session/deliver`: a stanza is about to be written to one session, on the
 * c2s node holding it. `stanza()` parses the bytes on first use: a hook
 * that can decide from `kind` and the session's state never pays for it.
 * A hook rewrites with `replace`; 'stop' drops (or holds) it.
 */
export interface SessionDeliverEvent {
  session: ClientSession;
  kind: StanzaKind;
  data: Uint8Array;
  stanza(): Element;
  replace(stanza: Element): void;
  routing: Routing;
}

/** `offline/store`: a message is about to be kept for a user with no available resource (XEP-0160). */
export interface OfflineStoreEvent {
  stanza: Element;
  /** The recipient. */
  user: JID;
  from: JID | null;
  routing: Routing;
}

/**
 * `presence/broadcast`: the user actor is about to send `user`'s presence
 * to `recipients` (contacts' bare JIDs, directed-presence or probe
 * recipients); a hook removes entries to withhold it.
 */
export interface PresenceBroadcastEvent {
  presence: Element;
  user: JID;
  recipients: string[];
}

/** `session/bound` and `session/unbound`, on the c2s node of the session. */
export interface SessionLifecycleEvent {
  session: ClientSession;
  routing: Routing;
  /** For unbound: why the session ended. */
  reason?: string;
}

/**
 * `room/groupchat`: an occupant's groupchat message, as the room is about to
 * reflect it to every occupant (XEP-0045 §7.4), in the room's actor. A hook
 * may rewrite `reflected` (e.g. add a XEP-0359 stanza-id) or stop it.
 */
export interface RoomGroupchatEvent {
  /** The room's bare JID. */
  room: JID;
  /** The sender's real full JID. */
  from: JID;
  /** The message as occupants will get it (from room/nick, no `to`). */
  reflected: Element;
  routing: Routing;
}

/**
 * `iq/account`: an iq get/set to a local account's bare JID from someone
 * else, which the server is about to answer on the account's behalf (vCard,
 * last activity, …), in the router; a hook answers it (e.g. XEP-0191: from
 * a blocked JID, <service-unavailable/>) and stops it.
 */
export type AccountIqEvent = IqRequest;

/**
 * `presence/in`: a subscription stanza or probe from a contact, as the
 * user's actor is about to act on it (RFC 6121 §3, §4.3); a hook that stops
 * it leaves the user's state untouched and nothing is presented.
 */
export interface InboundPresenceEvent {
  presence: Element;
  /** The user it is addressed to. */
  user: JID;
  /** The contact (bare JID). */
  from: JID;
  routing: Routing;
}

/** `account/deleted`: in the user's actor, after the roster module forgot the account's data; modules forget theirs. */
export interface AccountDeletedEvent {
  user: JID;
}

/**
 * `presence/initial`: in the user's actor, once a resource's initial
 * presence has gone to its contacts and the contacts' presence and pending
 * subscription requests have come back (RFC 6121 §4.2); modules hand it what
 * waited for it (XEP-0160: offline messages).
 */
export interface InitialPresenceEvent {
  /** The resource that became available. */
  session: JID;
  routing: Routing;
}

export interface Hooks {
  'stanza/out'?: Hook<StanzaOutEvent>;
  'message/deliver'?: Hook<MessageDeliverEvent>;
  'session/deliver'?: Hook<SessionDeliverEvent>;
  'offline/store'?: Hook<OfflineStoreEvent>;
  'iq/account'?: Hook<AccountIqEvent>;
  'presence/in'?: Hook<InboundPresenceEvent>;
  'presence/broadcast'?: Hook<PresenceBroadcastEvent>;
  'room/groupchat'?: Hook<RoomGroupchatEvent>;
  'session/bound'?: (event: SessionLifecycleEvent) => void | Promise<void>;
  'session/unbound'?: (event: SessionLifecycleEvent) => void | Promise<void>;
  'account/deleted'?: (event: AccountDeletedEvent) => void | Promise<void>;
  'presence/initial'?: (event: InitialPresenceEvent) => void | Promise<void>;
}
export type HookName = keyof Hooks;

/** Hooks that only observe: every handler runs, none can stop the others. */
export type LifecycleHookName = 'session/bound' | 'session/unbound' | 'account/deleted' | 'presence/initial';
/** Stanza hooks: ordered, each can stop or rewrite the stanza. */
export type StanzaHookName = Exclude<HookName, LifecycleHookName>;
export type LifecycleEventOf<N extends LifecycleHookName> = Parameters<NonNullable<Hooks[N]>>[0];
export type StanzaEventOf<N extends StanzaHookName> = NonNullable<Hooks[N]> extends Hook<infer E> ? E : never;

// --- stream features and nonzas (c2s) --------------------------------------------

/** When in a client stream a feature is offered or a nonza is accepted. */
export type StreamStage = 'pre-auth' | 'post-auth' | 'bound';

/** The part of a client stream a stream feature or nonza sees. */
export interface StreamContext {
  readonly secure: boolean;
  readonly domain: string;
  readonly remoteAddress: string;
  /** Set once bound. */
  readonly session: ClientSession | null;
  write(data: Element | string): void;
  close(condition: StreamErrorCondition, text?: string): void;
}

export interface StreamFeature {
  stage: StreamStage;
  /** The <stream:features/> child to offer now, or null not to offer it. */
  offer(stream: StreamContext): Element | null;
}

/**
 * An iq a client may send before authenticating (XEP-0077 registration):
 * answered on the stream itself, never routed.
 */
export interface PreAuthIqHandler {
  xmlns: string;
  name: string;
  /** The answer (result or error iq) to write back. */
  handle(iq: Element, stream: StreamContext): Promise<Element>;
}

export interface NonzaHandler {
  stage: StreamStage;
  name: string;
  xmlns: string;
  handle(el: Element, stream: StreamContext): void | Promise<void>;
}

// --- actors ----------------------------------------------------------------------

/** What a user-actor operation gets: runs in the user's mailbox, in order with roster and presence work. */
export interface UserOpRequest {
  user: JID;
  data: Uint8Array;
  headers: Readonly<Record<string, string>>;
  routing: Routing;
}
/** The `session-end` operation's payload (JSON): c2s tells the user's actor a session ended. */
export interface SessionEndedEvent {
  bare: string;
  resource: string;
  sessionId: string;
  /** Whether the session had sent available presence (then contacts get unavailable). */
  available: boolean;
  reason: string;
}

/** Returns the reply's result word ('ok' unless the operation says otherwise). */
export type UserOpHandler = (req: UserOpRequest) => Promise<string> | string;

// --- the module --------------------------------------------------------------------

/**
 * What every module can read of the others (disco lists everyone's
 * features) and the hooks it may fire for them, as Prosody's modules fire
 * events: the roster module runs `presence/broadcast`, the offline module
 * `offline/store`.
 */
export interface ModuleView {
  features(kind: EntityKind): string[];
  identities(kind: EntityKind): DiscoIdentity[];
  hostDiscoNode(kind: 'info' | 'items', node: string, req: IqRequest): Promise<Element[] | null>;
  /** Whether any module hooks `name` (skip building the event when none does). */
  has(name: HookName): boolean;
  /** Runs a stanza hook's handlers in order until one stops the stanza. */
  run<N extends StanzaHookName>(name: N, event: StanzaEventOf<N>): Promise<HookResult>;
  /** Runs every handler of a lifecycle hook; one failing does not keep the others from running. */
  lifecycle<N extends LifecycleHookName>(name: N, event: LifecycleEventOf<N>, onError: (err: unknown) => void): Promise<void>;
}

/** What a module's `create` receives: the process's shared pieces. */
export interface ModuleDeps<C> {
  config: HyphaeConfig;
  /** The module's own section (`modules.<key>`), validated, defaults applied. */
  options: C;
  stores: Stores;
  storage: ModuleStorage;
  bus: Bus;
  logger: Logger;
  /** The process's metrics; a module registers its own in `metrics.registry` (prom-client). */
  metrics: Metrics;
  /** The server's software version. */
  version: string;
  /** The registry this module is part of (read at request time: it is complete only after every create). */
  modules: () => ModuleView;
}

/** What a module adds to the server, built by its `create`. */
export interface ModuleInstance {
  /** Disco features by kind of entity. */
  features?: Partial<Record<EntityKind, readonly string[]>>;
  identities?: Partial<Record<EntityKind, readonly DiscoIdentity[]>>;
  iq?: readonly IqRoute[];
  /**
   * XEP-0030 nodes of the host this module answers (e.g. XEP-0050's
   * commands node): the children of the disco#info or #items `<query
   * node=…/>`, or null when `node` is not this module's.
   */
  hostDiscoNode?: (kind: 'info' | 'items', node: string, req: IqRequest) => Promise<Element[] | null> | Element[] | null;
  hooks?: Hooks;
  streamFeatures?: readonly StreamFeature[];
  nonzas?: readonly NonzaHandler[];
  preAuthIq?: readonly PreAuthIqHandler[];
  /** User-actor operations by name (`hy-op`), run in the roster service's per-user mailbox. */
  userOps?: Readonly<Record<string, UserOpHandler>>;
  /** Stops timers and background work. */
  stop?: () => void | Promise<void>;
}

/** A module: its declaration and how to build it. */
export interface ModuleDefinition<C = unknown> {
  /** Short name: 'carbons', 'csi', 'blocking'. */
  readonly name: string;
  /** One line for the compliance table. */
  readonly description: string;
  readonly specs: readonly Spec[];
  /** Its config section (`modules.<key>`), if it has options. */
  readonly config?: ConfigSection<C>;
  /** Hook order: lower runs first (default 0). */
  readonly priority?: number;
  /** Generic stores it opens (documentation; opened through deps.storage). */
  readonly stores?: ReadonlyArray<{ kind: 'keyval' | 'map' | 'archive'; name: string }>;
  /** Metric names it registers (documentation and the compliance table). */
  readonly metrics?: readonly string[];
  /** Whether this deployment runs it (default: always). */
  enabled?(config: HyphaeConfig, options: C): boolean;
  create(deps: ModuleDeps<C>): ModuleInstance;
}

/** Identity helper that keeps a definition's option type (`defineModule({ ... })`). */
export function defineModule<C>(def: ModuleDefinition<C>): ModuleDefinition<C> {
  return def;
}
