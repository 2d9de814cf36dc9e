/** The module's metric: stanzas withheld because of a blocklist, by direction. */
import { moduleCounter, type Counter, type Metrics } from '@hyphae/observability';

export const BLOCKED_STANZAS = 'hyphae_blocking_stanzas_total';

export function blockedCounter(metrics: Metrics): Counter<'direction'> {
  return moduleCounter(metrics.registry, {
    name: BLOCKED_STANZAS,
    help: 'Stanzas withheld by XEP-0191 blocking: in = from a blocked JID to the user (dropped or refused), out = from the user to a blocked JID (refused) or presence withheld from it',
    labelNames: ['direction'],
  });
}
