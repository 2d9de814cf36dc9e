/**
 * Opening a stream (RFC 6120 §4.7): the client's header is checked — its
 * framing by the transport, `to` and `version` here — and answered with our
 * header and the features of the stage: the built-in ones, then the modules'.
 */
import { Element } from 'ltx';
import type { StreamStage } from '@hyphae/module-api';
import { CORE_FEATURES, type StreamInternals } from './features/index.js';
import type { C2sRuntime } from './runtime.js';
import type { ClientTransport, FramingError } from './transport.js';

export interface StreamStartOutcome {
  /** The domain the stream is for from now on (kept for our header even when refused). */
  domain: string | null;
  /** Why the stream must end, or null to go on. */
  error: FramingError | null;
}

/** Checks a client's stream header; `current` is the domain of an earlier header on this connection. */
export function checkStreamStart(
  rt: C2sRuntime, transport: ClientTransport, current: string | null, name: string, attrs: Record<string, string>,
): StreamStartOutcome {
  const to = attrs.to;
  let domain: string | null = null;
  if (to !== undefined) {
    try {
      domain = rt.prepDomain(to);
    } catch {
      domain = null;
    }
  }
  const kept = domain && rt.domains.has(domain) && (current === null || current === domain) ? domain : current;
  const refuse = (error: FramingError): StreamStartOutcome => ({ domain: kept, error });
  const framing = transport.checkStreamStart(name, attrs);
  if (framing) return refuse(framing);
  if (to === undefined) return refuse({ condition: 'improper-addressing', text: "The stream header needs a 'to' address" });
  if (!domain || !rt.domains.has(domain)) return refuse({ condition: 'host-unknown', text: 'This server does not serve that domain' });
  if (kept !== domain) return refuse({ condition: 'not-authorized', text: "The 'to' address must stay the same across stream restarts" });
  const version = attrs.version;
  // §4.7.5: no version means pre-1.0 (unsupported); a higher major version too.
  if (version === undefined || !/^1\.\d+$/.test(version)) return refuse({ condition: 'unsupported-version', text: 'XMPP 1.0 is required' });
  return { domain: kept, error: null };
}

/** `<stream:features/>` of a stage (RFC 6120 §4.3.2): the built-in features, then the modules'. */
export function offerFeatures(stream: StreamInternals, stage: StreamStage): Element {
  const f = new Element('stream:features');
  for (const feature of CORE_FEATURES) {
    const child = feature.stage === stage ? feature.offer?.(stream) : null;
    if (child) f.cnode(child);
  }
  // Before TLS where TLS is required, STARTTLS is all there is (§5.3.1).
  if (!stream.tlsSatisfied) return f;
  for (const feature of stream.rt.registry.streamFeatures(stage)) {
    try {
      const child = feature.offer(stream);
      if (child) f.cnode(child);
    } catch (err) {
      stream.rt.logger.error({ err, conn: stream.id }, 'a module stream feature failed; not offered');
    }
  }
  return f;
}
