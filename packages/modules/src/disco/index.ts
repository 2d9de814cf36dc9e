/**
 * XEP-0030 Service Discovery for the server and for accounts. Features and
 * identities come from every module's declaration, so disco can't drift
 * from what is handled.
 */
import { Element } from 'ltx';
import { NS, StanzaError } from '@hyphae/stanza';
import type { HyphaeConfig } from '@hyphae/config';
import { defineModule, type DiscoIdentity, type IqRequest, type ModuleInstance, type ModuleView } from '@hyphae/module-api';

export interface DiscoItem {
  jid: string;
  name?: string;
}

export interface DiscoOptions {
  /** Every module of the process (this one included), read at query time. */
  modules: () => ModuleView;
  /** Items the server lists (services such as MUC or the proxy). */
  items?: (domain: string) => DiscoItem[];
  serverName?: string;
}

export const DISCO_FEATURES = [NS.discoInfo, NS.discoItems];

/** A disco#info result (XEP-0030 §3.1): identities, then features. */
export function discoInfo(identities: readonly DiscoIdentity[], features: readonly string[], node?: string): Element {
  const q = new Element('query', node === undefined ? { xmlns: NS.discoInfo } : { xmlns: NS.discoInfo, node });
  for (const i of identities) q.c('identity', { ...i });
  for (const f of features) q.c('feature', { var: f });
  return q;
}

export function discoInstance(opts: DiscoOptions): ModuleInstance {
  // §3.1: a node we don't know is <item-not-found/>.
  const checkNode = (q: Element) => {
    if (q.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
  };

  // A node of the host: the first module that claims it answers (ModuleInstance.hostDiscoNode).
  const hostNode = async (kind: 'info' | 'items', req: IqRequest): Promise<Element | null> => {
    const node = req.payload.attrs.node as string | undefined;
    if (node === undefined) return null;
    const children = await opts.modules().hostDiscoNode(kind, node, req);
    if (!children) throw new StanzaError('item-not-found', 'No such node');
    const q = new Element('query', { xmlns: kind === 'info' ? NS.discoInfo : NS.discoItems, node });
    for (const c of children) q.cnode(c);
    return q;
  };

  return {
    features: { server: DISCO_FEATURES, account: DISCO_FEATURES },
    identities: { server: [{ category: 'server', type: 'im', name: opts.serverName ?? 'Hyphae' }], account: [{ category: 'account', type: 'registered' }] },
    iq: [
      {
        target: 'host', type: 'get', xmlns: NS.discoInfo, name: 'query',
        handle: async (req) => {
          const node = await hostNode('info', req);
          if (node) return node;
          const m = opts.modules();
          return discoInfo(m.identities('server'), m.features('server'));
        },
      },
      {
        target: 'host', type: 'get', xmlns: NS.discoItems, name: 'query',
        handle: async (req) => {
          const node = await hostNode('items', req);
          if (node) return node;
          const q = new Element('query', { xmlns: NS.discoItems });
          for (const item of opts.items?.(req.to.domain) ?? []) q.c('item', { ...item });
          return q;
        },
      },
      {
        // XEP-0030 §3.1 / RFC 6121 §8.5.1: the server answers for the account.
        target: 'account', type: 'get', xmlns: NS.discoInfo, name: 'query',
        handle: ({ payload }) => {
          checkNode(payload);
          const m = opts.modules();
          return discoInfo(m.identities('account'), m.features('account'));
        },
      },
      {
        target: 'account', type: 'get', xmlns: NS.discoItems, name: 'query',
        handle: ({ payload }) => {
          checkNode(payload);
          return new Element('query', { xmlns: NS.discoItems });
        },
      },
    ],
  };
}

/** The services a domain lists (XEP-0045 §6.1: the chat service is found through the server's items). */
export function serviceItems(config: HyphaeConfig, domain: string): DiscoItem[] {
  return [
    ...(config.muc.enabled ? [{ jid: `${config.muc.subdomain}.${domain}`, name: 'Chatrooms' }] : []),
    ...(config.proxy65.enabled ? [{ jid: `${config.proxy65.subdomain}.${domain}`, name: 'File transfer proxy' }] : []),
  ];
}

export const disco = defineModule({
  name: 'disco',
  description: 'Service discovery of the server and of accounts, from every module\'s declaration',
  specs: [{ spec: 'XEP-0030', version: '2.5rc3' }],
  create: (deps) => discoInstance({ modules: deps.modules, items: (domain) => serviceItems(deps.config, domain) }),
});
