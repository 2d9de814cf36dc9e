/**
 * Legacy session establishment (RFC 3921 §3, kept by RFC 6121 Appendix E):
 * advertised as optional, and a no-op answered with a result once bound.
 */
import { Element } from 'ltx';
import { NS, iqResult } from '@hyphae/stanza';
import type { CoreFeature } from './types.js';

export const legacySession: CoreFeature = {
  name: 'session',
  stage: 'post-auth',
  offer: () => new Element('session', { xmlns: NS.session }).c('optional').up() as Element,
  handles: {
    bound: (el, stream) => {
      if (el.name !== 'iq' || el.attrs.type !== 'set' || el.attrs.to || !el.getChild('session', NS.session)) return false;
      const r = iqResult(el);
      delete r.attrs.from;
      stream.send(r);
      return true;
    },
  },
};
