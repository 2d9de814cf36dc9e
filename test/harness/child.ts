/**
 * Small helpers the harnesses of other servers (Prosody, ejabberd) share:
 * reading a log that may not exist yet, a child's state, and the readiness
 * probe on a c2s port.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';

/** A file's text, or '' while it does not exist. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function isRunning(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

/** Resolves once the child has exited (at once if it has). */
export function exited(c: ChildProcess): Promise<void> {
  if (!isRunning(c)) return Promise.resolve();
  c.ref();
  return new Promise((resolve) => c.once('exit', () => resolve()));
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
  return new Promise((resolve) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
    sock.once('connect', () =>
      sock.write(
        `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
      ),
    );
    sock.on('data', (b: Buffer) => {
      reply += b.toString('utf8');
      if (/<stream:features[\s>]/.test(reply)) done(new RegExp(`from=['"]${domain.replace(/\./g, '\\.')}['"]`).test(reply));
    });
  });
}
