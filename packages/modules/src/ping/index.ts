/**
 * XEP-0199 XMPP Ping (2.0.1): the server, and accounts on their behalf,
 * answer with an empty result (§4.2 client-to-server, §4.3 to an account);
 * and the server pings clients that have gone quiet (§4.1 server-to-client,
 * idle.ts) when `modules.ping.idleSeconds` is not 0. Off, the module hooks
 * nothing: no cost per stanza or per session.
 */
import { z } from 'zod';
import { leaf } from '@hyphae/config';
import { NS } from '@hyphae/stanza';
import { moduleCounter } from '@hyphae/observability';
import { defineModule, type ModuleInstance } from '@hyphae/module-api';
import { idlePingHooks, realClock, type IdlePingOptions, type PingClock, type PingOutcome } from './idle.js';

export { PINGER, type PingClock, type PingOutcome } from './idle.js';

const schema = z.strictObject({
  idleSeconds: leaf(z.number().int().min(0).max(86_400).default(300), {
    doc: 'XEP-0199: seconds without anything from a client before the server pings it; 0 turns server-to-client pings off',
    expect: 'an integer from 0 to 86400 (0 = off)',
  }),
  timeoutSeconds: leaf(z.number().int().min(1).max(3600).default(60), {
    doc: 'XEP-0199: seconds a pinged client has to send anything before its stream ends with <connection-timeout/>',
    expect: 'an integer from 1 to 3600',
  }),
});
export type PingOptions = z.infer<typeof schema>;

export const CLIENT_PINGS = 'hyphae_ping_client_pings_total';

export interface PingInstanceOptions {
  idle?: IdlePingOptions;
  count?: (outcome: PingOutcome) => void;
  clock?: PingClock;
}

export function pingInstance(o: PingInstanceOptions = {}): ModuleInstance {
  const pong = () => null;
  const instance: ModuleInstance = {
    features: { server: [NS.ping] },
    iq: [
      { target: 'host', type: 'get', xmlns: NS.ping, name: 'ping', handle: pong },
      { target: 'account', type: 'get', xmlns: NS.ping, name: 'ping', handle: pong },
    ],
  };
  if (!o.idle || o.idle.idleSeconds === 0) return instance;
  return { ...instance, hooks: idlePingHooks(o.idle, o.count ?? (() => undefined), o.clock ?? realClock) };
}

export const ping = defineModule<PingOptions>({
  name: 'ping',
  description: 'Answers pings to the server and to accounts; pings idle clients and ends the streams that stay silent',
  specs: [{ spec: 'XEP-0199', version: '2.0.1' }],
  config: { key: 'ping', schema },
  metrics: [CLIENT_PINGS],
  create: (deps) => {
    if (deps.options.idleSeconds === 0) return pingInstance();
    const counter = moduleCounter(deps.metrics.registry, {
      name: CLIENT_PINGS,
      help: 'XEP-0199 server-to-client pings of idle clients, by outcome: sent, answered (the answer, swallowed at the edge), timeout (the stream was ended)',
      labelNames: ['outcome'],
    });
    return pingInstance({ idle: deps.options, count: (outcome) => counter.inc({ outcome }) });
  },
});
