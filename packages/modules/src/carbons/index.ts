/**
 * XEP-0280 Message Carbons (1.0.1): every resource of a user that asks for
 * it gets both sides of the user's conversations.
 *
 * - §3: the server advertises urn:xmpp:carbons:2 (and, §6,
 *   urn:xmpp:carbons:rules:0: it applies the eligibility rules of
 *   eligible.ts).
 * - §4/§5: <enable/> and <disable/> (iq set, no 'to' or the own bare JID)
 *   turn the session's registry flag 'carbons' on and off. The client edge
 *   answers them (stanza/out) through `ClientSession.setFlag`: the session
 *   keeps its flag set and its registry entry itself (other modules' flags,
 *   the re-record after a registry outage), so the flag must go through it.
 *   The iq routes answer what the edge does not take: <not-allowed/> for
 *   another account's carbons or a client not hosted here (§4.1, §5.1),
 *   <bad-request/> for type get (RFC 6120 §8.3.3.1: the elements only go
 *   in a set). Enabling twice, or disabling twice, is a result (§10.1).
 * - §7 (message/deliver, wherever the message is routed): a copy in
 *   <received/> to each flagged resource that did not get the message
 *   itself; a recipient with one session costs a length check.
 * - §8 (stanza/out, on the sender's node): a copy in <sent/> to each of the
 *   sender's other flagged resources, whether or not the sender has carbons
 *   on. A message to the user's own JID is copied once, by message/deliver
 *   (it knows which resources got it): as <sent/>, to the flagged resources
 *   other than the sender and the recipients.
 * - §9: <private/> messages are not copied; <private/> is removed before
 *   delivery when the recipient has more than one session (a SHOULD, not
 *   checked for a single session, to keep that path a length check).
 * Copies to one user leave in the order made (copies.ts).
 */
import type { Element } from 'ltx';
import { tryParseJid, type JID } from '@hyphae/jid';
import { StanzaError, errorReply, iqResult } from '@hyphae/stanza';
import type { SessionStore } from '@hyphae/store';
import { moduleCounter } from '@hyphae/observability';
import { defineModule, SessionKey, type HookResult, type IqRoute, type IqRequest, type ModuleInstance, type StanzaOutEvent, type MessageDeliverEvent } from '@hyphae/module-api';
import { NS_CARBONS, NS_CARBONS_RULES, notCopied, stripPrivate, type Direction } from './eligible.js';
import { CARBONS_FLAG, Copier, wantsCopies } from './copies.js';

export { NS_CARBONS, NS_CARBONS_RULES, NS_FORWARD, NS_HINTS, notCopied, wrap, type Direction, type NotCopied } from './eligible.js';
export { CARBONS_FLAG } from './copies.js';

export const CARBON_COPIES = 'hyphae_carbons_copies_total';

export interface CarbonsDeps {
  sessions: Pick<SessionStore, 'get' | 'update'>;
  /** A copy was handed on (metrics). */
  copied?: (direction: Direction) => void;
  warn?: (err: unknown, msg: string) => void;
}

/** The instance, and its copier for tests that wait for copies to leave. */
export interface CarbonsInstance extends ModuleInstance {
  settled(): Promise<void>;
}

/** <enable/> or <disable/> of this namespace as an iq's payload, else null. */
function toggleOf(iq: Element): boolean | null {
  const payload = iq.getChildElements()[0];
  if (payload === undefined || payload.attrs.xmlns !== NS_CARBONS) return null;
  return payload.name === 'enable' ? true : payload.name === 'disable' ? false : null;
}

function toOwnAccount(iq: Element, from: JID): boolean {
  const to = iq.attrs.to as string | undefined;
  if (to === undefined) return true;
  const jid = tryParseJid(to);
  return jid !== null && jid.isBare() && jid.toBareString() === from.toBareString();
}

/**
 * Whether this session asked for copies (absent: never asked). Routers on
 * other nodes learn a <disable/> a moment later (their cached sessions):
 * a copy that meets a session that has disabled them is dropped here.
 */
const ENABLED = new SessionKey<boolean>('carbons');
const NS_BYTES = Buffer.from(NS_CARBONS);

export function carbonsInstance(d: CarbonsDeps): CarbonsInstance {
  const warn = d.warn ?? (() => undefined);
  const copier = new Copier({ copied: d.copied ?? (() => undefined), failed: (err) => warn(err, 'a carbon copy failed') });

  /** §4/§5 at the edge: the session's own flag, then the result. */
  const toggle = (e: StanzaOutEvent): HookResult | Promise<HookResult> => {
    const on = toggleOf(e.stanza);
    if (on === null || !toOwnAccount(e.stanza, e.from)) return undefined;
    const iq = e.stanza;
    e.session.set(ENABLED, on);
    return e.session.setFlag(CARBONS_FLAG, on).then(
      () => {
        e.session.write(iqResult(iq));
        return 'stop' as const;
      },
      (err: unknown) => {
        warn(err, 'could not record the carbons flag');
        e.session.write(errorReply(iq, new StanzaError('internal-server-error', 'Could not record the setting; try again', { type: 'wait' })));
        return 'stop' as const;
      },
    );
  };

  /** §8: the sender's other flagged resources get a <sent/> copy. */
  const sent = (e: StanzaOutEvent): void => {
    const m = e.stanza;
    const to = m.attrs.to as string | undefined;
    // To the own account: message/deliver copies it, knowing which resources got it.
    if (to === undefined || notCopied(m, 'sent', true) !== null) return;
    const bare = e.from.toBareString();
    const toJid = tryParseJid(to);
    if (toJid === null || toJid.toBareString() === bare) return;
    const sender = e.from.resource;
    // The sender's sessions as the router has them cached (the usual case): no other flagged
    // resource means nothing to copy, decided without a copy of the stanza or a promise.
    const known = e.routing.sessionsNow(bare);
    if (known !== undefined && !known.some((s) => wantsCopies(s) && s.resource !== sender)) return;
    copier.sendLater(e.routing, 'sent', m, bare, (all) => all.filter((s) => wantsCopies(s) && s.resource !== sender).map((s) => s.resource));
  };

  /** §7: the recipient's flagged resources that the message does not go to get a <received/> copy. */
  const received = (e: MessageDeliverEvent): void => {
    const m = e.stanza;
    const bare = e.to.toBareString();
    const self = e.from.toBareString() === bare;
    const direction: Direction = self ? 'sent' : 'received';
    const why = notCopied(m, direction, e.from.resource !== '');
    if (why === 'private') stripPrivate(m);
    if (why !== null) return;
    const targets = new Set(e.targets.map((t) => t.sessionId));
    const resources = e.sessions
      .filter((s) => wantsCopies(s) && !targets.has(s.sessionId) && !(self && s.resource === e.from.resource))
      .map((s) => s.resource);
    copier.send(e.routing, direction, m, bare, resources);
  };

  /** What reaches the router: another account's carbons, or a request the edge did not see. */
  const route = (on: boolean) => async (req: IqRequest): Promise<null> => {
    if (req.from.toBareString() !== req.to.toBareString() || req.from.resource === '') {
      throw new StanzaError('not-allowed', 'Carbons can only be enabled or disabled by a client for itself');
    }
    const bare = req.to.toBareString();
    const entry = await d.sessions.get(bare, req.from.resource);
    if (entry === null) throw new StanzaError('item-not-found', 'No such session');
    // The registry's flags are replaced as a whole: keep the others.
    const flags = new Set(entry.flags ?? []);
    if (on) flags.add(CARBONS_FLAG);
    else flags.delete(CARBONS_FLAG);
    await d.sessions.update(bare, entry.resource, entry.sessionId, { flags: [...flags] });
    return null;
  };
  const badType = (): never => {
    throw new StanzaError('bad-request', '<enable/> and <disable/> go in an iq of type set');
  };
  const iq: IqRoute[] = [];
  for (const [name, on] of [['enable', true], ['disable', false]] as const) {
    iq.push({ target: 'account', type: 'set', xmlns: NS_CARBONS, name, handle: route(on) });
    iq.push({ target: 'account', type: 'get', xmlns: NS_CARBONS, name, handle: badType });
  }

  return {
    features: { server: [NS_CARBONS, NS_CARBONS_RULES] },
    iq,
    hooks: {
      // Synchronous but for <enable/>/<disable/>: a message costs a name check and, when it may be copied, a look at the sender's sessions off the path.
      'stanza/out': (e) => {
        const name = e.stanza.name;
        if (name === 'message') return sent(e);
        if (name === 'iq' && e.stanza.attrs.type === 'set') return toggle(e);
        return undefined;
      },
      // Only a session that enabled and then disabled carbons pays for this check.
      'session/deliver': (e) => {
        if (e.kind !== 'message' || e.session.get(ENABLED) !== false) return undefined;
        if (!Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).includes(NS_BYTES)) return undefined;
        const m = e.stanza();
        const bare = e.session.jid.toBareString();
        const wrapped = m.getChild('received', NS_CARBONS) ?? m.getChild('sent', NS_CARBONS);
        return wrapped !== undefined && m.attrs.from === bare ? 'stop' : undefined;
      },
      'message/deliver': (e) => {
        // Every session of the recipient gets the message itself: nothing to copy (one session: this check only).
        if (e.sessions.length <= e.targets.length) return undefined;
        return received(e);
      },
    },
    settled: () => copier.settled(),
  };
}

export const carbons = defineModule({
  name: 'carbons',
  description: "Message carbons: a user's resources that ask for it get copies of the messages the user sends and receives",
  specs: [{ spec: 'XEP-0280', version: '1.0.1', note: 'the §6 rules (urn:xmpp:carbons:rules:0); errors are never copied' }],
  metrics: [CARBON_COPIES],
  create: (deps) => {
    const counter = moduleCounter(deps.metrics.registry, {
      name: CARBON_COPIES,
      help: 'XEP-0280 carbon copies handed on to a resource, by direction (sent: of a message the user sent; received: of one the user got)',
      labelNames: ['direction'],
    });
    return carbonsInstance({
      sessions: deps.stores.sessions,
      copied: (direction) => counter.inc({ direction }),
      warn: (err, msg) => deps.logger.warn({ err }, msg),
    });
  },
});
