/**
 * Drives test/e2e/py/csi.py: slixmpp with its own xep_0352 plugin, one
 * JSON command per line on stdin, one JSON event per line on stdout.
 */
import { readEvents } from './slixmpp.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, type HyphaeServer } from './server.js';
import { slixmppSkipReason } from './slixmpp.js';

const SCRIPT = join(REPO_ROOT, 'test/e2e/py/csi.py');

export interface SlixCsiEvent {
  event: string;
  [key: string]: unknown;
}

export interface SlixCsi {
  jid: string;
  /** Whether slixmpp's xep_0352 saw the <csi/> stream feature. */
  csiEnabled: boolean;
  /** The next event matching `pred`, in order of arrival (taken). */
  next(pred: (e: SlixCsiEvent) => boolean, what: string, timeoutMs?: number): Promise<SlixCsiEvent>;
  /** Events received and not taken. */
  pending(): SlixCsiEvent[];
  /** 'inactive' | 'active' (the nonza, then a ping answered) | 'quit'; resolves with its result event. */
  run(op: 'inactive' | 'active' | 'quit'): Promise<SlixCsiEvent>;
  kill(): void;
}

export const slixCsiSkipReason = slixmppSkipReason;

export async function startSlixCsi(server: HyphaeServer, opts: { jid: string; password: string; node?: number }): Promise<SlixCsi> {
  const node = server.c2s[opts.node ?? 0];
  if (!node) throw new Error(`no c2s node ${opts.node}`);
  const py = process.env.HYPHAE_PYTHON ?? '/usr/bin/python3';
  const child = spawn(py, [SCRIPT, '--jid', opts.jid, '--password', opts.password, '--host', node.host, '--port', String(node.port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const queue: SlixCsiEvent[] = [];
  const wakers = new Set<() => void>();
  let stderr = '';
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
    for (const w of wakers) w();
  });
  readEvents<SlixCsiEvent>(child, (e) => {
    queue.push(e);
    for (const w of wakers) w();
  }, (text) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  child.stdin.on('error', () => undefined);

  const next = async (pred: (e: SlixCsiEvent) => boolean, what: string, timeoutMs = 10_000): Promise<SlixCsiEvent> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = queue.findIndex(pred);
      if (i >= 0) return queue.splice(i, 1)[0] as SlixCsiEvent;
      const left = deadline - Date.now();
      if (left <= 0 || exited !== undefined) {
        const why = exited !== undefined ? `exited with ${exited}` : `timeout after ${timeoutMs} ms`;
        throw new Error(`slixmpp: ${why} waiting for ${what}; unclaimed ${JSON.stringify(queue)}; stderr ${stderr.slice(-1500)}`);
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(t);
          wakers.delete(wake);
          resolve();
        };
        const t = setTimeout(wake, left);
        wakers.add(wake);
      });
    }
  };
  let bound: SlixCsiEvent;
  try {
    bound = await next((e) => e.event === 'bound', 'login', 20_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    jid: String(bound.jid),
    csiEnabled: bound.csi === true,
    next,
    pending: () => [...queue],
    async run(op) {
      child.stdin.write(`${JSON.stringify({ op })}\n`);
      return next((e) => e.event === 'result' && e.op === op, `the result of ${op}`);
    },
    kill: () => child.kill('SIGKILL'),
  };
}
