/**
 * RFC 6121 roster and presence, one module in two halves: at the client
 * edge (edge.ts) the user's presence and roster queries go to the user's
 * actor; in the actor (actor.ts, run by the roster service's per-user
 * mailboxes) the roster with versioning, subscriptions with pre-approval,
 * presence broadcast, probes and directed presence.
 */
import { KeyedMailbox } from '@hyphae/actor';
import { defineModule, type ModuleInstance } from '@hyphae/module-api';
import { rosterOps } from './actor.js';
import { edgeFeatures, edgeHooks } from './edge.js';
import type { RosterContext } from './context.js';

export type { RosterContext } from './context.js';

/** The module's instance; `base` is what its actor operations need (tests of the edge half may leave it out). */
export function rosterInstance(base?: Omit<RosterContext, 'router'>): ModuleInstance {
  return {
    streamFeatures: edgeFeatures,
    hooks: edgeHooks,
    ...(base ? { userOps: rosterOps(base) } : {}),
    async stop() {
      await base?.outbox.drain();
    },
  };
}

export const roster = defineModule({
  name: 'roster',
  description: 'Roster with versioning, subscriptions with pre-approval, presence broadcast, probes and directed presence',
  specs: [
    { spec: 'RFC 6121', note: 'roster, subscriptions, presence; the delivery rules are the router\'s' },
    { spec: 'RFC 6121 §4.2.2', note: 'a new resource gets the other resources\' presence' },
  ],
  // After every other stanza/out hook: the presence leaves here.
  priority: 1000,
  create: (deps) => {
    const outbox = new KeyedMailbox();
    // Work waiting for other users' actors (sampled, not counted per message).
    const sampler = setInterval(() => deps.metrics.queueDepth.set({ queue: 'roster-outbox' }, outbox.pending()), 5000);
    sampler.unref();
    const instance = rosterInstance({
      config: deps.config,
      stores: deps.stores,
      logger: deps.logger,
      // Read per operation: the registry is complete only once every module is created.
      get modules() {
        return deps.modules();
      },
      domains: new Set(deps.config.domains),
      outbox,
    });
    return {
      ...instance,
      async stop() {
        clearInterval(sampler);
        await instance.stop?.();
      },
    };
  },
});
