/**
 * Components: services with domains of their own (MUC at conference.<d>,
 * the bytestream proxy at proxy.<d>, …). The router hands every stanza for
 * one of their domains to the component, which delivers it over the bus.
 */
import type { Bus } from '@hyphae/bus';
import { requestWithRetry } from '@hyphae/actor';
import type { JID } from '@hyphae/jid';
import { MucRooms } from './rooms.js';

export interface Component {
  /** Whether `domain` is one of this component's. */
  serves(domain: string): boolean;
  /**
   * Hands a stamped stanza to the component and resolves once it has been
   * handled, so a sender that awaits each stanza keeps its order. Throws
   * when the component cannot be reached (the router answers the sender).
   */
  send(to: JID, data: Uint8Array): Promise<void>;
}

/** `<subdomain>.<domain>` for each served domain. */
export function subdomainsOf(domains: readonly string[], subdomain: string): string[] {
  return domains.map((d) => `${subdomain}.${d}`);
}

/**
 * A stateless component: any instance can answer, so stanzas go to one
 * subject served by a queue group (the instances share the load). Stanzas
 * that must reach one particular instance are that component's business.
 */
export class QueueComponent implements Component {
  private readonly domainSet: ReadonlySet<string>;

  constructor(private readonly bus: Bus, readonly subject: string, readonly domains: readonly string[]) {
    this.domainSet = new Set(domains);
  }

  serves(domain: string): boolean {
    return this.domainSet.has(domain);
  }

  async send(_to: JID, data: Uint8Array): Promise<void> {
    // Not idempotent in general: only "no responders" (an instance restarting) is retried.
    await requestWithRetry(this.bus, this.subject, data, { timeoutMs: 10_000, retryForMs: 5_000 });
  }
}

/** Service-level stanzas of the bytestream proxy (XEP-0065): any proxy65 instance (queue group 'proxy65'). */
export const PROXY65_SUBJECT = 'xmpp.proxy65.svc';

/** The parts of the configuration that say which components exist (structurally a HyphaeConfig). */
export interface ComponentsConfig {
  domains: readonly string[];
  muc: { enabled: boolean; shards: number; subdomain: string };
  proxy65: { enabled: boolean; subdomain: string };
}

/** The components every router of a process needs, from the configuration. */
export function componentsFor(cfg: ComponentsConfig, bus: Bus): Component[] {
  const out: Component[] = [];
  if (cfg.muc.enabled) out.push(new MucRooms(bus, cfg.muc.shards, subdomainsOf(cfg.domains, cfg.muc.subdomain)));
  if (cfg.proxy65.enabled) out.push(new QueueComponent(bus, PROXY65_SUBJECT, subdomainsOf(cfg.domains, cfg.proxy65.subdomain)));
  return out;
}
