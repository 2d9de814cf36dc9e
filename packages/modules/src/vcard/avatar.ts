/**
 * XEP-0153 vCard-Based Avatars, the server's part: the SHA-1 of the vCard's
 * PHOTO/BINVAL bytes, and `<x xmlns='vcard-temp:x:update'>` added to a
 * presence broadcast that carries none (ejabberd's mod_vcard_xupdate does
 * the same): contacts of a client that does not speak XEP-0153 still learn
 * of the avatar, and the user's other resources do not take the missing
 * element as a non-conforming resource (§4.3 rule 1).
 *
 * The hash is cached per session (loaded at bind, read at each presence)
 * and refreshed on every c2s node when the user stores a vCard: the node
 * that stored it updates its sessions at once and tells the others over the
 * bus (VCARD_CHANGED), which re-read the store. The server does not send a
 * presence of its own after a change: §3.1 and §4.2 rule 1 have the
 * client re-send presence with the new hash, which then carries it.
 */
import { createHash } from 'node:crypto';
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import { SessionKey, type ClientSession, type ModuleDeps, type StanzaOutEvent } from '@hyphae/module-api';
import type { KeyValStore } from '@hyphae/store';

export const NS_VCARD_UPDATE = 'vcard-temp:x:update';
/** Bus subject: JSON {bare}; a user stored a vCard, c2s nodes re-read its photo hash. */
export const VCARD_CHANGED = 'xmpp.events.vcard.changed';

/** What keyval('vcard') keeps per account: the element as sent, and its photo hash ('' = no photo). */
export type VcardRecord = { xml: string; photo: string };

type Bus = Pick<ModuleDeps<unknown>['bus'], 'publish' | 'subscribe'>;
type Warn = (obj: object, msg: string) => void;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The hex SHA-1 of the photo bytes (§3.1: of the image data, not of its
 * base64), '' when the vCard has no PHOTO/BINVAL or an empty one (§4.1
 * rule 3: an empty <photo/> then). Whitespace in BINVAL is ignored (§4.6
 * rule 5); anything else that is not base64 is refused with <bad-request/>.
 */
export function photoHash(vcard: Element): string {
  const binval = vcard.getChild('PHOTO')?.getChildText('BINVAL') ?? '';
  const b64 = binval.replace(/\s+/g, '');
  if (b64 === '') return '';
  if (!BASE64.test(b64)) throw new StanzaError('bad-request', 'PHOTO/BINVAL is not base64 (XEP-0153 §4.6)');
  return createHash('sha1').update(Buffer.from(b64, 'base64')).digest('hex');
}

/** A broadcast of availability: no 'to', no 'type' (RFC 6121 §4.2, §4.4). */
function isAvailableBroadcast(p: Element): boolean {
  return p.name === 'presence' && p.attrs.to === undefined && p.attrs.type === undefined;
}

/**
 * A session's photo hash, known or being read: null while the account has
 * no vCard (nothing is added then). Once known, a presence is completed
 * without waiting (the hook decides synchronously).
 */
type Photo = { known: true; hash: string | null } | { known: false; pending: Promise<string | null> };
const PHOTO = new SessionKey<Photo>('vcard-photo');

function addUpdate(p: Element, hash: string | null): void {
  if (hash === null) return;
  const x = new Element('x', { xmlns: NS_VCARD_UPDATE });
  const photo = x.c('photo');
  if (hash !== '') photo.t(hash);
  p.cnode(x);
}

export class AvatarHashes {
  private readonly local = new Map<string, Set<ClientSession>>();
  private subscription: { unsubscribe(): void } | null = null;

  constructor(
    private readonly store: KeyValStore<VcardRecord>,
    private readonly bus: Bus,
    private readonly warn: Warn,
  ) {}

  private load(bare: string): Promise<string | null> {
    return this.store.get(bare).then(
      (r) => (r === null ? null : r.photo),
      (err: unknown) => {
        this.warn({ err, bare }, 'could not read the vCard photo hash');
        return null;
      },
    );
  }

  /** Reads the hash into the session; a newer value set meanwhile (changed()) is kept. */
  private loadInto(session: ClientSession, bare: string): Photo {
    const entry: Photo = {
      known: false,
      pending: this.load(bare).then((hash) => {
        if (session.get(PHOTO) === entry) session.set(PHOTO, { known: true, hash });
        return hash;
      }),
    };
    session.set(PHOTO, entry);
    return entry;
  }

  bound(session: ClientSession): void {
    // Only nodes that hold sessions listen for changes.
    this.subscription ??= this.bus.subscribe(VCARD_CHANGED, (msg) => {
      const { bare } = JSON.parse(new TextDecoder().decode(msg.data)) as { bare: string };
      for (const s of this.local.get(bare) ?? []) this.loadInto(s, bare);
    });
    const bare = session.jid.toBareString();
    const set = this.local.get(bare) ?? new Set();
    set.add(session);
    this.local.set(bare, set);
    this.loadInto(session, bare);
  }

  unbound(session: ClientSession): void {
    const bare = session.jid.toBareString();
    const set = this.local.get(bare);
    set?.delete(session);
    if (set?.size === 0) this.local.delete(bare);
  }

  /** The user stored a vCard through this node: its sessions here now, the other nodes' on the bus. */
  changed(bare: string, photo: string): void {
    for (const s of this.local.get(bare) ?? []) s.set(PHOTO, { known: true, hash: photo });
    this.bus.publish(VCARD_CHANGED, new TextEncoder().encode(JSON.stringify({ bare })));
  }

  /** `stanza/out`: adds the update element to an available broadcast that has none (§4.1 rule 1). */
  presence(e: StanzaOutEvent): void | Promise<void> {
    const p = e.stanza;
    if (!isAvailableBroadcast(p) || p.getChild('x', NS_VCARD_UPDATE)) return;
    // A session bound before this module saw it: read lazily.
    const photo = e.session.get(PHOTO) ?? this.loadInto(e.session, e.from.toBareString());
    if (photo.known) return addUpdate(p, photo.hash);
    return photo.pending.then((hash) => addUpdate(p, hash));
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
  }
}
