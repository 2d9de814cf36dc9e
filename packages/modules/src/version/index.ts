/** XEP-0092 Software Version. The OS is left out on purpose (§4: it helps attackers). */
import { Element } from 'ltx';
import { NS } from '@hyphae/stanza';
import { defineModule, type ModuleInstance } from '@hyphae/module-api';

export function versionInstance(opts: { name: string; version: string }): ModuleInstance {
  return {
    features: { server: [NS.version] },
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

export const version = defineModule({
  name: 'version',
  description: 'Tells the server software and version (not the OS)',
  specs: [{ spec: 'XEP-0092', version: '1.1' }],
  create: (deps) => versionInstance({ name: 'Hyphae', version: deps.version }),
});
