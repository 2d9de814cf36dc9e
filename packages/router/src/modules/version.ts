/** XEP-0092 Software Version. The OS is left out on purpose (§4: it helps attackers). */
import { Element } from 'ltx';
import { NS } from '@hyphae/stanza';
import type { ServerModule } from '../types.js';

export function versionModule(opts: { name: string; version: string }): ServerModule {
  return {
    name: 'version',
    specs: [{ spec: 'XEP-0092', version: '1.1' }],
    hostFeatures: [NS.version],
    iq: [{
      target: 'host', type: 'get', xmlns: NS.version, name: 'query',
      handle: () => {
        const q = new Element('query', { xmlns: NS.version });
        q.c('name').t(opts.name);
        q.c('version').t(opts.version);
        return q;
      },
    }],
  };
}
