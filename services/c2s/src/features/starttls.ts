/**
 * STARTTLS (RFC 6120 §5): offered while the connection is in the clear and
 * the transport can upgrade in place, marked required when `c2s.requireTls`.
 */
import { Element } from 'ltx';
import { NS } from '@hyphae/stanza';
import type { CoreFeature } from './types.js';

export const starttls: CoreFeature = {
  name: 'starttls',
  stage: 'pre-auth',
  offer(stream) {
    if (stream.secure || !stream.transport.canStartTls) return null;
    const el = new Element('starttls', { xmlns: NS.tls });
    if (stream.rt.config.c2s.requireTls) el.c('required');
    return el;
  },
  handles: {
    'pre-auth': (el, stream) => {
      if (el.name !== 'starttls' || el.attrs.xmlns !== NS.tls) return false;
      if (stream.secure) stream.fail('policy-violation', 'TLS is already in place');
      else if (!stream.transport.canStartTls || !stream.transport.startTls) stream.fail('policy-violation', 'STARTTLS is not available on this transport');
      else {
        stream.send(new Element('proceed', { xmlns: NS.tls }));
        stream.upgradeTls();
      }
      return true;
    },
  },
};
