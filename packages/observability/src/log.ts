import { pino, stdTimeFunctions, type Logger } from 'pino';

export interface LoggerOptions {
  /** Service name (c2s, sm, roster, …): every line carries it. */
  service: string;
  /** Node id from the configuration: every line carries it when given. */
  node?: string;
  /** pino level name; default 'info'. */
  level?: string;
  /** Where JSON lines go; default stdout (pino's fast synchronous destination). */
  destination?: NodeJS.WritableStream;
  /** Fields added to every line at the time it is written (e.g. the current trace id). */
  context?: () => Record<string, unknown>;
}

/**
 * A JSON logger (DESIGN.md invariant 6): one object per line with
 * `level` (as a label, e.g. "info", so log queries need no number table),
 * `time` (ISO 8601), `service`, `node`, `msg` and any bound fields.
 * pid and hostname are left out: in Kubernetes the node id and the pod name
 * already identify the process.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const base: Record<string, string> = { service: opts.service };
  if (opts.node !== undefined) base.node = opts.node;
  const options = {
    level: opts.level ?? 'info',
    base,
    timestamp: stdTimeFunctions.isoTime,
    formatters: {
      level: (label: string) => ({ level: label }),
    },
    ...(opts.context ? { mixin: opts.context } : {}),
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
