import type { HyphaeConfig } from '@hyphae/config';
import type { Bus } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import type { Router } from '@hyphae/router';
import type { Logger, Metrics } from '@hyphae/observability';
import type { KeyedMailbox } from '@hyphae/actor';
import type { ConfigLimits } from './logic/config.js';

/** What a room actor works with. */
export interface MucContext {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  router: Router;
  logger: Logger;
  metrics: Metrics;
  limits: ConfigLimits;
  /** Domains of local users (the server's), for "is this user ours". */
  domains: ReadonlySet<string>;
  /**
   * Stanzas for entities that are not occupants with a known session go
   * through the router, per target, in order, after the handler returns: a
   * room actor never waits for another actor (a user actor may be waiting
   * for this room at that very moment).
   */
  outbox: KeyedMailbox;
  now(): number;
}
