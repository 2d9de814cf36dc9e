/**
 * XEP-0012 Last Activity (2.0).
 * - To the server (§5): its uptime, the seconds since this process started
 *   (in a cluster, the process that answers: each runs the same server).
 * - To an account's bare JID (§3), answered by the server: '0' while the
 *   user has a connected resource, else the seconds since the last logout
 *   with the status of the unavailable presence sent then. Only for the user
 *   and for contacts with a subscription to the user's presence (the user's
 *   roster item for them is 'from' or 'both'); anyone else <forbidden/>
 *   (a presence leak otherwise, §8). Never logged in: <item-not-found/> —
 *   the XEP names no condition; the account exists (an unknown one gets the
 *   router's <service-unavailable/>) and the requester may see its presence,
 *   but there is no activity on record.
 * - To a full JID (§4), the client answers; but §4 says the server MUST NOT
 *   deliver the query when the requester may not see the user's presence,
 *   and answers <forbidden/> itself: `session/deliver` does that (a cheap
 *   byte search first, so other stanzas are not parsed).
 * The logout is recorded when the user's last session ends (`session/unbound`),
 * with the status of the last unavailable broadcast (`stanza/out`).
 * Sets have no meaning here: <not-allowed/> (nobody may change it).
 */
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import { tryParseJid, type JID } from '@hyphae/jid';
import type { AccountStore, ModuleStorage, RosterStore } from '@hyphae/store';
import { defineModule, SessionKey, type IqRequest, type ModuleInstance, type SessionDeliverEvent, type SessionLifecycleEvent } from '@hyphae/module-api';

export const NS_LAST = 'jabber:iq:last';
const NS_LAST_BYTES = Buffer.from(NS_LAST);

/** keyval('last'): when the user's last session ended, and the status it left with. */
export type LastRecord = { time: number; status: string };

export interface LastDeps {
  storage: ModuleStorage;
  rosters: Pick<RosterStore, 'getItem'>;
  accounts: Pick<AccountStore, 'get'>;
  now?: () => number;
}

/** The status of the session's last unavailable broadcast; cleared when it becomes available again. */
const STATUS = new SessionKey<string>('last-status');

const query = (seconds: number, status = ''): Element => {
  const q = new Element('query', { xmlns: NS_LAST, seconds: String(seconds) });
  if (status !== '') q.t(status);
  return q;
};
const notAllowed = (): never => {
  throw new StanzaError('not-allowed', 'Last activity can only be asked (get)');
};

export function lastInstance(d: LastDeps): ModuleInstance {
  const now = d.now ?? Date.now;
  const started = now();
  const store = d.storage.keyval<LastRecord>('last');

  /** §3, §8: the user, or a contact the user shares presence with. */
  const mayView = async (user: string, requester: JID): Promise<boolean> => {
    const bare = requester.toBareString();
    if (bare === user) return true;
    const item = await d.rosters.getItem(user, bare);
    return item?.subscription === 'from' || item?.subscription === 'both';
  };

  const ofAccount = async (req: IqRequest): Promise<Element> => {
    const user = req.to.toBareString();
    if (!(await mayView(user, req.from))) throw new StanzaError('forbidden', "You may not see this user's presence");
    // §3: a connected resource → 0.
    if ((await req.routing.sessions(user)).length > 0) return query(0);
    const last = await store.get(user);
    if (last === null) throw new StanzaError('item-not-found', 'No activity on record');
    return query(Math.max(0, Math.floor((now() - last.time) / 1000)), last.status);
  };

  /** §4: a query to a full JID reaches the client only from someone who may see its presence. */
  const guard = async (e: SessionDeliverEvent): Promise<'stop' | undefined> => {
    const stanza = e.stanza();
    if (stanza.attrs.type !== 'get' || !stanza.getChild('query', NS_LAST)) return undefined;
    const from = tryParseJid(String(stanza.attrs.from ?? ''));
    if (!from || (await mayView(e.session.jid.toBareString(), from))) return undefined;
    await e.routing.bounce(stanza, from, new StanzaError('forbidden', "You may not see this user's presence"));
    return 'stop';
  };

  const loggedOut = async (e: SessionLifecycleEvent): Promise<void> => {
    const { session } = e;
    const user = session.jid.toBareString();
    if ((await e.routing.sessions(user)).some((s) => s.sessionId !== session.id)) return;
    // A deleted account's sessions end after its data was forgotten: nothing to record.
    if ((await d.accounts.get(session.jid.domain, session.jid.local)) === null) return;
    await store.set(user, { time: now(), status: session.get(STATUS) ?? '' });
  };

  return {
    features: { server: [NS_LAST], account: [NS_LAST] },
    iq: [
      { target: 'host', type: 'get', xmlns: NS_LAST, name: 'query', handle: () => query(Math.floor((now() - started) / 1000)) },
      { target: 'account', type: 'get', xmlns: NS_LAST, name: 'query', handle: ofAccount },
      { target: 'host', type: 'set', xmlns: NS_LAST, name: 'query', handle: notAllowed },
      { target: 'account', type: 'set', xmlns: NS_LAST, name: 'query', handle: notAllowed },
    ],
    hooks: {
      'stanza/out': (e) => {
        const p = e.stanza;
        if (p.name !== 'presence' || p.attrs.to !== undefined) return;
        if (p.attrs.type === 'unavailable') e.session.set(STATUS, p.getChildText('status') ?? '');
        else if (p.attrs.type === undefined) e.session.set(STATUS, undefined);
      },
      'session/deliver': (e) => {
        if (e.kind !== 'iq' || !Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).includes(NS_LAST_BYTES)) return undefined;
        return guard(e);
      },
      'session/unbound': loggedOut,
      'account/deleted': async (e) => {
        await store.delete(e.user.toBareString());
      },
    },
  };
}

export const last = defineModule({
  name: 'last',
  description: "Last activity: the server's uptime, and when a user last logged out (for the user's contacts)",
  specs: [{ spec: 'XEP-0012', version: '2.0' }],
  stores: [{ kind: 'keyval', name: 'last' }],
  create: (deps) => lastInstance({ storage: deps.storage, rosters: deps.stores.rosters, accounts: deps.stores.accounts }),
});
