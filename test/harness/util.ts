/** Small helpers shared by the e2e test files. */
import { connect } from 'node:net';
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
    if (lines.length) {
      // One diagnostic per line: the TAP reporter escapes newlines inside one.
      t.diagnostic(`server warnings/errors (last ${lines.length}):`);
      for (const l of lines) t.diagnostic(l);
    }
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

/**
 * One Redis command over RESP on 127.0.0.1:`port` (no client library in the
 * test package): bulk/simple strings come back as strings, nil as null,
 * integers as numbers, arrays as arrays. For inspecting server state (e.g.
 * shard lease holders) in cluster tests.
 */
export function redisCommand(port: number, args: string[], timeoutMs = 5_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${args[0]} on port ${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | null, v?: unknown): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(v);
    };
    /** Parses one reply at `at`; returns [value, next offset] or null when incomplete. */
    const parse = (at: number): [unknown, number] | null => {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return null;
      const kind = String.fromCharCode(buf[at] ?? 0);
      const line = buf.toString('utf8', at + 1, eol);
      if (kind === '+') return [line, eol + 2];
      if (kind === '-') throw new Error(`redis error: ${line}`);
      if (kind === ':') return [Number(line), eol + 2];
      if (kind === '$') {
        const n = Number(line);
        if (n < 0) return [null, eol + 2];
        if (buf.length < eol + 2 + n + 2) return null;
        return [buf.toString('utf8', eol + 2, eol + 2 + n), eol + 2 + n + 2];
      }
      if (kind === '*') {
        const n = Number(line);
        if (n < 0) return [null, eol + 2];
        const out: unknown[] = [];
        let off = eol + 2;
        for (let i = 0; i < n; i++) {
          const r = parse(off);
          if (!r) return null;
          out.push(r[0]);
          off = r[1];
        }
        return [out, off];
      }
      throw new Error(`unexpected RESP reply type '${kind}'`);
    };
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const r = parse(0);
        if (r) done(null, r[0]);
      } catch (err) {
        done(err as Error);
      }
    });
    sock.on('error', (err) => done(err));
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
  });
}
