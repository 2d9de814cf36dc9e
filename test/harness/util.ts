/** Small helpers shared by the e2e test files. */
import type { TestContext } from 'node:test';
import type { HyphaeServer } from './server.js';

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** A pino level, numeric (30) or labelled ('info'), as a number; NaN when neither. */
export function logLevelNumber(level: unknown): number {
  if (typeof level === 'number') return level;
  if (typeof level === 'string') return LEVELS[level] ?? Number.NaN;
  return Number.NaN;
}

/** Log lines at warn level or above (pino levels ≥ 40) and non-JSON lines, the last `n`. */
export function notableLogs(server: HyphaeServer | undefined, n = 40): string[] {
  if (!server) return [];
  const out: string[] = [];
  for (const line of server.logs()) {
    if (line.includes('] --- spawn ')) continue;
    const brace = line.indexOf('{');
    if (brace < 0) {
      out.push(line);
      continue;
    }
    try {
      const rec = JSON.parse(line.slice(brace)) as { level?: unknown };
      if (logLevelNumber(rec.level) >= 40) out.push(line);
    } catch {
      out.push(line);
    }
  }
  return out.slice(-n);
}

/**
 * Runs `fn`; when it throws, attaches the server's notable log lines to the
 * test's diagnostics before rethrowing, so a failure report says what the
 * server thought.
 */
export async function withServerLogs(t: TestContext, server: HyphaeServer | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const lines = notableLogs(server);
    if (lines.length) t.diagnostic(`server warnings/errors (last ${lines.length}):\n${lines.join('\n')}`);
    throw err;
  }
}

/** Polls `probe` every `intervalMs` until it returns true; returns elapsed ms, throws after `timeoutMs`. */
export async function waitUntil(
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<number> {
  const start = Date.now();
  let lastError = '';
  for (;;) {
    try {
      if (await probe()) return Date.now() - start;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timeout after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
