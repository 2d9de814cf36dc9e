import type { Histogram } from 'prom-client';

/**
 * Wraps every method of `target` so that each call's duration lands in `h`
 * under `op = <name>.<method>` (e.g. `sessions.get`), whether it resolves or
 * rejects. For narrow async interfaces such as the stores: callers keep the
 * same object shape and the latency of every backend call is observable.
 */
export function instrumentMethods<T extends object>(target: T, name: string, h: Histogram<'op'>): T {
  // One wrapper per method, made on first use: store calls are on the per-stanza path.
  const wrappers = new Map<string, { fn: unknown; wrapper: (...args: unknown[]) => unknown }>();
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const cached = wrappers.get(prop);
      if (cached && cached.fn === value) return cached.wrapper;
      const labels = { op: `${name}.${prop}` };
      const wrapper = (...args: unknown[]): unknown => {
        const started = performance.now();
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(obj, args);
        if (result instanceof Promise) {
          const done = (): void => h.observe(labels, (performance.now() - started) / 1000);
          result.then(done, done);
        }
        return result;
      };
      wrappers.set(prop, { fn: value, wrapper });
      return wrapper;
    },
  });
}
