/** XEP-0199 XMPP Ping: the server, and accounts on their behalf, answer with an empty result. */
import { NS } from '@hyphae/stanza';
import { defineModule, type ModuleInstance } from '@hyphae/module-api';

export function pingInstance(): ModuleInstance {
  const pong = () => null;
  return {
    features: { server: [NS.ping] },
    iq: [
      { target: 'host', type: 'get', xmlns: NS.ping, name: 'ping', handle: pong },
      { target: 'account', type: 'get', xmlns: NS.ping, name: 'ping', handle: pong },
    ],
  };
}

export const ping = defineModule({
  name: 'ping',
  description: 'Answers pings to the server and to accounts',
  specs: [{ spec: 'XEP-0199', version: '2.0.1' }],
  create: () => pingInstance(),
});
