/**
 * What every part of the s2s service works with.
 */
import { createHash } from 'node:crypto';
import type { HyphaeConfig, S2sConfig } from '@hyphae/config';
import type { Bus } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import type { Logger, Metrics } from '@hyphae/observability';
import type { Router, UserActors } from '@hyphae/router';
import { resolveServer, SrvCache, type ServerCandidate } from '@hyphae/dns';
import type { StreamParserLimits } from '@hyphae/xml';
import type { Trust } from './trust.js';

export interface S2sContext {
  config: HyphaeConfig;
  s2s: S2sConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  router: Router;
  actors: UserActors;
  trust: Trust;
  /** XEP-0185: the secret behind our dialback keys, the same on every instance. */
  dialbackSecret: string;
  limits: StreamParserLimits;
  /** Connection candidates for a remote domain (RFC 6120 §3.2, XEP-0368). */
  resolve(domain: string): Promise<ServerCandidate[]>;
  /** A domain of ours (a virtual host or a component's). */
  served(domain: string): boolean;
  blocked(domain: string): boolean;
}

/** Without a configured secret, one derived from the TLS key (shared by every instance of a deployment). */
export function dialbackSecretOf(s2s: S2sConfig, tlsKey: string): string {
  return s2s.dialbackSecret ?? createHash('sha256').update('hyphae dialback\0').update(tlsKey).digest('hex');
}

/** `domain=host:port` entries as the resolver's static overrides. */
export function staticHostsOf(routes: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of routes) {
    const at = r.indexOf('=');
    out[r.slice(0, at)] = r.slice(at + 1);
  }
  return out;
}

export function resolverFor(s2s: S2sConfig): (domain: string) => Promise<ServerCandidate[]> {
  const cache = new SrvCache();
  const staticHosts = staticHostsOf(s2s.staticRoutes);
  const servers = s2s.dnsServers.length > 0 ? s2s.dnsServers : undefined;
  return (domain) => resolveServer(domain, { staticHosts, cache, timeoutMs: Math.min(5000, s2s.connectTimeoutMs), ...(servers ? { servers } : {}) });
}
