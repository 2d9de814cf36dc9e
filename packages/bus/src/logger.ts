/**
 * The logging surface the bus needs. A pino logger fits as is; the default
 * writes to the console so a failing handler is never silent.
 */
export interface BusLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export const consoleLogger: BusLogger = {
  warn: (obj, msg) => console.warn(`[bus] ${msg}`, obj),
  info: (obj, msg) => console.info(`[bus] ${msg}`, obj),
};
