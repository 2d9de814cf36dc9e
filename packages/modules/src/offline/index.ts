/**
 * XEP-0160 offline messages, with XEP-0203 delay (RFC 6121 §8.5.2.2.1: a
 * chat or normal message with a body for a user with no available
 * resource). The router hands it to the user's actor (the `offline`
 * operation, in the user's mailbox so it orders with presence); it is kept,
 * up to `roster.offlineCap` per user, and delivered oldest first to the
 * first resource that sends initial presence (presence/initial).
 *
 * - `offline/store` runs first: modules refuse or drop a message (XEP-0191:
 *   from a blocked contact) and answer its sender themselves.
 * - The result word tells the router what to do: 'stored' nothing, 'full'
 *   and 'gone' (no such account) answer <service-unavailable/>, 'available'
 *   (a resource became available since the router looked) route it again.
 *   The actor never routes the message itself: routing could end in offline
 *   storage again, i.e. in this actor's own busy mailbox.
 * - account/deleted drops the queue.
 */
import { parse, type Element } from 'ltx';
import { tryParseJid, type JID } from '@hyphae/jid';
import { NS } from '@hyphae/stanza';
import type { OfflineStore, SessionStore, AccountStore } from '@hyphae/store';
import { defineModule, type ModuleInstance, type ModuleView, type Routing } from '@hyphae/module-api';

export interface OfflineDeps {
  offline: OfflineStore;
  sessions: Pick<SessionStore, 'list'>;
  accounts: Pick<AccountStore, 'get'>;
  /** Most messages kept per user (0: none). */
  cap: () => number;
  modules: () => Pick<ModuleView, 'has' | 'run'>;
  warn: (err: unknown, user: string, msg: string) => void;
  now?: () => Date;
}

/** The `offline` operation's answers. */
export type OfflineResult = 'stored' | 'available' | 'full' | 'gone';

/** XEP-0203 delay marking the moment the server stored the message. */
export function stampDelay(stanza: Element, domain: string, now: Date): void {
  stanza.c('delay', { xmlns: NS.delay, from: domain, stamp: now.toISOString() }).t('Offline Storage');
}

const dec = new TextDecoder();

async function store(d: OfflineDeps, user: JID, stanza: Element, routing: Routing): Promise<OfflineResult> {
  if (!(await d.accounts.get(user.domain, user.local))) return 'gone';
  const bare = user.toBareString();
  // A resource may have become available since the router looked.
  const sessions = await d.sessions.list(bare);
  if (sessions.some((s) => s.available && s.priority >= 0)) return 'available';
  const modules = d.modules();
  if (modules.has('offline/store')) {
    const from = tryParseJid(String(stanza.attrs.from ?? ''));
    if ((await modules.run('offline/store', { stanza, user, from, routing })) === 'stop') return 'stored';
  }
  const cap = d.cap();
  if (cap === 0) return 'full';
  stampDelay(stanza, user.domain, d.now?.() ?? new Date());
  return (await d.offline.push(bare, stanza.toString(), cap)) ? 'stored' : 'full';
}

export function offlineInstance(d: OfflineDeps): ModuleInstance {
  return {
    features: { server: ['msgoffline'] },
    userOps: {
      offline: (req) => store(d, req.user, parse(dec.decode(req.data)), req.routing),
    },
    hooks: {
      // Stored messages, oldest first, each already stamped with its delay.
      'presence/initial': async ({ session, routing }) => {
        const user = session.toBareString();
        for (const xml of await d.offline.take(user)) {
          try {
            await routing.deliverToSession(parse(xml), user, session.resource);
          } catch (err) {
            d.warn(err, user, 'unreadable offline message');
          }
        }
      },
      'account/deleted': ({ user }) => d.offline.deleteAll(user.toBareString()),
    },
  };
}

export const offline = defineModule({
  name: 'offline',
  description: 'Messages for a user with no available resource are kept and delivered, with their delay, at the next initial presence',
  specs: [
    { spec: 'XEP-0160', version: '1.0.1' },
    { spec: 'XEP-0203', version: '2.0', note: 'delay stamped on stored messages' },
    { spec: 'RFC 6121 §8.5.2.2.1', note: 'storage for chat and normal messages with a body' },
  ],
  create: (deps) => offlineInstance({
    offline: deps.stores.offline,
    sessions: deps.stores.sessions,
    accounts: deps.stores.accounts,
    cap: () => deps.config.roster.offlineCap,
    modules: deps.modules,
    warn: (err, user, msg) => deps.logger.warn({ err, user }, msg),
  }),
});
