/**
 * Runs test/e2e/py/slix_client.py: slixmpp (Debian's python3-slixmpp), a
 * real client written by others, used for SCRAM-SHA-256 which @xmpp/client
 * 0.14 does not implement.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import type { HyphaeServer } from './server.js';
import { REPO_ROOT } from './server.js';


/**
 * Reads a client script's output: each stdout line is one JSON event;
 * anything else on stdout, and stderr, goes to `onText` (diagnostics).
 */
export function readEvents<E>(child: { stdout: Readable; stderr: Readable }, onEvent: (e: E) => void, onText: (text: string) => void): void {
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    rest += chunk;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      let e: E;
      try {
        e = JSON.parse(line) as E;
      } catch {
        onText(`(stdout) ${line}\n`);
        continue;
      }
      onEvent(e);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => onText(c));
}

export const SLIX_SCRIPT = join(REPO_ROOT, 'test/e2e/py/slix_client.py');

let cached: { python: string | null; reason: string } | null = null;

function findPython(): { python: string | null; reason: string } {
  if (cached) return cached;
  const candidates = [process.env.HYPHAE_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  const tried: string[] = [];
  for (const py of candidates) {
    try {
      const v = execFileSync(py, ['-c', 'import slixmpp; print(slixmpp.__version__)'], {
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 15_000,
      })
        .toString()
        .trim();
      cached = { python: py, reason: `slixmpp ${v} via ${py}` };
      return cached;
    } catch {
      tried.push(py);
    }
  }
  cached = {
    python: null,
    reason: `python3 with slixmpp not available (tried ${tried.join(', ')}; install with: apt-get install -y python3-slixmpp)`,
  };
  return cached;
}

/** Null when slixmpp can run, else the reason to skip. */
export function slixmppSkipReason(): string | null {
  const p = findPython();
  return p.python ? null : p.reason;
}

export interface SlixOptions {
  jid: string;
  password: string;
  /** Full JID of the peer to send one message to. */
  peer: string;
  body: string;
  /** Body of the message to wait for before exiting successfully. */
  expect: string;
  node?: number;
  mechanism?: string;
  timeoutMs?: number;
}

export interface SlixEvent {
  event: string;
  [key: string]: unknown;
}

export interface SlixRun {
  /** Resolves with the exit code and parsed events when the script exits. */
  done: Promise<{ code: number | null; events: SlixEvent[]; stderr: string }>;
  /** Resolves with the first event of this kind (rejects if the script exits first). */
  event(name: string): Promise<SlixEvent>;
  kill(): void;
}

export function runSlixmpp(server: HyphaeServer, opts: SlixOptions): SlixRun {
  const py = findPython().python;
  if (!py) throw new Error(findPython().reason);
  const node = server.c2s[opts.node ?? 0];
  if (!node) throw new Error(`no c2s node ${opts.node}`);
  const timeoutS = (opts.timeoutMs ?? 20_000) / 1000;
  const child = spawn(
    py,
    [
      SLIX_SCRIPT,
      '--jid', opts.jid,
      '--password', opts.password,
      '--host', node.host,
      '--port', String(node.port),
      '--peer', opts.peer,
      '--body', opts.body,
      '--expect', opts.expect,
      '--mechanism', opts.mechanism ?? 'SCRAM-SHA-256',
      '--timeout', String(timeoutS),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const events: SlixEvent[] = [];
  const listeners: Array<(e: SlixEvent) => void> = [];
  let stderr = '';
  readEvents<SlixEvent>(child, (e) => {
    events.push(e);
    for (const l of listeners) l(e);
  }, (text) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  // Hard stop: the script has its own timeout; this one guards against a wedged interpreter.
  const guard = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 15) * 1000);
  const done = new Promise<{ code: number | null; events: SlixEvent[]; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, events, stderr });
    });
  });
  return {
    done,
    event(name) {
      const have = events.find((e) => e.event === name);
      if (have) return Promise.resolve(have);
      return new Promise((resolve, reject) => {
        listeners.push((e) => {
          if (e.event === name) resolve(e);
        });
        void done.then((r) =>
          reject(new Error(`slixmpp exited (code ${r.code}) before '${name}'; events: ${JSON.stringify(r.events)}; stderr: ${r.stderr.slice(-2000)}`)),
        );
      });
    },
    kill: () => child.kill('SIGKILL'),
  };
}
