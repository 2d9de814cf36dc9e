/**
 * XEP-0030 Service Discovery for the server and for accounts. Features come
 * from every module's declaration, so disco can't drift from what is handled.
 */
import { Element } from 'ltx';
import { NS, StanzaError } from '@hyphae/stanza';
import type { IqRequest, ServerModule } from '../types.js';

export interface DiscoItem {
  jid: string;
  name?: string;
}

export interface DiscoOptions {
  /** Every module of the host (this one included), read at query time. */
  modules: () => readonly ServerModule[];
  /** Items the server lists (components such as MUC or the proxy, later). */
  items?: (domain: string) => DiscoItem[];
  serverName?: string;
}

function features(list: Iterable<string>): string[] {
  return [...new Set(list)].sort();
}

export function discoModule(opts: DiscoOptions): ServerModule {
  const hostFeatures = () => features(opts.modules().flatMap((m) => m.hostFeatures ?? []));
  const accountFeatures = () => features(opts.modules().flatMap((m) => m.accountFeatures ?? []));

  // §3.1: a node we don't know is <item-not-found/>.
  const checkNode = (q: Element) => {
    if (q.attrs.node !== undefined) throw new StanzaError('item-not-found', 'No such node');
  };

  // A node of the host: the first module that claims it answers (ServerModule.hostDiscoNode).
  const hostNode = async (kind: 'info' | 'items', req: IqRequest): Promise<Element | null> => {
    const node = req.payload.attrs.node as string | undefined;
    if (node === undefined) return null;
    for (const m of opts.modules()) {
      const children = await m.hostDiscoNode?.(kind, node, req);
      if (!children) continue;
      const q = new Element('query', { xmlns: kind === 'info' ? NS.discoInfo : NS.discoItems, node });
      for (const c of children) q.cnode(c);
      return q;
    }
    throw new StanzaError('item-not-found', 'No such node');
  };

  const info = (identity: { category: string; type: string; name?: string }, feats: string[]) => {
    const q = new Element('query', { xmlns: NS.discoInfo });
    q.c('identity', identity);
    for (const f of feats) q.c('feature', { var: f });
    return q;
  };

  return {
    name: 'disco',
    specs: [{ spec: 'XEP-0030', version: '2.5rc3' }],
    hostFeatures: [NS.discoInfo, NS.discoItems],
    accountFeatures: [NS.discoInfo, NS.discoItems],
    iq: [
      {
        target: 'host', type: 'get', xmlns: NS.discoInfo, name: 'query',
        handle: async (req) => {
          const node = await hostNode('info', req);
          if (node) return node;
          return info({ category: 'server', type: 'im', name: opts.serverName ?? 'Hyphae' }, hostFeatures());
        },
      },
      {
        target: 'host', type: 'get', xmlns: NS.discoItems, name: 'query',
        handle: async (req) => {
          const node = await hostNode('items', req);
          if (node) return node;
          const q = new Element('query', { xmlns: NS.discoItems });
          const { to } = req;
          for (const item of opts.items?.(to.domain) ?? []) q.c('item', { ...item });
          return q;
        },
      },
      {
        // XEP-0030 §3.1 / RFC 6121 §8.5.1: the server answers for the account.
        target: 'account', type: 'get', xmlns: NS.discoInfo, name: 'query',
        handle: ({ payload }) => {
          checkNode(payload);
          return info({ category: 'account', type: 'registered' }, accountFeatures());
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
