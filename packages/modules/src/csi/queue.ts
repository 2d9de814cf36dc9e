/**
 * XEP-0352 §3.2 server behaviour, the part that decides: what an inactive
 * session may wait for, and the per-session queue that holds it.
 *
 * Held ("can wait"): presence updates (available or unavailable; §3.2
 * "suppress presence updates until the client becomes active again") and
 * messages that carry only XEP-0085 chat states (no body, no subject), also
 * when they come as XEP-0280 carbon copies. Everything else is urgent: a
 * message with a body or anything else, an iq, a subscription request or
 * any other presence type, a presence error.
 *
 * Rules of the queue:
 * - a newer presence from a full JID replaces the older queued one of the
 *   same JID: the older is dropped, the newer goes to the end (§3.2 "push
 *   the latest presence from each contact"); the relative order of
 *   everything else that is left is the order it arrived in;
 * - an urgent stanza first flushes the queue in order, then goes out: no
 *   message is ever reordered relative to another stanza;
 * - the queue is bounded: a stanza that would make it longer than `max`
 *   flushes it all in order, itself last.
 */
import type { Element } from 'ltx';
import type { StanzaKind } from '@hyphae/module-api';

export const NS_CSI = 'urn:xmpp:csi:0';
export const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
/** Children that may come with a chat state without making the message worth waking for. */
const INCIDENTAL = new Set([NS_CHATSTATES, 'urn:xmpp:hints', 'urn:xmpp:sid:0', 'urn:xmpp:delay']);

/**
 * What a delivery is to an inactive session: the presence key (its `from`)
 * of a presence update, '' for a chat-state-only message, null when urgent.
 */
export function holdKey(kind: StanzaKind, stanza: () => Element): string | null {
  if (kind === 'presence') {
    const p = stanza();
    const type = p.attrs.type as string | undefined;
    if (type !== undefined && type !== 'unavailable') return null;
    return String(p.attrs.from ?? '');
  }
  if (kind === 'message') return chatStateOnly(unwrapCarbon(stanza())) ? '' : null;
  return null;
}

/** The forwarded message of a carbon copy (XEP-0280 §7), or the message itself. */
function unwrapCarbon(m: Element): Element {
  const wrapper = m.getChild('received', NS_CARBONS) ?? m.getChild('sent', NS_CARBONS);
  return wrapper?.getChild('forwarded', NS_FORWARD)?.getChild('message') ?? m;
}

/** XEP-0085 only: a chat state, perhaps with a thread, hints, ids or a delay; never an error. */
function chatStateOnly(m: Element): boolean {
  if (m.attrs.type === 'error') return false;
  let state = false;
  for (const child of m.getChildElements()) {
    const ns = child.getNS() ?? '';
    if (ns === NS_CHATSTATES) state = true;
    else if (child.name !== 'thread' && !INCIDENTAL.has(ns)) return false;
  }
  return state;
}

interface Held {
  key: string;
  data: Uint8Array;
}

/** One session's CSI state and its queue of held deliveries. */
export class CsiState {
  inactive = false;
  private held: Held[] = [];

  get size(): number {
    return this.held.length;
  }

  /**
   * Holds a delivery; returns how many older ones it superseded (0 or 1),
   * or -1 when the queue is full (nothing held: the caller flushes, then
   * writes this one).
   */
  hold(key: string, data: Uint8Array, max: number): number {
    let superseded = 0;
    if (key !== '') {
      const i = this.held.findIndex((h) => h.key === key);
      if (i >= 0) {
        this.held.splice(i, 1);
        superseded = 1;
      }
    }
    // Only a stanza that supersedes none can fill the queue (one that does made room).
    if (this.held.length >= max) return -1;
    // A copy: the bytes may be a view into a buffer the transport reuses.
    this.held.push({ key, data: data.slice() });
    return superseded;
  }

  /** Takes everything held, oldest first. */
  take(): Uint8Array[] {
    const out = this.held.map((h) => h.data);
    this.held = [];
    return out;
  }
}
