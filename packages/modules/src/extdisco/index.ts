/**
 * XEP-0215 External Service Discovery (urn:xmpp:extdisco:2, version 1.0.0):
 * the STUN/TURN services of `extdisco.services`, listed to local users, with
 * time-limited TURN credentials derived from `extdisco.turnSecret` by the
 * TURN REST scheme coturn checks under `use-auth-secret`:
 * username = "<expiry unix time>:<user>", password = base64(HMAC-SHA1(secret, username)).
 *
 * Without configured services the module declares nothing: no disco
 * feature, and the iqs get the router's <service-unavailable/> (§3: the
 * answer of an entity that does not support the protocol). Pushes (§4.2)
 * are not sent: the list only changes with the configuration.
 */
import { createHmac } from 'node:crypto';
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import type { HyphaeConfig } from '@hyphae/config';
import { defineModule, type IqRequest, type ModuleInstance } from '@hyphae/module-api';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

/** The `extdisco` section of the configuration. */
export type ExtDiscoConfig = HyphaeConfig['extdisco'];

export interface ExternalService {
  /** As configured: stun, stuns, turn or turns. */
  type: string;
  /** A domain name or an IP address (IPv6 without brackets). */
  host: string;
  port: number;
  /** udp or tcp: as configured, else udp for stun/turn and tcp for stuns/turns. */
  transport: 'udp' | 'tcp';
}

const SERVICE = /^(stun|stuns|turn|turns):([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})(?:\/(udp|tcp))?$/;

/** Parses one `extdisco.services` entry (`type:host:port[/udp|/tcp]`); throws on anything else. */
export function parseExternalService(spec: string): ExternalService {
  const m = SERVICE.exec(spec.trim());
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) throw new Error(`not an external service (type:host:port[/udp|/tcp]): ${spec}`);
  const type = m[1] as string;
  const rawHost = m[2] as string;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const transport = (m[4] as 'udp' | 'tcp' | undefined) ?? (type.endsWith('s') ? 'tcp' : 'udp');
  return { type, host, port, transport };
}

/** TURN REST credentials (coturn `use-auth-secret`): valid until `expiresAt` (unix seconds). */
export function turnCredentials(secret: string, user: string, expiresAt: number): { username: string; password: string } {
  const username = `${expiresAt}:${user}`;
  return { username, password: createHmac('sha1', secret).update(username, 'utf8').digest('base64') };
}

/** XEP-0082 DateTime in UTC, whole seconds. */
function xep82(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** xs:NCName (XML Namespaces §3), the type of the 'type' attribute. */
const NCNAME = /^[\p{L}_][\p{L}\p{N}\p{M}._\u00B7-]*$/u;

export interface ExtDiscoOptions {
  config: ExtDiscoConfig;
  /** Served domains: only their users get the list (and credentials). */
  domains: readonly string[];
  /** Clock in ms (tests). */
  now?: () => number;
}

export function extdiscoInstance(opts: ExtDiscoOptions): ModuleInstance {
  const services = opts.config.services.map(parseExternalService);
  if (services.length === 0) return {};

  const domains = new Set(opts.domains);
  const now = opts.now ?? Date.now;
  const secret = opts.config.turnSecret;
  const restricted = (s: ExternalService): boolean => secret !== null && (s.type === 'turn' || s.type === 'turns');

  /** Only a served domain's users: §3 allows <forbidden/> to anyone else. */
  const requester = (req: IqRequest): string => {
    if (req.from.local === '' || !domains.has(req.from.domain)) {
      throw new StanzaError('forbidden', 'External services are listed to local users only');
    }
    return req.from.toBareString();
  };

  /** A <service/>, with fresh credentials for `user` when the service needs them. */
  const serviceElement = (s: ExternalService, user: string): Element => {
    const el = new Element('service', { type: s.type, host: s.host, port: String(s.port), transport: s.transport });
    if (restricted(s) && secret !== null) {
      const expiresAt = Math.floor(now() / 1000) + opts.config.ttlSeconds;
      const { username, password } = turnCredentials(secret, user, expiresAt);
      el.attrs.restricted = '1';
      el.attrs.username = username;
      el.attrs.password = password;
      el.attrs.expires = xep82(expiresAt);
    }
    return el;
  };

  return {
    features: { server: [NS_EXTDISCO] },
    iq: [
      {
        // §3.1 all services, §3.2 services of one type (unknown type: an empty list).
        target: 'host', type: 'get', xmlns: NS_EXTDISCO, name: 'services',
        handle: (req) => {
          const { payload } = req;
          if (payload.getChildElements().length > 0) throw new StanzaError('bad-request', 'The <services/> request is empty');
          const type = payload.attrs.type as string | undefined;
          if (type !== undefined && !NCNAME.test(type)) throw new StanzaError('bad-request', "'type' is not a service type");
          const user = requester(req);
          const out = new Element('services', type === undefined ? { xmlns: NS_EXTDISCO } : { xmlns: NS_EXTDISCO, type });
          for (const s of services) if (type === undefined || s.type === type) out.cnode(serviceElement(s, user));
          return out;
        },
      },
      {
        // §3.3 credentials for a service known by host and type (and port).
        target: 'host', type: 'get', xmlns: NS_EXTDISCO, name: 'credentials',
        handle: (req) => {
          const children = req.payload.getChildElements();
          if (children.length === 0) throw new StanzaError('bad-request', 'Name the service: <service host=… type=…/>');
          const wanted = children.map((c) => {
            const ns = c.attrs.xmlns as string | undefined;
            if (c.name !== 'service' || (ns !== undefined && ns !== NS_EXTDISCO)) throw new StanzaError('bad-request', 'Only <service/> elements are allowed');
            const host = c.attrs.host as string | undefined;
            const type = c.attrs.type as string | undefined;
            if (!host || !type) throw new StanzaError('bad-request', "A <service/> needs 'host' and 'type'");
            const portAttr = c.attrs.port as string | undefined;
            if (portAttr !== undefined && !(/^\d{1,5}$/.test(portAttr) && Number(portAttr) <= 65535)) throw new StanzaError('bad-request', "'port' is not a port number");
            return { host: host.toLowerCase().replace(/^\[(.*)\]$/, '$1'), type, port: portAttr === undefined ? undefined : Number(portAttr) };
          });
          const user = requester(req);
          const matching = services.filter((s) => wanted.some((w) => w.type === s.type && w.host === s.host.toLowerCase() && (w.port === undefined || w.port === s.port)));
          if (matching.length === 0) throw new StanzaError('item-not-found', 'No such service');
          const withCredentials = matching.filter(restricted);
          if (withCredentials.length === 0) throw new StanzaError('item-not-found', 'This server has no credentials for that service');
          const out = new Element('credentials', { xmlns: NS_EXTDISCO });
          for (const s of withCredentials) out.cnode(serviceElement(s, user));
          return out;
        },
      },
    ],
  };
}

export const extdisco = defineModule({
  name: 'extdisco',
  description: 'Lists STUN/TURN services with time-limited TURN credentials',
  specs: [{ spec: 'XEP-0215', version: '1.0.0' }],
  create: (deps) => extdiscoInstance({ config: deps.config.extdisco, domains: deps.config.domains }),
});
