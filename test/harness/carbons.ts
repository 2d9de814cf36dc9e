/**
 * XEP-0280 helpers for the e2e tests: stanza builders and predicates for
 * @xmpp/client sessions, and `runSlixCarbons`, which runs
 * test/e2e/py/carbons.py (slixmpp's own xep_0280 plugin) through a list of
 * steps, one JSON event per step.
 */
import { findSlixPython, runStepScript, type SlixStepEvent, type StepRun } from './slix-steps.js';
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

export type CarbonsEvent = SlixStepEvent;
export type SlixCarbons = StepRun<CarbonsEvent>;

const CARBONS_PLUGINS = ['xep_0280', 'xep_0297'];

export function slixCarbonsSkipReason(): string | null {
  return findSlixPython(CARBONS_PLUGINS) ? null : 'python3 with slixmpp (and its xep_0280 plugin) not available: apt-get install -y python3-slixmpp';
}

export function runSlixCarbons(server: HyphaeServer, opts: { jid: string; password: string; node?: number; priority?: number; steps: CarbonsStep[]; timeoutMs?: number }): SlixCarbons {
  const args = ['--priority', String(opts.priority ?? 0)];
  return runStepScript<CarbonsEvent>(server, { script: CARBONS_SCRIPT, plugins: CARBONS_PLUGINS, args }, opts);
}
