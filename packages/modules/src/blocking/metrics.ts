/** The module's metric: stanzas withheld because of a blocklist, by direction. */
import type { Counter, Metrics } from '@hyphae/observability';

export const BLOCKED_STANZAS = 'hyphae_blocking_stanzas_total';

type CounterClass = new (cfg: { name: string; help: string; labelNames: readonly string[]; registers: Array<Metrics['registry']> }) => Counter<'direction'>;

/**
 * Registered once per process registry. @hyphae/observability exports
 * prom-client's types, not its classes, and modules do not depend on
 * prom-client: the Counter class is taken from a counter the process made.
 */
export function blockedCounter(metrics: Metrics): Counter<'direction'> {
  const existing = metrics.registry.getSingleMetric(BLOCKED_STANZAS);
  if (existing) return existing as Counter<'direction'>;
  const CounterOf = metrics.stanzaErrors.constructor as CounterClass;
  return new CounterOf({
    name: BLOCKED_STANZAS,
    help: 'Stanzas withheld by XEP-0191 blocking: in = from a blocked JID to the user (dropped or refused), out = from the user to a blocked JID (refused) or presence withheld from it',
    labelNames: ['direction'],
    registers: [metrics.registry],
  });
}
