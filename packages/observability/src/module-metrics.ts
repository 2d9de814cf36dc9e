/**
 * Metrics a feature module registers for itself (ModuleDefinition.metrics
 * names them): created once per process registry, the same instance for a
 * second create in the same process.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface MetricSpec<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export function moduleCounter<L extends string = never>(registry: Registry, spec: MetricSpec<L>): Counter<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter<L>({ name: spec.name, help: spec.help, labelNames: spec.labelNames ?? [], registers: [registry] });
}

export function moduleGauge<L extends string = never>(registry: Registry, spec: MetricSpec<L>): Gauge<L> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing instanceof Gauge) return existing as Gauge<L>;
  return new Gauge<L>({ name: spec.name, help: spec.help, labelNames: spec.labelNames ?? [], registers: [registry] });
}
