/**
 * XEP-0191 helpers for end-to-end tests: blocking iqs for `Session`
 * (@xmpp/client), and `startSlixBlocking()`, which runs test/e2e/py/blocking.py
 * — slixmpp with its own xep_0191 plugin — one command at a time over stdin.
 */
import { readEvents } from './slixmpp.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Session, xml, type XmlElement } from './clients.js';
import { REPO_ROOT, type HyphaeServer } from './server.js';
import { slixmppSkipReason } from './slixmpp.js';

export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
const SCRIPT = join(REPO_ROOT, 'test/e2e/py/blocking.py');

/** `<block/>` or `<unblock/>` with one item per JID. */
export function command(name: 'block' | 'unblock', jids: readonly string[]): XmlElement {
  return xml(name, { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid })));
}

export function blocklistGet(s: Session, to?: string): Promise<XmlElement> {
  return s.iq(xml('iq', { type: 'get', ...(to ? { to } : {}) }, xml('blocklist', { xmlns: NS_BLOCKING })));
}

/** The JIDs of a blocklist result; throws on anything else. */
export async function blocklist(s: Session): Promise<string[]> {
  const r = await blocklistGet(s);
  const list = r.attrs.type === 'result' ? r.getChild('blocklist', NS_BLOCKING) : undefined;
  if (!list) throw new Error(`blocklist get answered ${r.toString()}`);
  return list.getChildren('item').map((i) => String(i.attrs.jid));
}

/** A block/unblock set; the answer. */
export function blockSet(s: Session, name: 'block' | 'unblock', jids: readonly string[], to?: string): Promise<XmlElement> {
  return s.iq(xml('iq', { type: 'set', ...(to ? { to } : {}) }, command(name, jids)));
}

/** Block or unblock, failing unless the server answers an empty result. */
export async function blockOk(s: Session, name: 'block' | 'unblock', jids: readonly string[]): Promise<void> {
  const r = await blockSet(s, name, jids);
  if (r.attrs.type !== 'result' || r.children.length > 0) throw new Error(`${name} answered ${r.toString()}`);
}

/** Predicate: a blocking push (`name`) with exactly these item JIDs, from the user's bare JID. */
export function isPush(s: Session, name: 'block' | 'unblock', jids: readonly string[]): (el: XmlElement) => boolean {
  return (el) => {
    const c = el.getChild(name, NS_BLOCKING);
    if (el.name !== 'iq' || el.attrs.type !== 'set' || !c || el.attrs.from !== s.bare || el.attrs.to !== s.jid) return false;
    return JSON.stringify(c.getChildren('item').map((i) => i.attrs.jid).sort()) === JSON.stringify([...jids].sort());
  };
}

/** Answers blocking pushes with an empty result, as a client should; the pushes stay in the inbox. */
export function acceptBlockingPushes(s: Session): Session {
  s.client.iqCallee.set(NS_BLOCKING, 'block', () => true);
  s.client.iqCallee.set(NS_BLOCKING, 'unblock', () => true);
  return s;
}

export function slixBlockingSkipReason(): string | null {
  return slixmppSkipReason();
}

export interface SlixEvent {
  event: string;
  [key: string]: unknown;
}

export interface SlixBlocking {
  /** The next event matching `pred` not taken yet (in order of arrival). */
  next(pred: (e: SlixEvent) => boolean, what: string, timeoutMs?: number): Promise<SlixEvent>;
  /** Sends a command and returns its result event. */
  run(cmd: { op: string; [key: string]: unknown }): Promise<SlixEvent>;
  /** Events received and not taken. */
  pending(): SlixEvent[];
  quit(): Promise<number | null>;
  kill(): void;
}

/** Starts the slixmpp client as `jid` (with a resource) on c2s node `node`; resolves once bound. */
export async function startSlixBlocking(server: HyphaeServer, opts: { jid: string; password: string; node?: number }): Promise<SlixBlocking> {
  const node = server.c2s[opts.node ?? 0];
  if (!node) throw new Error(`no c2s node ${opts.node}`);
  const py = process.env.HYPHAE_PYTHON ?? '/usr/bin/python3';
  const child = spawn(py, [SCRIPT, '--jid', opts.jid, '--password', opts.password, '--host', node.host, '--port', String(node.port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const queue: SlixEvent[] = [];
  const waiters: Array<{ pred: (e: SlixEvent) => boolean; resolve: (e: SlixEvent) => void }> = [];
  let stderr = '';
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((exited = code))));
  readEvents<SlixEvent>(child, (e) => {
    const w = waiters.findIndex((x) => x.pred(e));
    if (w >= 0) waiters.splice(w, 1)[0]?.resolve(e);
    else queue.push(e);
  }, (text) => {
    if (stderr.length < 64 * 1024) stderr += text;
  });
  const next = (pred: (e: SlixEvent) => boolean, what: string, timeoutMs = 10_000): Promise<SlixEvent> => {
    const i = queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as SlixEvent);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (e: SlixEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const fail = (why: string): void => {
        const k = waiters.indexOf(waiter);
        if (k < 0) return;
        waiters.splice(k, 1);
        clearTimeout(timer);
        reject(new Error(`slixmpp: ${why} waiting for ${what}; unclaimed events ${JSON.stringify(queue)}; stderr ${stderr.slice(-1500)}`));
      };
      const timer = setTimeout(() => fail(`timeout after ${timeoutMs} ms`), timeoutMs);
      waiters.push(waiter);
      void exit.then((code) => fail(`exited with ${code}`));
    });
  };
  // A write after the interpreter died must not crash the test process.
  child.stdin.on('error', () => undefined);
  const session: SlixBlocking = {
    next,
    async run(cmd) {
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
      return next((e) => e.event === 'result' && e.op === cmd.op, `the result of ${JSON.stringify(cmd)}`);
    },
    pending: () => [...queue],
    async quit() {
      if (exited === undefined) child.stdin.write('{"op":"quit"}\n');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
    kill: () => child.kill('SIGKILL'),
  };
  try {
    await next((e) => e.event === 'bound', 'login', 20_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return session;
}
