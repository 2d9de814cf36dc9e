/**
 * Iqs a client may send before authenticating, answered on the stream and
 * never routed: XEP-0077 in-band registration is the one there is, provided
 * by its module through the registry (`preAuthIq`). Only once TLS is in
 * place when TLS is required (RFC 6120 §5.3.1).
 */
import type { Element } from 'ltx';
import { NS, validateIq } from '@hyphae/stanza';
import type { PreAuthIqHandler } from '@hyphae/module-api';
import { temporaryFailure } from '../errors.js';
import type { CoreFeature, StreamInternals } from './types.js';

function handlerFor(iq: Element, stream: StreamInternals): PreAuthIqHandler | undefined {
  for (const child of iq.getChildElements()) {
    const handler = stream.rt.registry.preAuthIq(child.attrs.xmlns as string | undefined, child.name);
    if (handler) return handler;
  }
  return undefined;
}

export const preAuthIq: CoreFeature = {
  name: 'pre-auth-iq',
  stage: 'pre-auth',
  handles: {
    'pre-auth': async (el, stream) => {
      if (el.name !== 'iq' || !stream.tlsSatisfied) return false;
      const handler = handlerFor(el, stream);
      if (!handler) return false;
      const invalid = validateIq(el);
      if (invalid) {
        stream.sendError(el, invalid);
        return true;
      }
      delete el.attrs.from;
      const rt = stream.rt;
      let answer: Element;
      try {
        answer = await handler.handle(el, stream);
      } catch (err) {
        rt.logger.warn({ err, conn: stream.id, xmlns: handler.xmlns }, handler.xmlns === NS.register ? 'registration failed' : 'pre-auth iq failed');
        stream.sendError(el, temporaryFailure());
        return true;
      }
      delete answer.attrs.to;
      if (handler.xmlns === NS.register) rt.metrics.registrations.inc({ result: answer.attrs.type === 'result' ? 'ok' : 'refused' });
      stream.send(answer);
      return true;
    },
  },
};
