/**
 * What the carbons unit tests run against: a registry of sessions by bare
 * JID, a router that records the copies handed to it (optionally slow, to
 * check their order), fake client sessions, and the hooks run as c2s and
 * the router run them.
 */
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import type { SessionEntry, SessionPatch } from '@hyphae/store';
import { ModuleRegistry, type ClientSession, type HookResult, type Routing, type SessionKey } from '@hyphae/module-api';
import { carbonsInstance, CARBONS_FLAG, NS_CARBONS, type CarbonsInstance, type Direction } from './index.js';

export const ROMEO = 'romeo@montague.example';
export const JULIET = 'juliet@capulet.example';
export const el = (xml: string): Element => parse(xml) as Element;

export function entry(resource: string, opts: { priority?: number; available?: boolean; carbons?: boolean } = {}): SessionEntry {
  const e: SessionEntry = { resource, sessionId: `s-${resource}`, node: 'n1', priority: opts.priority ?? 0, available: opts.available ?? true, boundAt: 1 };
  if (opts.carbons) e.flags = ['blocking', CARBONS_FLAG];
  return e;
}

/** Sessions by bare JID (the registry), and every copy handed to deliverToSession, in order. */
export class World {
  readonly registry = new Map<string, SessionEntry[]>();
  readonly delivered: string[] = [];
  readonly copied: Direction[] = [];
  readonly warnings: string[] = [];
  /** Delays deliverToSession for a resource (ms), to check that copies keep their order. */
  readonly slow = new Map<string, number>();
  /** Whether the fake router has the sessions cached (sessionsNow answers) or must look them up. */
  cached = true;
  /** Lookups that went to `sessions` (not answered from the cache). */
  lookups = 0;
  readonly routing = {
    sessions: async (bare: string) => {
      this.lookups++;
      return this.registry.get(bare) ?? [];
    },
    sessionsNow: (bare: string) => (this.cached ? this.registry.get(bare) ?? [] : undefined),
    deliverToSession: async (stanza: Element, bare: string, resource: string) => {
      const ms = this.slow.get(resource);
      if (ms !== undefined) await new Promise((r) => setTimeout(r, ms));
      if (!(this.registry.get(bare) ?? []).some((s) => s.resource === resource)) return false;
      this.delivered.push(stanza.toString());
      return true;
    },
  } as Partial<Routing> as Routing;
  readonly updates: Array<[string, string, SessionPatch]> = [];
  readonly module: CarbonsInstance;
  readonly reg: ModuleRegistry;
  constructor() {
    this.module = carbonsInstance({
      sessions: {
        get: async (bare, resource) => (this.registry.get(bare) ?? []).find((s) => s.resource === resource) ?? null,
        update: async (bare, resource, _sid, patch) => {
          this.updates.push([bare, resource, patch]);
          return true;
        },
      },
      copied: (d) => { this.copied.push(d); },
      warn: (_err, msg) => { this.warnings.push(msg); },
    });
    this.reg = ModuleRegistry.of({ carbons: this.module });
  }

  out(session: ClientSession, xml: string): HookResult | Promise<HookResult> {
    const stanza = el(xml);
    stanza.attrs.from = session.jid.toString();
    return this.reg.runSync('stanza/out', { stanza, from: session.jid, session, routing: this.routing });
  }

  /** message/deliver as the router runs it: `to` the recipient's bare JID, `targets` among its sessions. */
  deliver(stanza: Element, from: string, to: string, targets: string[]): HookResult | Promise<HookResult> {
    const sessions = this.registry.get(to) ?? [];
    return this.reg.runSync('message/deliver', {
      stanza, from: parseJid(from), to: parseJid(to), routing: this.routing,
      sessions, targets: sessions.filter((s) => targets.includes(s.resource)),
    });
  }

  async iq(from: string, type: 'get' | 'set', name: string, to: string): Promise<string> {
    const iq = el(`<iq type='${type}' id='c1'><${name} xmlns='${NS_CARBONS}'/></iq>`);
    const route = this.reg.findIq('account', type, NS_CARBONS, name);
    if (!route) return 'no route';
    try {
      return String(await route.handle({ iq, payload: iq.getChildElements()[0] as Element, from: parseJid(from), to: parseJid(to), routing: this.routing }));
    } catch (err) {
      const e = err as { condition?: string; type?: string };
      return `<${e.condition}/> ${e.type}`;
    }
  }
}

export interface FakeSession extends ClientSession {
  written: string[];
  flags: Set<string>;
  failFlags: boolean;
}

export function session(full: string): FakeSession {
  const state = new Map<SessionKey<unknown>, unknown>();
  const s: FakeSession = {
    id: full, jid: parseJid(full), remoteAddress: '127.0.0.1', lastReceivedAt: 0, written: [], flags: new Set(), failFlags: false,
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: (data) => { s.written.push(String(data)); },
    setFlag: async (flag, on) => {
      if (s.failFlags) throw new Error('registry down');
      if (on) s.flags.add(flag);
      else s.flags.delete(flag);
    },
    close: () => undefined,
  };
  return s;
}
