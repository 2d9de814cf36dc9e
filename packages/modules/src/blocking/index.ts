/**
 * XEP-0191 Blocking Command (1.3): a user blocks communication with JIDs.
 *
 * - §3.1: the server advertises urn:xmpp:blocking.
 * - §3.2–§3.5 (iq.ts): <blocklist/> get, <block/> and <unblock/> sets (an
 *   empty unblock clears the list), to the user's own account only; every
 *   change is pushed to the user's resources that retrieved the list.
 *   Stored in map('blocklist'): owner bare JID → blocked JID.
 * - §3.3 (presence.ts): unavailable presence to a newly blocked contact
 *   that may see the user's presence; its current presence when unblocked.
 * - §3.3 (enforce.ts): nothing from a blocked JID reaches the user, nothing
 *   of the user's reaches it; matching per §6 (match.ts).
 * - In the user actor (here): presence broadcasts and probe answers
 *   withhold the user's presence from blocked JIDs (presence/broadcast); a
 *   message from a blocked JID to an offline user is not stored but
 *   answered <service-unavailable/> (offline/store, as §3.3 answers it when
 *   online); account/deleted forgets the list.
 *
 * - iq/account (router): an iq get/set from a blocked JID that the server
 *   would answer on the user's behalf (vCard, last activity) gets
 *   <service-unavailable/>; presence/in (user actor): a subscription request
 *   or probe from a blocked JID is neither recorded nor answered.
 *
 * Not done: §5's mapping onto XEP-0016 privacy lists (not implemented by
 * this server, so there is one store only).
 */
import { z } from 'zod';
import { leaf } from '@hyphae/config';
import { StanzaError } from '@hyphae/stanza';
import type { ModuleStorage, RosterStore, SessionStore } from '@hyphae/store';
import { defineModule, type IqRoute, type ModuleInstance } from '@hyphae/module-api';
import { NS_BLOCKING, loadList, type BlockingContext, type Direction } from './context.js';
import { blockingIq } from './iq.js';
import { enforcement } from './enforce.js';
import { isBlocked, isBlockedAddress } from './match.js';
import { blockedCounter, BLOCKED_STANZAS } from './metrics.js';

export { NS_BLOCKING, NS_BLOCKING_ERRORS, BLOCKING_FLAG } from './context.js';
export { candidates, isBlocked } from './match.js';

const schema = z.strictObject({
  maxItems: leaf(z.number().int().min(1).max(100_000).default(1000), {
    doc: 'Most JIDs one user may block (XEP-0191); a block command that would exceed it gets <policy-violation/>',
    expect: 'an integer from 1 to 100000',
  }),
});
export type BlockingOptions = z.infer<typeof schema>;

export interface BlockingDeps {
  storage: ModuleStorage;
  rosters: Pick<RosterStore, 'get'>;
  sessions: Pick<SessionStore, 'list'>;
  options: BlockingOptions;
  count?: (direction: Direction) => void;
  warn?: (err: unknown, msg: string) => void;
}

export function blockingInstance(d: BlockingDeps): ModuleInstance {
  const ctx: BlockingContext = {
    store: d.storage.map<true>('blocklist'),
    rosters: d.rosters,
    sessions: d.sessions,
    maxItems: d.options.maxItems,
    count: d.count ?? (() => undefined),
    warn: d.warn ?? (() => undefined),
  };
  const enforce = enforcement(ctx);
  const iq: readonly IqRoute[] = blockingIq(ctx);
  return {
    features: { server: [NS_BLOCKING] },
    iq,
    hooks: {
      'session/bound': enforce['session/bound'],
      'stanza/out': enforce['stanza/out'],
      'session/deliver': enforce['session/deliver'],
      'message/deliver': enforce['message/deliver'],
      'presence/broadcast': async (e) => {
        const owner = e.user.toBareString();
        const list = await loadList(ctx, owner);
        for (let i = e.recipients.length - 1; i >= 0; i--) {
          if (!isBlockedAddress(list, owner, e.recipients[i])) continue;
          e.recipients.splice(i, 1);
          ctx.count('out');
        }
      },
      'offline/store': async (e) => {
        const owner = e.user.toBareString();
        if (!e.from || !isBlocked(await loadList(ctx, owner), owner, e.from)) return undefined;
        ctx.count('in');
        await e.routing.bounce(e.stanza, e.from, new StanzaError('service-unavailable'));
        return 'stop';
      },
      // §3.3: an iq get/set from a blocked JID gets <service-unavailable/>, also one the server answers for the user (vCard, last activity).
      'iq/account': async (e) => {
        const owner = e.to.toBareString();
        if (!isBlocked(await loadList(ctx, owner), owner, e.from)) return undefined;
        ctx.count('in');
        await e.routing.bounce(e.iq, e.from, new StanzaError('service-unavailable'));
        return 'stop';
      },
      // §3.3: nothing from a blocked JID reaches the user — a subscription request is not even recorded.
      'presence/in': async (e) => {
        const owner = e.user.toBareString();
        if (!isBlocked(await loadList(ctx, owner), owner, e.from)) return undefined;
        ctx.count('in');
        return 'stop';
      },
      'account/deleted': (e) => ctx.store.clear(e.user.toBareString()),
    },
  };
}

export const blocking = defineModule<BlockingOptions>({
  name: 'blocking',
  description: 'Blocking command: users block JIDs (nothing delivered from them, nothing routed to them, presence withheld)',
  specs: [{
    spec: 'XEP-0191', version: '1.3',
    note: 'without the XEP-0016 privacy-list mapping (§5): the server has no privacy lists',
  }],
  config: { key: 'blocking', schema },
  // Before the modules that copy or keep messages (carbons, archives) and the roster's stanza/out.
  priority: -100,
  stores: [{ kind: 'map', name: 'blocklist' }],
  metrics: [BLOCKED_STANZAS],
  create: (deps) => {
    const counter = blockedCounter(deps.metrics);
    return blockingInstance({
      storage: deps.storage,
      rosters: deps.stores.rosters,
      sessions: deps.stores.sessions,
      options: deps.options,
      count: (direction) => counter.inc({ direction }),
      warn: (err, msg) => deps.logger.warn({ err }, msg),
    });
  },
});
