/**
 * @hyphae/proxy65 — the XEP-0065 SOCKS5 bytestream proxy at
 * `<proxy65.subdomain>.<domain>` (default `proxy.`) for every served domain.
 *
 * Every instance answers the service's stanzas and runs its own SOCKS5
 * listener; its streamhost answer names its own address
 * (`proxy65.advertisedHost`/`advertisedPort`, else `host` and the port
 * listened on). The first connection for a hash H makes its instance the
 * *holder* of H; the second party's connection, wherever it lands (another
 * instance's address under the same StreamHost JID, or any pod behind one
 * load-balanced address), is forwarded to the holder over TCP by the
 * instance it reached (a plain wire: pairing, limits, activation and relay
 * all happen at the holder). The activation iq may be handled by any
 * instance, which finds the holder over the bus.
 *
 * Subjects:
 *
 * | subject | payload | publisher → subscriber |
 * |---|---|---|
 * | `xmpp.proxy65.svc` | the stamped stanza to `proxy.<domain>` (bus request, empty reply once handled) | router (any service) → any proxy65 instance (queue group `proxy65`) |
 * | `xmpp.proxy65.stream.<H>` | request; header `hy-op: activate` (default): JSON `{sid, requester, requesterBare, target}`, reply header `hy-result`: `ok`, `one-side`, `active`, `limit`, `gone`; `hy-op: locate`: no payload, reply `hy-result: here` with JSON `{host, port}` (the holder's listener as instances reach it) or `full` | the instance handling an activate iq, or an instance that got a first connection for `<H>` → the holder of `<H>` (plain subscription from the first connection for `<H>` until the stream ends) |
 * | `xmpp.proxy65.sid.<sid>` | request, JSON `{requester}`; reply header `hy-result`: `requester` (a stream with this sid has this requester) or `other` | the instance handling an activate iq whose hash nobody holds → the instances that learned this StreamID (plain subscription from the first activation request that reached the stream until the stream ends) |
 *
 * `<H>` = hex SHA1(SID + requester full JID + target JID) in lower case
 * (XEP-0065 §6.3.2), `<sid>` = `encodeToken(SID)` (package jid). "No
 * responders" on `stream.<H>` means nobody holds H: for a connection, this
 * instance becomes the holder; for an activation, the sid subject is asked.
 * A holder only learns a stream's SID from an activation request (the
 * SOCKS5 side only carries the hash), so the sid subject distinguishes
 * "right requester, wrong target" (`<not-authorized/>`, the hashes do not
 * match) from "unknown stream / wrong requester" (`<item-not-found/>`).
 */
import { discoInfo } from '@hyphae/modules';
import { networkInterfaces } from 'node:os';
import { parse, Element } from 'ltx';
import { JID, tryParseJid } from '@hyphae/jid';
import { NoRespondersError, type Bus, type BusMessage, type Subscription } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import type { HyphaeConfig } from '@hyphae/config';
import type { Logger, Metrics } from '@hyphae/observability';
import { PROXY65_SUBJECT, Router, componentsFor, remoteFor, subdomainsOf } from '@hyphae/router';
import type { ModuleRegistry } from '@hyphae/module-api';
import { NS, StanzaError, canReplyWithError, errorReply, iqResult } from '@hyphae/stanza';
import { Holder } from './holder.js';
import {
  OP_HEADER, RESULT_HEADER, dstAddr, sidSubject, streamSubject,
  type ActivateRequest, type ActivateResult, type SidRequest,
} from './hash.js';

export const NS_BYTESTREAMS = 'http://jabber.org/protocol/bytestreams';
/** The queue group of the service subject. */
export const PROXY65_QUEUE = 'proxy65';
/** Longest StreamID accepted (XEP-0065 sets none; it becomes a subject token). */
export const MAX_SID_LENGTH = 1024;
const IDENTITY_NAME = 'SOCKS5 Bytestreams Service';
/** How long an activation waits for the instance holding the stream. */
const ACTIVATE_TIMEOUT_MS = 5_000;

export interface Proxy65Deps {
  config: HyphaeConfig;
  bus: Bus;
  stores: Stores;
  logger: Logger;
  metrics: Metrics;
  /** The process's modules (the proxy's router treats stanzas like every other). */
  registry: ModuleRegistry;
}

export interface Proxy65Service {
  /** The proxy's domains (`proxy.<domain>` for each served domain). */
  readonly domains: readonly string[];
  /** The SOCKS5 port listened on. */
  readonly port: number;
  /** The address announced in streamhost answers. */
  readonly streamhost: { readonly host: string; readonly port: number };
  /** Streams (pending or relaying) held by this instance. */
  streams(): number;
  /** Sockets open on the SOCKS5 listener. */
  sockets(): number;
  stop(): Promise<void>;
}

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();
const dec = new TextDecoder();

export async function startProxy65(deps: Proxy65Deps): Promise<Proxy65Service> {
  const { config, bus, stores, metrics } = deps;
  const logger = deps.logger.child({ component: 'proxy65' });
  const cfg = config.proxy65;
  const domains = subdomainsOf(config.domains, cfg.subdomain);
  const served = new Set(config.domains);
  const router = new Router({ domains: config.domains, nodeId: config.nodeId, bus, stores, logger, metrics, registry: deps.registry, components: componentsFor(config, bus), remote: remoteFor(config, bus) });

  const holder = new Holder({
    bus, logger, metrics,
    host: cfg.host,
    port: cfg.port,
    internalHost: internalHost(cfg.host),
    limits: {
      maxStreams: cfg.maxStreams,
      maxStreamsPerUser: cfg.maxStreamsPerUser,
      pairingTimeoutMs: cfg.pairingTimeoutMs,
      idleTimeoutMs: cfg.idleTimeoutMs,
      maxBytesPerSecond: cfg.maxBytesPerSecond,
      maxBytes: cfg.maxBytes,
    },
  });
  const port = await holder.listen();
  metrics.proxyStreams.set(0);
  const streamhost = { host: cfg.advertisedHost ?? cfg.host, port: cfg.advertisedPort ?? port };
  if (cfg.advertisedHost === null && (cfg.host === '0.0.0.0' || cfg.host === '::')) {
    logger.warn({ host: cfg.host }, 'proxy65 listens on a wildcard address and announces it: set proxy65.advertisedHost to an address clients can reach');
  }

  /** The answer to one stanza (null: nothing to answer). */
  const answer = async (stanza: Element, from: JID, to: JID): Promise<Element | null> => {
    if (stanza.name === 'message') {
      const type = stanza.attrs.type as string | undefined;
      if (type === 'error' || type === 'headline') return null;
      throw new StanzaError('service-unavailable');
    }
    if (stanza.name !== 'iq') return null; // presence: nothing to act on
    const type = stanza.attrs.type as string | undefined;
    if (type !== 'get' && type !== 'set') return null;
    if (to.local !== '' || to.resource !== '') throw new StanzaError('service-unavailable');
    const payload = stanza.getChildElements();
    // RFC 6120 §8.2.3: a get or set has exactly one payload.
    if (payload.length !== 1) throw new StanzaError('bad-request');
    const q = payload[0] as Element;
    const ns = q.attrs.xmlns as string | undefined;
    if (q.name !== 'query') throw new StanzaError('service-unavailable');
    if (type === 'get' && ns === NS.discoInfo) {
      if (q.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return iqResult(stanza, discoInfo([{ category: 'proxy', type: 'bytestreams', name: IDENTITY_NAME }], [NS.discoInfo, NS_BYTESTREAMS]));
    }
    if (type === 'get' && ns === NS.discoItems) {
      if (q.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return iqResult(stanza, new Element('query', { xmlns: NS.discoItems }));
    }
    if (ns !== NS_BYTESTREAMS) throw new StanzaError('service-unavailable');
    // XEP-0065 §4: a requester without permission gets <forbidden/>; this
    // proxy serves the users of the served domains.
    if (!served.has(from.domain)) throw new StanzaError('forbidden', 'This proxy serves local users only');
    if (type === 'get') {
      // §4: a proxy unable to act as a StreamHost SHOULD answer <not-allowed/>.
      if (!holder.hasRoom()) {
        metrics.proxyRefused.inc({ reason: 'max-streams' });
        throw new StanzaError('not-allowed', 'The proxy is at capacity');
      }
      const result = new Element('query', { xmlns: NS_BYTESTREAMS });
      result.c('streamhost', { jid: to.domain, host: streamhost.host, port: String(streamhost.port) });
      return iqResult(stanza, result);
    }
    await activate(q, from);
    return iqResult(stanza);
  };

  /** XEP-0065 §6.3.5: throws the StanzaError to answer, returns when activated. */
  const activate = async (q: Element, from: JID): Promise<void> => {
    const sid = q.attrs.sid;
    const act = q.getChild('activate');
    // §9.1: 'sid' is REQUIRED; <activate/> carries the target's JID.
    if (typeof sid !== 'string' || sid === '' || !act) throw new StanzaError('bad-request', 'A sid and an <activate/> element are required');
    if (sid.length > MAX_SID_LENGTH) throw new StanzaError('bad-request', 'The sid is too long');
    const text = act.getText().trim();
    if (text === '') throw new StanzaError('bad-request', 'The <activate/> element names no target');
    const target = tryParseJid(text);
    if (!target) throw new StanzaError('jid-malformed', 'The target JID is not valid');
    const requester = from.toString();
    const hash = dstAddr(sid, requester, target.toString());
    const req: ActivateRequest = { sid, requester, requesterBare: from.toBareString(), target: target.toString() };
    let result: ActivateResult;
    try {
      const reply = await bus.request(streamSubject(hash), enc.encode(JSON.stringify(req)), { headers: { [OP_HEADER]: 'activate' }, timeoutMs: ACTIVATE_TIMEOUT_MS });
      result = (reply.headers[RESULT_HEADER] ?? 'gone') as ActivateResult;
    } catch (err) {
      if (!(err instanceof NoRespondersError)) {
        logger.warn({ err, hash }, 'proxy65: the instance holding the stream did not answer');
        throw new StanzaError('internal-server-error', 'The stream could not be activated');
      }
      return unknownHash(sid, requester);
    }
    switch (result) {
      case 'ok':
        return;
      case 'one-side':
        throw new StanzaError('not-allowed', 'Only one party is connected to the proxy');
      case 'active':
        throw new StanzaError('not-allowed', 'The bytestream is already activated');
      case 'limit':
        throw new StanzaError('resource-constraint', 'Too many bytestreams open through this proxy');
      default:
        throw new StanzaError('item-not-found');
    }
  };

  /**
   * No instance holds a connection with this hash. If a stream with the same
   * sid and requester exists, the target JID is what differs: "the hashes do
   * not match" (§6.3.5 <not-authorized/>). Otherwise the sid is unknown or
   * the 'from' is not the requester's: <item-not-found/> (§6.3.5).
   */
  const unknownHash = async (sid: string, requester: string): Promise<never> => {
    const req: SidRequest = { requester };
    let match = false;
    try {
      const reply = await bus.request(sidSubject(sid), enc.encode(JSON.stringify(req)), { timeoutMs: ACTIVATE_TIMEOUT_MS });
      match = reply.headers[RESULT_HEADER] === 'requester';
    } catch (err) {
      if (!(err instanceof NoRespondersError)) logger.warn({ err }, 'proxy65: sid lookup failed');
    }
    if (match) throw new StanzaError('not-authorized', 'The hash of sid, requester and target matches no connection');
    throw new StanzaError('item-not-found');
  };

  const handle = async (msg: BusMessage): Promise<void> => {
    let stanza: Element;
    try {
      stanza = parse(dec.decode(msg.data)) as Element;
    } catch (err) {
      logger.warn({ err }, 'proxy65: unparseable stanza');
      return;
    }
    const from = tryParseJid(String(stanza.attrs.from ?? ''));
    const to = tryParseJid(String(stanza.attrs.to ?? ''));
    if (!from || !to) return;
    logger.debug({ kind: stanza.name, from: stanza.attrs.from, to: stanza.attrs.to }, 'proxy65 stanza');
    let reply: Element | null;
    try {
      reply = await answer(stanza, from, to);
    } catch (err) {
      if (!canReplyWithError(stanza)) return;
      const e = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
      if (!(err instanceof StanzaError)) logger.error({ err }, 'proxy65: stanza handling failed');
      metrics.stanzaErrors.inc({ condition: e.condition });
      reply = errorReply(stanza, e);
    }
    if (!reply) return;
    await router.route(reply, new JID('', to.domain, ''));
  };

  // Handled concurrently (an activation waits for another instance); one
  // sender's stanzas stay in order because the router awaits each reply.
  const inflight = new Set<Promise<void>>();
  const sub: Subscription = bus.subscribe(PROXY65_SUBJECT, (msg) => {
    const p = handle(msg)
      .catch((err: unknown) => logger.error({ err }, 'proxy65: stanza handling failed'))
      .finally(() => {
        inflight.delete(p);
        msg.respond(EMPTY);
      });
    inflight.add(p);
  }, { queue: PROXY65_QUEUE });

  logger.info({ domains, port, streamhost }, 'proxy65 service started');
  let stopping: Promise<void> | null = null;
  return {
    domains,
    port,
    streamhost,
    streams: () => holder.size,
    sockets: () => holder.openSockets,
    stop() {
      stopping ??= (async () => {
        await sub.drain();
        await Promise.allSettled([...inflight]);
        await holder.stop();
        metrics.proxyStreams.set(0);
        router.close();
      })();
      return stopping;
    },
  };
}

/**
 * The address other instances use to forward a connection to this one: the
 * bound address, or for a wildcard bind the first external IPv4 address
 * (the pod's address in Kubernetes), else loopback.
 */
export function internalHost(host: string): string {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

export { dstAddr, streamSubject, sidSubject } from './hash.js';
export { Holder, TokenBucket } from './holder.js';
export * as socks5 from './socks5.js';
