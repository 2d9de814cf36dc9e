export { DnsError, fromNodeDnsError, type DnsErrorCode } from './errors.js';
export {
  interleave,
  isServiceDecidedlyUnavailable,
  orderSrv,
  seededRandom,
  weightedOrder,
  type RandomSource,
  type SrvRecord,
  type TaggedSrv,
} from './order.js';
export {
  DEFAULT_S2S_PORT,
  nodeSrvLookup,
  normalizeDomain,
  parseHostPort,
  resolveServer,
  ServerResolver,
  SrvCache,
  XMPP_SERVER,
  XMPPS_SERVER,
  type ResolveServerOptions,
  type ServerCandidate,
  type SrvCacheOptions,
  type SrvLookup,
} from './resolve.js';
