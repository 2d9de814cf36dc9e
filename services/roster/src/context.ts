import type { HyphaeConfig } from '@hyphae/config';
import type { Stores } from '@hyphae/store';
import type { Router, UserActors } from '@hyphae/router';
import type { Logger } from '@hyphae/observability';
import type { KeyedMailbox } from '@hyphae/actor';
import type { ModuleRegistry } from '@hyphae/module-api';

/** What a user actor works with. */
export interface RosterContext {
  config: HyphaeConfig;
  stores: Stores;
  router: Router;
  actors: UserActors;
  logger: Logger;
  /** The process's modules: their user-actor operations and presence/offline hooks run here. */
  registry: ModuleRegistry;
  domains: ReadonlySet<string>;
  /**
   * Work for another user's actor, per target user, in order. A handler
   * never waits for another actor inside its own mailbox: two users
   * subscribing to each other at once would wait for each other forever.
   */
  outbox: KeyedMailbox;
}

/** Queues `work` for `target` behind earlier work for it; failures are logged, not thrown. */
export function later(ctx: RosterContext, target: string, work: () => Promise<void>): void {
  ctx.outbox.run(target, work).catch((err: unknown) => ctx.logger.warn({ err, target }, 'work for another user failed'));
}
