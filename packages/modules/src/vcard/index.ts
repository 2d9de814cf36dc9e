/**
 * XEP-0054 vcard-temp (1.3.0) and the server's part of XEP-0153 vCard-Based
 * Avatars (1.1.1, avatar.ts). A vCard is kept as the element the user sent
 * (`keyval('vcard')`, with its photo hash), and answered by the server on
 * the account's behalf (§3.3: never forwarded to a resource).
 *
 * What an absent vCard gets:
 * - one's own (§3.1 allows item-not-found or an empty result): an empty
 *   <vCard/>, so that a client has a vCard to fill in, and an XEP-0153 client
 *   (which must download the vCard before advertising, §4.2 rule 1) learns
 *   "no photo" without an error path;
 * - another account's (§3.3, since 1.3): <service-unavailable/>, the answer
 *   the router gives for an account that does not exist, so that the two
 *   cannot be told apart (directory harvesting);
 * - the server's: the server has no vCard, <item-not-found/> (it supports
 *   the protocol, so not service-unavailable).
 */
import { parse, type Element } from 'ltx';
import { z } from 'zod';
import { leaf } from '@hyphae/config';
import { StanzaError } from '@hyphae/stanza';
import type { ModuleStorage } from '@hyphae/store';
import { defineModule, type IqRequest, type ModuleDeps, type ModuleInstance } from '@hyphae/module-api';
import { AvatarHashes, photoHash, type VcardRecord } from './avatar.js';

export { NS_VCARD_UPDATE, VCARD_CHANGED, photoHash, type VcardRecord } from './avatar.js';
export const NS_VCARD = 'vcard-temp';

const schema = z.strictObject({
  maxBytes: leaf(z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024), {
    doc: 'Largest vCard a user may store, in bytes of its XML (a bigger one gets <not-acceptable/>)',
    expect: 'an integer from 1024 to 16777216',
  }),
  avatarHash: leaf(z.boolean().default(true), {
    doc: "XEP-0153: add the vCard photo hash to a user's presence broadcast when the client sent none",
    expect: 'true or false',
  }),
});
export type VcardOptions = z.infer<typeof schema>;

export interface VcardDeps {
  storage: ModuleStorage;
  bus: Pick<ModuleDeps<unknown>['bus'], 'publish' | 'subscribe'>;
  options: VcardOptions;
  warn?: (obj: object, msg: string) => void;
}

const empty = (): Element => parse(`<vCard xmlns='${NS_VCARD}'/>`) as Element;
const isSelf = (req: IqRequest): boolean => req.from.toBareString() === req.to.toBareString();

export function vcardInstance(d: VcardDeps): ModuleInstance {
  const store = d.storage.keyval<VcardRecord>('vcard');
  const avatars = new AvatarHashes(store, d.bus, d.warn ?? (() => undefined));

  const get = async (req: IqRequest): Promise<Element> => {
    const record = await store.get(req.to.toBareString());
    if (record !== null) return parse(record.xml) as Element;
    if (isSelf(req)) return empty();
    // §3.3: the same answer as for an account that does not exist.
    throw new StanzaError('service-unavailable');
  };

  const set = async (req: IqRequest): Promise<null> => {
    // §3.2: only one's own vCard, with no 'to' or one's own bare JID.
    if (!isSelf(req)) throw new StanzaError('forbidden', "You can only change your own vCard");
    const xml = req.payload.toString();
    if (Buffer.byteLength(xml, 'utf8') > d.options.maxBytes) {
      throw new StanzaError('not-acceptable', `A vCard may have at most ${d.options.maxBytes} bytes`);
    }
    const bare = req.from.toBareString();
    const photo = photoHash(req.payload);
    await store.set(bare, { xml, photo });
    avatars.changed(bare, photo);
    return null;
  };

  return {
    // §4: the server and the accounts it answers for.
    features: { server: [NS_VCARD], account: [NS_VCARD] },
    iq: [
      { target: 'account', type: 'get', xmlns: NS_VCARD, name: 'vCard', handle: get },
      { target: 'account', type: 'set', xmlns: NS_VCARD, name: 'vCard', handle: set },
      {
        target: 'host', type: 'get', xmlns: NS_VCARD, name: 'vCard',
        handle: () => {
          throw new StanzaError('item-not-found', 'This server has no vCard');
        },
      },
      {
        // §3.2 allows <forbidden/> or <not-allowed/>: nobody may set the server's vCard.
        target: 'host', type: 'set', xmlns: NS_VCARD, name: 'vCard',
        handle: () => {
          throw new StanzaError('not-allowed', "The server's vCard cannot be changed");
        },
      },
    ],
    hooks: {
      ...(d.options.avatarHash
        ? {
            'stanza/out': (e) => (e.stanza.name === 'presence' ? avatars.presence(e) : undefined),
            'session/bound': (e) => avatars.bound(e.session),
            'session/unbound': (e) => avatars.unbound(e.session),
          }
        : {}),
      'account/deleted': async (e) => {
        await store.delete(e.user.toBareString());
      },
    },
    stop: () => avatars.stop(),
  };
}

export const vcard = defineModule<VcardOptions>({
  name: 'vcard',
  description: 'vCards stored and served by the server; the vCard photo hash added to presence',
  specs: [
    { spec: 'XEP-0054', version: '1.3.0' },
    { spec: 'XEP-0153', version: '1.1.1', note: 'the server adds the photo hash to presence broadcasts that carry none' },
  ],
  config: { key: 'vcard', schema },
  stores: [{ kind: 'keyval', name: 'vcard' }],
  create: (deps) => vcardInstance({
    storage: deps.storage,
    bus: deps.bus,
    options: deps.options,
    warn: (obj, msg) => deps.logger.warn(obj, msg),
  }),
});
