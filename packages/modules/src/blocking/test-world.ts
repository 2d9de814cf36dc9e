/**
 * What the blocking unit tests run against: a real embedded store (the
 * module's map, rosters, the session registry), fake client sessions and a
 * router that records what the module asks of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid, type JID } from '@hyphae/jid';
import type { StanzaError } from '@hyphae/stanza';
import { openEmbeddedStores, type SessionEntry, type Stores, type SubscriptionState } from '@hyphae/store';
import { ModuleRegistry, parseDelivered, stanzaKind, type ClientSession, type HookResult, type ModuleInstance, type Routing, type SessionKey } from '@hyphae/module-api';
import { blockingInstance, NS_BLOCKING } from './index.js';
import type { Direction } from './context.js';

export const JULIET = 'juliet@capulet.lit';

/** A router that records pushes, routed stanzas and bounces; sessions come from the real registry. */
export class RecordingRouter {
  delivered: string[] = [];
  routed: string[] = [];
  bounces: string[] = [];
  constructor(private readonly stores: Stores) {}
  readonly routing = {
    sessions: (bare: string) => this.stores.sessions.list(bare),
    deliverToSession: async (stanza: Element) => {
      this.delivered.push(stanza.toString());
      return true;
    },
    route: async (stanza: Element, from: JID) => { this.routed.push(`${from.toString()} ${stanza.toString()}`); },
    bounce: async (stanza: Element, from: JID, err: StanzaError) => {
      this.bounces.push(`${err.condition} to ${from.toString()} for ${stanza.name} ${String(stanza.attrs.id ?? '')}`);
    },
  } as Partial<Routing> as Routing;
  clear(): void {
    this.delivered = [];
    this.routed = [];
    this.bounces = [];
  }
}

export interface FakeSession extends ClientSession {
  written: string[];
  flags: Set<string>;
}

export function fakeSession(full: string, id = full): FakeSession {
  const state = new Map<SessionKey<unknown>, unknown>();
  const written: string[] = [];
  const flags = new Set<string>();
  return {
    id, jid: parseJid(full), remoteAddress: '127.0.0.1', lastReceivedAt: 0, written, flags,
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: (data) => { written.push(String(data)); },
    setFlag: async (flag, on) => void (on ? flags.add(flag) : flags.delete(flag)),
    close: () => undefined,
  };
}

export class World {
  readonly counts: Direction[] = [];
  readonly router: RecordingRouter;
  readonly module: ModuleInstance;
  readonly registry: ModuleRegistry;
  private constructor(readonly stores: Stores, private readonly dir: string, maxItems: number) {
    this.router = new RecordingRouter(stores);
    this.module = blockingInstance({
      storage: stores.storage, rosters: stores.rosters, sessions: stores.sessions, options: { maxItems },
      count: (d) => { this.counts.push(d); },
    });
    this.registry = ModuleRegistry.of({ blocking: this.module });
  }

  static async open(maxItems = 5): Promise<World> {
    const dir = mkdtempSync(join(tmpdir(), 'hyphae-blocking-'));
    return new World(await openEmbeddedStores({ dir }), dir, maxItems);
  }

  async close(): Promise<void> {
    await this.stores.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  get routing(): Routing {
    return this.router.routing;
  }

  /** Sends a blocking iq from `from` as the router would; the result or `<condition/> type`, after running the reply's work. */
  async iq(from: string, type: 'get' | 'set', xml: string, to?: string): Promise<string> {
    const iq = parse(`<iq type='${type}' id='b1'${to ? ` to='${to}'` : ''}>${xml}</iq>`) as Element;
    const payload = iq.getChildElements()[0] as Element;
    const route = this.registry.findIq('account', type, payload.getNS(), payload.getName());
    if (!route) return 'no route';
    const sender = parseJid(from);
    try {
      const out = await route.handle({ iq, payload, from: sender, to: to ? parseJid(to) : sender.bare(), routing: this.routing });
      if (out !== null && 'after' in out) {
        await out.after();
        return String(out.payload);
      }
      return String(out);
    } catch (err) {
      if (err instanceof Error && 'condition' in err) return `<${String(err.condition)}/> ${String((err as StanzaError).type)}`;
      throw err;
    }
  }

  items(...jids: string[]): string {
    return `<block xmlns='${NS_BLOCKING}'>${jids.map((j) => `<item jid='${j}'/>`).join('')}</block>`;
  }

  async list(owner = JULIET): Promise<string[]> {
    return (await this.stores.storage.map('blocklist').all(owner)).map(([k]) => k);
  }

  async bindSession(full: string, available: boolean, presence?: string): Promise<void> {
    const jid = parseJid(full);
    const entry: SessionEntry = { resource: jid.resource, sessionId: `s-${jid.resource}`, node: 'n1', priority: 0, available, boundAt: 1 };
    if (presence !== undefined) entry.presence = presence;
    await this.stores.sessions.bind(jid.toBareString(), entry);
  }

  async rosterItem(owner: string, contact: string, subscription: SubscriptionState): Promise<void> {
    await this.stores.rosters.setItem(owner, { jid: contact, groups: [], subscription, ask: false, approved: false });
  }

  /** Runs session/deliver as the c2s node does; `parsed` tells whether the stanza was parsed. */
  async deliver(to: ClientSession, xml: string): Promise<{ result: HookResult; parsed: boolean }> {
    const data = new TextEncoder().encode(xml);
    let parsed = false;
    const result = await this.registry.runSync('session/deliver', {
      session: to, kind: stanzaKind(data), data, routing: this.routing,
      stanza: () => ((parsed = true), parseDelivered(data)), replace: () => undefined,
    });
    return { result, parsed };
  }

  async out(session: ClientSession, xml: string): Promise<HookResult> {
    const stanza = parse(xml) as Element;
    stanza.attrs.from = session.jid.toString();
    return this.registry.runSync('stanza/out', { stanza, from: session.jid, session, routing: this.routing });
  }

  async bound(session: ClientSession): Promise<void> {
    await this.registry.lifecycle('session/bound', { session, routing: this.routing }, (err) => {
      throw err;
    });
  }
}
