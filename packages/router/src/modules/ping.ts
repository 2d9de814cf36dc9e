/** XEP-0199 XMPP Ping: the server, and accounts on their behalf, answer with an empty result. */
import { NS } from '@hyphae/stanza';
import type { ServerModule } from '../types.js';

export function pingModule(): ServerModule {
  const pong = () => null;
  return {
    name: 'ping',
    specs: [{ spec: 'XEP-0199', version: '2.0.1' }],
    hostFeatures: [NS.ping],
    iq: [
      { target: 'host', type: 'get', xmlns: NS.ping, name: 'ping', handle: pong },
      { target: 'account', type: 'get', xmlns: NS.ping, name: 'ping', handle: pong },
    ],
  };
}
