import type { HyphaeConfig } from '@hyphae/config';
import type { Stores } from '@hyphae/store';
import type { Logger } from '@hyphae/observability';
import type { KeyedMailbox } from '@hyphae/actor';
import type { ModuleView, Routing } from '@hyphae/module-api';

/** What a user actor's roster and presence work uses. */
export interface RosterContext {
  config: HyphaeConfig;
  stores: Stores;
  /** The router of the roster service that runs the operation. */
  router: Routing;
  logger: Logger;
  /** The other modules: their presence/broadcast and presence/initial hooks run from here. */
  modules: ModuleView;
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
