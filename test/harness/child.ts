/**
 * Small helpers the harnesses of other servers (Prosody, ejabberd) share:
 * reading a log that may not exist yet, a child's state, and the readiness
 * probe on a c2s port.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { exited, isRunning, probeTcp } from '@hyphae/testkit';
import type { C2sNode } from './server.js';

/** A file's text, or '' while it does not exist. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export { isRunning, exited };

/** What the harness of another XMPP server (Prosody, ejabberd) hands a test. */
export interface ForeignServer {
  readonly domain: string;
  /** The MUC service's domain, when the server was started with one. */
  readonly mucDomain: string | undefined;
  readonly host: '127.0.0.1';
  /** c2s, STARTTLS required. */
  readonly c2sPort: number;
  /** The temporary directory (config, data, logs); removed by stop() unless HYPHAE_E2E_KEEP is set. */
  readonly dir: string;
  /** The server's own process (while running). */
  readonly pid: number;
  /** The c2s endpoint in the shape harness/clients.ts's login() takes (`login(server, {...})`). */
  readonly c2s: readonly C2sNode[];
  /** Creates an account with the server's own command line tool; works while it runs. */
  addUser(user: string, password: string): Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period; waits for the exit and removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** Whether the process is still running. */
  running(): boolean;
  /** The server's log file, then anything it wrote to stdout/stderr. */
  log(): string;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function terminate(c: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(c)) return;
  const done = exited(c);
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * One readiness probe on a c2s port: a stream header for `domain` must be
 * answered with stream features from `domain` (so it is the server we
 * started, not whoever else took the port). Never rejects.
 */
export function probeStream(port: number, domain: string): Promise<boolean> {
  const from = new RegExp(`from=['"]${domain.replace(/\./g, '\\.')}['"]`);
  return probeTcp(port, {
    send: `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
    verdict: (reply) => (/<stream:features[\s>]/.test(reply) ? from.test(reply) : undefined),
  });
}
