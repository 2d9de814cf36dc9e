/**
 * Runs test/e2e/py/personal.py: slixmpp with its XEP plugins (vcard-temp,
 * vCard avatars, private storage and bookmarks, last activity, entity time)
 * executing a list of steps after login; each step's outcome is a JSON event.
 */
import { readEvents } from './slixmpp.js';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HyphaeServer } from './server.js';
import { REPO_ROOT } from './server.js';

export const PERSONAL_SCRIPT = join(REPO_ROOT, 'test/e2e/py/personal.py');

export type SlixStep =
  | { op: 'get_vcard'; jid: string }
  | { op: 'publish_vcard'; fn: string; jid?: string }
  | { op: 'set_avatar'; data: string; type: string }
  | { op: 'set_bookmarks'; room: string; nick: string; name?: string }
  | { op: 'get_bookmarks' }
  | { op: 'get_private_of'; jid: string }
  | { op: 'last'; jid: string }
  | { op: 'time'; jid: string }
  | { op: 'wait_message'; body: string }
  | { op: 'unavailable'; status?: string };

export interface SlixStepEvent {
  event: string;
  i?: number;
  op?: string;
  ok?: boolean;
  condition?: string;
  error_type?: string;
  [key: string]: unknown;
}

export interface SlixStepsRun {
  /** The outcome of step i (rejects if the script exits first). */
  step(i: number): Promise<SlixStepEvent>;
  /** The first event of this kind ('bound', 'done'). */
  event(name: string): Promise<SlixStepEvent>;
  done: Promise<{ code: number | null; events: SlixStepEvent[]; stderr: string }>;
  kill(): void;
}

let python: string | null | undefined;
/** The interpreter that imports slixmpp (the order of harness/slixmpp.ts). */
function findPython(): string | null {
  if (python !== undefined) return python;
  python = null;
  for (const py of [process.env.HYPHAE_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c)) {
    try {
      execFileSync(py, ['-c', 'import slixmpp.plugins.xep_0153, slixmpp.plugins.xep_0048'], { stdio: 'ignore', timeout: 15_000 });
      python = py;
      break;
    } catch {
      // next candidate
    }
  }
  return python;
}

export function slixStepsSkipReason(): string | null {
  return findPython() ? null : 'python3 with slixmpp (and its xep_0153/xep_0048 plugins) not available: apt-get install -y python3-slixmpp';
}

export function runSlixSteps(server: HyphaeServer, opts: { jid: string; password: string; node?: number; steps: SlixStep[]; timeoutMs?: number }): SlixStepsRun {
  const py = findPython();
  if (!py) throw new Error(slixStepsSkipReason() ?? 'no python');
  const node = server.c2s[opts.node ?? 0];
  if (!node) throw new Error(`no c2s node ${opts.node}`);
  const timeoutS = (opts.timeoutMs ?? 30_000) / 1000;
  const child = spawn(py, [
    PERSONAL_SCRIPT, '--jid', opts.jid, '--password', opts.password, '--host', node.host, '--port', String(node.port),
    '--steps', JSON.stringify(opts.steps), '--timeout', String(timeoutS),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: SlixStepEvent[] = [];
  const listeners = new Set<(e: SlixStepEvent) => void>();
  let stderr = '';
  readEvents<SlixStepEvent>(child, (e) => {
    events.push(e);
    for (const l of listeners) l(e);
  }, (text) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 15) * 1000);
  const done = new Promise<{ code: number | null; events: SlixStepEvent[]; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, events, stderr });
    });
  });
  const waitFor = (pred: (e: SlixStepEvent) => boolean, what: string): Promise<SlixStepEvent> => {
    const have = events.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const l = (e: SlixStepEvent): void => {
        if (!pred(e)) return;
        listeners.delete(l);
        resolve(e);
      };
      listeners.add(l);
      void done.then((r) => {
        if (listeners.delete(l)) reject(new Error(`slixmpp exited (code ${r.code}) before ${what}; events: ${JSON.stringify(r.events)}; stderr: ${r.stderr.slice(-2000)}`));
      });
    });
  };
  return {
    step: (i) => waitFor((e) => e.event === 'step' && e.i === i, `step ${i}`),
    event: (name) => waitFor((e) => e.event === name, `'${name}'`),
    done,
    kill: () => child.kill('SIGKILL'),
  };
}
