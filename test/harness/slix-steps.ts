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

export interface StepRun<E> {
  /** The outcome of step i (rejects if the script exits first). */
  step(i: number): Promise<E>;
  /** The first event of this kind ('bound', 'done'). */
  event(name: string): Promise<E>;
  done: Promise<{ code: number | null; events: E[]; stderr: string }>;
  kill(): void;
}
export type SlixStepsRun = StepRun<SlixStepEvent>;

/** The interpreter that imports slixmpp and `plugins` (the order of harness/slixmpp.ts), cached per plugin set. */
const pythons = new Map<string, string | null>();
export function findSlixPython(plugins: readonly string[]): string | null {
  const key = plugins.join(',');
  const known = pythons.get(key);
  if (known !== undefined) return known;
  let found: string | null = null;
  for (const py of [process.env.HYPHAE_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c)) {
    try {
      execFileSync(py, ['-c', `import ${plugins.map((p) => `slixmpp.plugins.${p}`).join(', ')}`], { stdio: 'ignore', timeout: 15_000 });
      found = py;
      break;
    } catch {
      // next candidate
    }
  }
  pythons.set(key, found);
  return found;
}

const PERSONAL_PLUGINS = ['xep_0153', 'xep_0048'];

export function slixStepsSkipReason(): string | null {
  return findSlixPython(PERSONAL_PLUGINS) ? null : 'python3 with slixmpp (and its xep_0153/xep_0048 plugins) not available: apt-get install -y python3-slixmpp';
}

export interface StepScript {
  script: string;
  plugins: readonly string[];
  /** Arguments after the common ones (--jid … --port) and before --steps. */
  args?: readonly string[];
}

/**
 * Runs a slixmpp step script (test/e2e/py/*.py taking --steps): one JSON
 * event per step, read as they come; `step(i)` and `event(name)` wait for
 * them and reject with the script's output if it exits first.
 */
export function runStepScript<E extends SlixStepEvent>(
  server: HyphaeServer, script: StepScript, opts: { jid: string; password: string; node?: number; steps: readonly unknown[]; timeoutMs?: number },
): StepRun<E> {
  const py = findSlixPython(script.plugins);
  if (!py) throw new Error(`python3 with slixmpp and ${script.plugins.join(', ')} not available`);
  const node = server.c2s[opts.node ?? 0];
  if (!node) throw new Error(`no c2s node ${opts.node}`);
  const timeoutS = (opts.timeoutMs ?? 30_000) / 1000;
  const child = spawn(py, [
    script.script, '--jid', opts.jid, '--password', opts.password, '--host', node.host, '--port', String(node.port),
    ...(script.args ?? []), '--steps', JSON.stringify(opts.steps), '--timeout', String(timeoutS),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: E[] = [];
  const listeners = new Set<(e: E) => void>();
  let stderr = '';
  readEvents<E>(child, (e) => {
    events.push(e);
    for (const l of listeners) l(e);
  }, (text) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 15) * 1000);
  const done = new Promise<{ code: number | null; events: E[]; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, events, stderr });
    });
  });
  const waitFor = (pred: (e: E) => boolean, what: string): Promise<E> => {
    const have = events.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const l = (e: E): void => {
        if (!pred(e)) return;
        listeners.delete(l);
        resolve(e);
      };
      listeners.add(l);
      done.then((r) => {
        if (listeners.delete(l)) reject(new Error(`slixmpp exited (code ${r.code}) before ${what}; events: ${JSON.stringify(r.events)}; stderr: ${r.stderr.slice(-2000)}`));
      }, reject);
    });
  };
  return {
    step: (i) => waitFor((e) => e.event === 'step' && e.i === i, `step ${i}`),
    event: (name) => waitFor((e) => e.event === name, `'${name}'`),
    done,
    kill: () => child.kill('SIGKILL'),
  };
}

export function runSlixSteps(server: HyphaeServer, opts: { jid: string; password: string; node?: number; steps: SlixStep[]; timeoutMs?: number }): SlixStepsRun {
  return runStepScript<SlixStepEvent>(server, { script: PERSONAL_SCRIPT, plugins: PERSONAL_PLUGINS }, opts);
}
