/**
 * A bound stream as modules see it (module-api `ClientSession`): per-session
 * state by key, registry flags, writing and closing; and the path of a
 * delivery through `session/deliver` hooks when a module has one.
 */
import type { Element } from 'ltx';
import type { JID } from '@hyphae/jid';
import type { SessionEntry } from '@hyphae/store';
import type { StreamErrorCondition } from '@hyphae/stanza';
import { parseDelivered, stanzaKind, type ClientSession, type HookResult, type SessionDeliverEvent, type SessionKey } from '@hyphae/module-api';
import type { C2sRuntime } from './runtime.js';

/** What a session needs of the stream it lives on (stream.ts). */
export interface SessionHost {
  readonly lastReceivedAt: number;
  /** The stream is open and bound: deliveries may be written. */
  readonly isBound: boolean;
  send(data: Element | Uint8Array | string): void;
  fail(condition: StreamErrorCondition, text?: string): void;
}

/** One delivery on its way through the hooks: the event and what a hook put in its place. */
interface DeliveryState {
  event: SessionDeliverEvent;
  replacement: Element | null;
}

export class C2sSession implements ClientSession {
  readonly id: string;
  readonly remoteAddress: string;
  private readonly bare: string;
  private readonly state = new Map<SessionKey<unknown>, unknown>();
  /** The flags as this session last set them: concurrent setFlag calls compose. */
  private readonly flags: Set<string>;
  /** Flag writes, one at a time, so the registry ends with the latest set. */
  private flagWrites: Promise<unknown> = Promise.resolve();
  /** Deliveries going through hooks, in arrival order. */
  private deliveries: Promise<void> = Promise.resolve();
  /** Deliveries whose hooks have not decided yet: later ones wait behind them, in order. */
  private waiting = 0;
  /** The registry entry was removed already (drain): the session end still tells the user actor. */
  leftRegistry = false;

  constructor(
    private readonly rt: C2sRuntime,
    private readonly host: SessionHost,
    readonly jid: JID,
    /** The stream's copy of the registry entry (re-recorded after a registry outage). */
    private readonly entry: SessionEntry,
    remoteAddress: string,
  ) {
    this.id = entry.sessionId;
    this.bare = jid.toBareString();
    this.remoteAddress = remoteAddress;
    this.flags = new Set(entry.flags ?? []);
  }

  get lastReceivedAt(): number {
    return this.host.lastReceivedAt;
  }

  get<T>(key: SessionKey<T>): T | undefined {
    return this.state.get(key) as T | undefined;
  }

  set<T>(key: SessionKey<T>, value: T | undefined): void {
    if (value === undefined) this.state.delete(key);
    else this.state.set(key, value);
  }

  write(data: Element | Uint8Array | string): void {
    this.host.send(data);
  }

  setFlag(flag: string, on: boolean): Promise<void> {
    if (on) this.flags.add(flag);
    else this.flags.delete(flag);
    const flags = [...this.flags].sort();
    if (flags.length > 0) this.entry.flags = flags;
    else delete this.entry.flags;
    const write = this.flagWrites.then(() => this.recordFlags());
    this.flagWrites = write.catch(() => undefined);
    return write;
  }

  /** Writes the current set (replace semantics): a later call's write carries every earlier change. */
  private async recordFlags(): Promise<void> {
    const flags = [...this.flags].sort();
    await this.rt.stores.sessions.update(this.bare, this.entry.resource, this.entry.sessionId, { flags });
  }

  close(condition: StreamErrorCondition, text?: string): void {
    this.host.fail(condition, text);
  }

  /**
   * First step of a drain: the session leaves the registry, so whatever is
   * routed to the user from now on finds another resource or offline
   * storage; the stream stays open meanwhile, so what was already on its
   * way here is still written to it (answering those 'gone' would send them
   * to offline storage behind later messages: out of order).
   */
  async leaveRegistry(): Promise<void> {
    this.leftRegistry = await this.rt.leaveRegistry(this.jid, this.entry);
  }

  /**
   * Re-records this session in the registry (after the registry lost it),
   * with what the stream knows of it: availability, priority, last
   * presence, module flags. True when it was written.
   */
  async rebind(): Promise<boolean> {
    if (!this.host.isBound || this.leftRegistry) return false;
    const replaced = await this.rt.stores.sessions.bind(this.bare, this.entry);
    if (replaced && replaced.sessionId !== this.entry.sessionId) {
      // Someone bound the resource while we were cut off: they win.
      this.host.fail('conflict', 'Replaced by a new connection');
      return true;
    }
    if (!this.host.isBound) {
      // The stream ended while the write was on its way, and its unbind may
      // have run before it: take the entry out again (only if still ours).
      await this.rt.stores.sessions.unbind(this.bare, this.entry.resource, this.entry.sessionId);
      return false;
    }
    return true;
  }

  /**
   * Runs the `session/deliver` hooks on delivered bytes, then writes what
   * they leave. Deliveries of one session stay in order: each waits for the
   * one before. The caller has acknowledged the delivery already (a hook
   * that stops one has taken responsibility for it).
   */
  deliverThroughHooks(data: Uint8Array): void {
    // While nothing waits, hooks that decide at once (the usual case) write
    // synchronously: no promise per delivered stanza on the chat fast path.
    if (this.waiting === 0) {
      const state = this.deliverEvent(data);
      const result = this.runHooks(state.event);
      if (!(result instanceof Promise)) return this.finishDelivery(data, state, result);
      this.waiting++;
      this.deliveries = result
        .then((r) => this.finishDelivery(data, state, r), (err: unknown) => this.finishDelivery(data, state, this.hookFailed(err, state)))
        .finally(() => this.waiting--);
      return;
    }
    this.waiting++;
    this.deliveries = this.deliveries
      .then(() => this.runDeliverHooks(data))
      .catch((err: unknown) => this.rt.logger.error({ err, jid: this.jid.toString() }, 'a delivery failed'))
      .finally(() => this.waiting--);
  }

  /** Resolves once every delivery accepted so far has been written or dropped (tests, drain). */
  settled(): Promise<void> {
    return this.deliveries;
  }

  private async runDeliverHooks(data: Uint8Array): Promise<void> {
    const state = this.deliverEvent(data);
    let result: HookResult;
    try {
      result = await this.runHooks(state.event);
    } catch (err) {
      result = this.hookFailed(err, state);
    }
    this.finishDelivery(data, state, result);
  }

  private deliverEvent(data: Uint8Array): DeliveryState {
    let parsed: Element | null = null;
    const state: DeliveryState = {
      replacement: null,
      event: {
        session: this,
        kind: stanzaKind(data),
        data,
        stanza: () => (parsed ??= parseDelivered(data)),
        replace: (el) => {
          state.replacement = el;
        },
        routing: this.rt.router,
      },
    };
    return state;
  }

  /** The hooks' decision; a hook that throws at once counts as failed, like one that rejects. */
  private runHooks(event: SessionDeliverEvent): HookResult | Promise<HookResult> {
    try {
      return this.rt.registry.runSync('session/deliver', event);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Acknowledged already: the client gets the stanza as it came rather than nothing. */
  private hookFailed(err: unknown, state: DeliveryState): HookResult {
    this.rt.logger.error({ err, jid: this.jid.toString() }, 'a session/deliver hook failed; writing the stanza as it came');
    state.replacement = null;
    return undefined;
  }

  private finishDelivery(data: Uint8Array, state: DeliveryState, result: HookResult): void {
    if (result === 'stop') return;
    if (!this.host.isBound) return;
    this.rt.metrics.stanzas.inc({ direction: 'out', kind: 'delivered' });
    this.host.send(state.replacement === null ? data : state.replacement.toString());
  }
}
