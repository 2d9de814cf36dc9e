/**
 * What a bound client sends (RFC 6120 §8): checked, stamped with the
 * session's full JID (§8.1.2.1: a client-supplied `from` is overridden,
 * never trusted), shown to the modules' `stanza/out` hooks (the roster
 * module hands presence and roster queries to the user's actor there), then
 * routed — one at a time, in the order received (the stream's queue).
 */
import type { Element } from 'ltx';
import { newTraceId, runWithTrace } from '@hyphae/bus';
import { NS, StanzaError, validateIq } from '@hyphae/stanza';
import type { JID } from '@hyphae/jid';
import { CORE_FEATURES, type StreamInternals } from './features/index.js';
import type { C2sSession } from './client-session.js';
import { temporaryFailure } from './errors.js';
import type { SessionEntry } from '@hyphae/store';

export const STANZAS: ReadonlySet<string> = new Set(['message', 'presence', 'iq']);

/** The stream as the outbound path sees it. */
export interface OutboundStream extends StreamInternals {
  readonly registryEntry: SessionEntry | null;
}

/** A stanza (message, presence or iq) of a bound stream. */
export async function handleStanza(stream: OutboundStream, el: Element, jid: JID, session: C2sSession): Promise<void> {
  const xmlns = el.attrs.xmlns as string | undefined;
  if (xmlns !== undefined) {
    if (xmlns !== NS.client) return stream.fail('invalid-namespace');
    delete el.attrs.xmlns; // the stream's default namespace; every edge writes stanzas without it
  }
  if (el.name === 'iq') {
    const invalid = validateIq(el);
    if (invalid) return stream.sendError(el, invalid);
  }
  for (const feature of CORE_FEATURES) {
    const handle = feature.handles?.bound;
    if (handle && (await handle(el, stream))) return;
  }
  // §8.1.2.1: the server stamps (or overrides) 'from' with the full JID.
  el.attrs.from = jid.toString();
  const started = performance.now();
  // One trace id per stanza, carried in bus headers to every service it crosses.
  const routed = await runWithTrace(newTraceId(), () => dispatch(stream, el, jid, session));
  if (routed) stream.rt.metrics.routingLatency.observe({ path: el.name }, (performance.now() - started) / 1000);
}

/** Hands the stanza on; false when a module took it, or it was refused or failed (answered with an error). */
async function dispatch(stream: OutboundStream, el: Element, jid: JID, session: C2sSession): Promise<boolean> {
  const rt = stream.rt;
  const entry = stream.registryEntry;
  if (!entry) return false;
  // Checked first: the fields would otherwise be built for every stanza.
  if (rt.logger.isLevelEnabled('debug')) rt.logger.debug({ jid: jid.toString(), kind: el.name, to: el.attrs.to, id: el.attrs.id }, 'stanza in');
  // The session's own broadcast presence: its priority checked, its availability noted (rebind).
  if (el.name === 'presence' && !el.attrs.to && !notePresence(stream, entry, el)) return false;
  try {
    if (rt.stanzaOutHooks) {
      // Synchronous while the hooks are: a chat message costs each hook one check, not a promise.
      const hooked = rt.registry.runSync('stanza/out', { stanza: el, from: jid, session, routing: rt.router });
      if ((hooked instanceof Promise ? await hooked : hooked) === 'stop') return true;
    }
    // The session as origin: a late error (after a delivery fallback) reaches it even when the registry cannot be read.
    await rt.router.route(el, jid, entry.sessionId);
  } catch (err) {
    // A store or bus outage, or an overloaded user actor, fails this stanza,
    // not the stream: the sender is told why, or to retry (invariant 2:
    // answered, never silently lost).
    rt.logger.warn({ err, jid: jid.toString(), kind: el.name }, 'routing failed');
    stream.sendError(el, err instanceof StanzaError ? err : temporaryFailure());
    return false;
  }
  return true;
}

/**
 * Checks the priority of a broadcast presence (RFC 6121 §4.7.2.3) and notes
 * availability on the stream's copy of the entry (the user actor records it
 * in the registry). False when the stanza was refused.
 */
function notePresence(stream: OutboundStream, entry: SessionEntry, el: Element): boolean {
  const type = el.attrs.type as string | undefined;
  if (type !== undefined && type !== 'unavailable') return true;
  const raw = el.getChildText('priority');
  let priority = 0;
  if (raw !== null) {
    const n = Number(raw.trim());
    if (!Number.isInteger(n) || n < -128 || n > 127) {
      stream.sendError(el, new StanzaError('bad-request', 'Priority must be an integer from -128 to 127'));
      return false;
    }
    priority = n;
  }
  entry.available = type === undefined;
  if (entry.available) {
    entry.priority = priority;
    // Kept too, so a re-record after a registry outage (rebind) still
    // answers contacts' probes (RFC 6121 §4.3.2).
    entry.presence = el.toString();
  } else {
    delete entry.presence;
  }
  return true;
}
