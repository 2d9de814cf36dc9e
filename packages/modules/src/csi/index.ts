/**
 * XEP-0352 Client State Indication (1.0.0): a client tells the server
 * whether its user is looking; while not, the server holds what can wait.
 *
 * - §4.1: `<csi xmlns='urn:xmpp:csi:0'/>` is offered in the stream features
 *   after authentication (next to bind).
 * - §4.2: `<inactive/>` and `<active/>` nonzas, never answered. A stream
 *   starts active (§5 "MUST assume all clients to be in the 'active' state").
 *   Sent after authentication but before bind they are accepted and
 *   ignored: there is no session yet to hold deliveries for, and the
 *   contract gives a nonza no per-stream state to carry over to bind.
 * - §3.2 (queue.ts): while inactive, the `session/deliver` hook holds
 *   presence updates (the newest per full JID) and chat-state-only
 *   messages in a bounded queue; anything urgent flushes the queue in
 *   order first. `<active/>` flushes it before the next element of the
 *   stream is processed (§5.1 in-order processing: the c2s stream layer
 *   handles one element at a time).
 * - CSI state is the stream's own and never reaches the registry or other
 *   entities (§6 "MUST NOT reveal").
 * - What a session still holds when it ends is dropped (presence updates
 *   and chat states only; counted): the hook that ends a session runs after
 *   the stream is closed, so nothing can be written to it any more.
 *
 * Active sessions cost the deliver hook one state lookup: no parse.
 */
import { Element } from 'ltx';
import { z } from 'zod';
import { leaf } from '@hyphae/config';
import { moduleCounter, type Counter, type Metrics } from '@hyphae/observability';
import { SessionKey, defineModule, type ClientSession, type HookResult, type ModuleInstance, type SessionDeliverEvent } from '@hyphae/module-api';
import { CsiState, NS_CSI, holdKey } from './queue.js';

export { CsiState, NS_CSI, NS_CHATSTATES, holdKey } from './queue.js';

const schema = z.strictObject({
  queueMax: leaf(z.number().int().min(1).max(10_000).default(100), {
    doc: 'XEP-0352: most presence updates and chat states held for one inactive session; one more flushes them all, in order',
    expect: 'an integer from 1 to 10000',
  }),
});
export type CsiOptions = z.infer<typeof schema>;

export const CSI_QUEUED = 'hyphae_csi_queued_total';
export const CSI_FLUSHED = 'hyphae_csi_flushed_total';
export const CSI_DROPPED = 'hyphae_csi_dropped_total';

/** Why held stanzas left the queue. */
export type FlushReason = 'urgent' | 'active' | 'overflow';
export type DropReason = 'superseded' | 'session-end';

export interface CsiCounters {
  queued(kind: 'presence' | 'message'): void;
  flushed(reason: FlushReason, n: number): void;
  dropped(reason: DropReason, n: number): void;
}

export const CSI = new SessionKey<CsiState>('csi');
const feature = (): Element => new Element('csi', { xmlns: NS_CSI });
const none: CsiCounters = { queued: () => undefined, flushed: () => undefined, dropped: () => undefined };

export function csiInstance(options: CsiOptions, count: CsiCounters = none): ModuleInstance {
  const flush = (session: ClientSession, st: CsiState, reason: FlushReason): void => {
    const held = st.take();
    for (const data of held) session.write(data);
    if (held.length > 0) count.flushed(reason, held.length);
  };

  const deliver = (e: SessionDeliverEvent): HookResult => {
    const st = e.session.get(CSI);
    if (!st || !st.inactive) return undefined;
    const key = holdKey(e.kind, () => e.stanza());
    if (key === null) {
      flush(e.session, st, 'urgent');
      return undefined;
    }
    const superseded = st.hold(key, e.data, options.queueMax);
    if (superseded < 0) {
      flush(e.session, st, 'overflow');
      return undefined;
    }
    if (superseded > 0) count.dropped('superseded', superseded);
    count.queued(e.kind === 'presence' ? 'presence' : 'message');
    return 'stop';
  };

  const state = (session: ClientSession): CsiState => {
    let st = session.get(CSI);
    if (!st) session.set(CSI, (st = new CsiState()));
    return st;
  };

  return {
    streamFeatures: [{ stage: 'post-auth', offer: feature }],
    nonzas: [
      {
        stage: 'bound', xmlns: NS_CSI, name: 'inactive',
        handle: (_el, stream) => {
          if (stream.session) state(stream.session).inactive = true;
        },
      },
      {
        stage: 'bound', xmlns: NS_CSI, name: 'active',
        handle: (_el, stream) => {
          const st = stream.session?.get(CSI);
          if (!st || !stream.session) return;
          st.inactive = false;
          flush(stream.session, st, 'active');
        },
      },
      // §4.1 offers CSI before bind: a client may indicate its state then; accepted, not acted upon.
      { stage: 'post-auth', xmlns: NS_CSI, name: 'inactive', handle: () => undefined },
      { stage: 'post-auth', xmlns: NS_CSI, name: 'active', handle: () => undefined },
    ],
    hooks: {
      'session/deliver': deliver,
      'session/unbound': ({ session }) => {
        const st = session.get(CSI);
        if (!st) return;
        const n = st.take().length;
        if (n > 0) count.dropped('session-end', n);
        session.set(CSI, undefined);
      },
    },
  };
}

function counters(metrics: Metrics): CsiCounters {
  const queued: Counter<'kind'> = moduleCounter(metrics.registry, {
    name: CSI_QUEUED, help: 'XEP-0352: deliveries held for an inactive session, by kind (presence, message = chat state)', labelNames: ['kind'],
  });
  const flushed: Counter<'reason'> = moduleCounter(metrics.registry, {
    name: CSI_FLUSHED, help: 'XEP-0352: held deliveries written, by what flushed them (urgent stanza, active, full queue)', labelNames: ['reason'],
  });
  const dropped: Counter<'reason'> = moduleCounter(metrics.registry, {
    name: CSI_DROPPED, help: 'XEP-0352: held deliveries never written (superseded by a newer presence of the same JID, session ended)', labelNames: ['reason'],
  });
  return {
    queued: (kind) => queued.inc({ kind }),
    flushed: (reason, n) => flushed.inc({ reason }, n),
    dropped: (reason, n) => dropped.inc({ reason }, n),
  };
}

export const csi = defineModule<CsiOptions>({
  name: 'csi',
  description: 'Client state indication: presence updates and chat states wait while the client is inactive',
  specs: [{
    spec: 'XEP-0352', version: '1.0.0',
    note: 'holds presence updates (newest per full JID) and chat-state-only messages; <inactive/> before bind is ignored',
  }],
  config: { key: 'csi', schema },
  // After every other session/deliver hook: what it holds has passed blocking and the like already.
  priority: 900,
  metrics: [CSI_QUEUED, CSI_FLUSHED, CSI_DROPPED],
  create: (deps) => csiInstance(deps.options, counters(deps.metrics)),
});
