/**
 * XEP-0280 helpers for the e2e tests: stanza builders and predicates for
 * @xmpp/client sessions, and `runSlixCarbons`, which runs
 * test/e2e/py/carbons.py (slixmpp's own xep_0280 plugin) through a list of
 * steps, one JSON event per step.
 */
import { readEvents } from './slixmpp.js';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { xml, type Session, type XmlElement } from './clients.js';
import { REPO_ROOT, type HyphaeServer } from './server.js';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
export const NS_CARBONS_RULES = 'urn:xmpp:carbons:rules:0';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const CARBONS_SCRIPT = join(REPO_ROOT, 'test/e2e/py/carbons.py');

/** Sends <enable/> or <disable/> (iq set, no 'to' unless given) and returns the answer. */
export function toggleCarbons(s: Session, what: 'enable' | 'disable', opts: { to?: string; type?: 'get' | 'set' } = {}): Promise<XmlElement> {
  const attrs: Record<string, string> = { type: opts.type ?? 'set' };
  if (opts.to !== undefined) attrs.to = opts.to;
  return s.iq(xml('iq', attrs, xml(what, { xmlns: NS_CARBONS })));
}

/** Enables carbons and fails unless the answer is a result. */
export async function enableCarbons(s: Session): Promise<void> {
  const answer = await toggleCarbons(s, 'enable');
  if (answer.attrs.type !== 'result') throw new Error(`enabling carbons for ${s.jid}: ${answer.toString()}`);
}

/** The forwarded message of a carbon copy of this direction, or null when `el` is not one. */
export function forwardedOf(el: XmlElement, direction: 'received' | 'sent'): XmlElement | null {
  if (el.name !== 'message') return null;
  return el.getChild(direction, NS_CARBONS)?.getChild('forwarded', NS_FORWARD)?.getChild('message') ?? null;
}

/** Predicate: a carbon copy of this direction whose forwarded message has this body. */
export function isCopy(direction: 'received' | 'sent', body: string): (el: XmlElement) => boolean {
  return (el) => forwardedOf(el, direction)?.getChildText('body') === body;
}

/** Predicate: any carbon copy (either direction) of a message with this body. */
export function isAnyCopy(body: string): (el: XmlElement) => boolean {
  return (el) => isCopy('received', body)(el) || isCopy('sent', body)(el);
}

export type CarbonsStep =
  | { op: 'enable' }
  | { op: 'disable' }
  | { op: 'wait_received'; body: string }
  | { op: 'wait_sent'; body: string }
  | { op: 'send'; to: string; body: string };

export interface CarbonsEvent {
  event: string;
  i?: number;
  op?: string;
  ok?: boolean;
  [key: string]: unknown;
}

export interface SlixCarbons {
  /** The outcome of step i (rejects if the script exits first). */
  step(i: number): Promise<CarbonsEvent>;
  /** The first event of this kind ('bound', 'done'). */
  event(name: string): Promise<CarbonsEvent>;
  done: Promise<{ code: number | null; events: CarbonsEvent[]; stderr: string }>;
  kill(): void;
}

let python: string | null | undefined;
function findPython(): string | null {
  if (python !== undefined) return python;
  python = null;
  for (const py of [process.env.HYPHAE_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c)) {
    try {
      execFileSync(py, ['-c', 'import slixmpp.plugins.xep_0280, slixmpp.plugins.xep_0297'], { stdio: 'ignore', timeout: 15_000 });
      python = py;
      break;
    } catch {
      // next candidate
    }
  }
  return python;
}

export function slixCarbonsSkipReason(): string | null {
  return findPython() ? null : 'python3 with slixmpp (and its xep_0280 plugin) not available: apt-get install -y python3-slixmpp';
}

export function runSlixCarbons(server: HyphaeServer, opts: { jid: string; password: string; node?: number; priority?: number; steps: CarbonsStep[]; timeoutMs?: number }): SlixCarbons {
  const py = findPython();
  if (!py) throw new Error(slixCarbonsSkipReason() ?? 'no python');
  const node = server.c2s[opts.node ?? 0];
  if (!node) throw new Error(`no c2s node ${opts.node}`);
  const timeoutS = (opts.timeoutMs ?? 30_000) / 1000;
  const child = spawn(py, [
    CARBONS_SCRIPT, '--jid', opts.jid, '--password', opts.password, '--host', node.host, '--port', String(node.port),
    '--priority', String(opts.priority ?? 0), '--steps', JSON.stringify(opts.steps), '--timeout', String(timeoutS),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: CarbonsEvent[] = [];
  const listeners = new Set<(e: CarbonsEvent) => void>();
  let stderr = '';
  readEvents<CarbonsEvent>(child, (e) => {
    events.push(e);
    for (const l of listeners) l(e);
  }, (text) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 15) * 1000);
  const done = new Promise<{ code: number | null; events: CarbonsEvent[]; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, events, stderr });
    });
  });
  const waitFor = (pred: (e: CarbonsEvent) => boolean, what: string): Promise<CarbonsEvent> => {
    const have = events.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const l = (e: CarbonsEvent): void => {
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
