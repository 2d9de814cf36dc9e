/**
 * XEP-0049 Private XML Storage (1.2): any XML a user keeps on the server for
 * itself, one stored element per (namespace, element name) in
 * `map('private')` under the key `{namespace}name`. Legacy bookmarks
 * (XEP-0048 1.0, `<storage xmlns='storage:bookmarks'/>`) live here too.
 *
 * Conditions (§2.3, §3):
 * - another user's storage: <forbidden/> (the preferred of the two allowed);
 * - no child element: "Bad Format" — not a stanza error condition of RFC
 *   6120 (it is a stream one); its stanza counterpart is <bad-request/>
 *   (type modify, as in the XEP's example). The XEP's other sentence asks
 *   for "Not Acceptable" for a child without "a proper namespace": a child
 *   without its own namespace is in jabber:iq:private, a reserved one, and
 *   gets <not-acceptable/> below;
 * - a get for more than one element (§2.3: one namespace per get), or a set
 *   mixing namespaces (a set MAY carry several elements of one namespace):
 *   <bad-request/>;
 * - a reserved namespace (jabber:*, http://jabber.org/*, vcard-temp):
 *   <not-acceptable/> (optional in the XEP; done, as most servers do);
 * - an element bigger than `modules.private.maxBytes`: <not-acceptable/>.
 */
import { parse, Element } from 'ltx';
import { z } from 'zod';
import { leaf } from '@hyphae/config';
import { StanzaError, cloneElement } from '@hyphae/stanza';
import type { ModuleStorage } from '@hyphae/store';
import { defineModule, type IqRequest, type ModuleInstance } from '@hyphae/module-api';

export const NS_PRIVATE = 'jabber:iq:private';
export const NS_BOOKMARKS = 'storage:bookmarks';

const schema = z.strictObject({
  maxBytes: leaf(z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024), {
    doc: 'Largest element a user may keep in private XML storage, in bytes of its XML (a bigger one gets <not-acceptable/>)',
    expect: 'an integer from 1024 to 16777216',
  }),
});
export type PrivateOptions = z.infer<typeof schema>;

/** §2.3: namespaces reserved in Jabber. */
export function isReserved(ns: string): boolean {
  return ns.startsWith('jabber:') || ns.startsWith('http://jabber.org/') || ns === 'vcard-temp';
}

/** The storage key of an element: its namespace and local name. */
export const keyOf = (ns: string, name: string): string => `{${ns}}${name}`;

/** The children of the query, each with its namespace (a child without one is in jabber:iq:private). */
function children(query: Element): Array<{ el: Element; ns: string; key: string }> {
  return query.getChildElements().map((el) => {
    const ns = el.getNS() ?? NS_PRIVATE;
    if (isReserved(ns)) throw new StanzaError('not-acceptable', `The namespace ${ns} is reserved (XEP-0049 §2.3)`);
    return { el, ns, key: keyOf(ns, el.getName()) };
  });
}

/** The element to keep: standalone, so a prefix declared on an ancestor comes along. */
function standalone(el: Element, ns: string): string {
  const copy = cloneElement(el);
  const colon = el.name.indexOf(':');
  if (colon >= 0) copy.attrs[`xmlns:${el.name.slice(0, colon)}`] = ns;
  else copy.attrs.xmlns = ns;
  return copy.toString();
}

export function privateInstance(opts: { storage: ModuleStorage; options: PrivateOptions }): ModuleInstance {
  const store = opts.storage.map<string>('private');

  /** §3: a user's own storage only, with no 'to' or the own bare JID. */
  const owner = (req: IqRequest): string => {
    const bare = req.from.toBareString();
    if (bare !== req.to.toBareString()) throw new StanzaError('forbidden', 'Private XML storage is its owner\'s only');
    return bare;
  };

  const get = async (req: IqRequest): Promise<Element> => {
    const bare = owner(req);
    const wanted = children(req.payload);
    const [one, ...more] = wanted;
    if (!one) throw new StanzaError('bad-request', 'Name the element to retrieve');
    if (more.length > 0) throw new StanzaError('bad-request', 'One element per request (XEP-0049 §2.3)');
    const stored = await store.get(bare, one.key);
    const q = new Element('query', { xmlns: NS_PRIVATE });
    // Nothing stored: the element as it was asked for.
    q.cnode(parse(stored ?? standalone(one.el, one.ns)) as Element);
    return q;
  };

  const set = async (req: IqRequest): Promise<null> => {
    const bare = owner(req);
    const items = children(req.payload);
    const first = items[0];
    if (!first) throw new StanzaError('bad-request', 'Nothing to store');
    if (items.some((i) => i.ns !== first.ns)) throw new StanzaError('bad-request', 'The elements of one request share one namespace (XEP-0049 §2.3)');
    const entries = items.map(({ el, ns, key }) => {
      const xml = standalone(el, ns);
      if (Buffer.byteLength(xml, 'utf8') > opts.options.maxBytes) {
        throw new StanzaError('not-acceptable', `An element may have at most ${opts.options.maxBytes} bytes`);
      }
      return [key, xml] as const;
    });
    await store.setMany(bare, entries);
    return null;
  };

  return {
    features: { server: [NS_PRIVATE], account: [NS_PRIVATE] },
    iq: [
      { target: 'account', type: 'get', xmlns: NS_PRIVATE, name: 'query', handle: get },
      { target: 'account', type: 'set', xmlns: NS_PRIVATE, name: 'query', handle: set },
    ],
    hooks: {
      'account/deleted': (e) => store.clear(e.user.toBareString()),
    },
  };
}

export const privateStorage = defineModule<PrivateOptions>({
  name: 'private',
  description: 'Private XML storage for each account (and legacy bookmarks in it)',
  specs: [
    { spec: 'XEP-0049', version: '1.2' },
    {
      spec: 'XEP-0048', version: '1.2', status: 'partial',
      note: 'deprecated; bookmarks kept through private XML storage (the method of 1.0), not in PEP',
    },
  ],
  config: { key: 'private', schema },
  stores: [{ kind: 'map', name: 'private' }],
  create: (deps) => privateInstance({ storage: deps.storage, options: deps.options }),
});
