import type { HyphaeConfig } from '@hyphae/config';
import type { Stores } from '@hyphae/store';
import type { Router, UserActors } from '@hyphae/router';
import type { Logger } from '@hyphae/observability';

/** What a user actor works with. */
export interface RosterContext {
  config: HyphaeConfig;
  stores: Stores;
  router: Router;
  actors: UserActors;
  logger: Logger;
  domains: ReadonlySet<string>;
}
