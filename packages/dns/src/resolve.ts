/**
 * Server discovery for s2s (RFC 6120 §3.2.1 + XEP-0368), with a small cache.
 *
 * Only SRV is consulted here: target host names are returned as they are and
 * their A/AAAA resolution is left to the connector.
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { DnsError, fromNodeDnsError } from './errors.js';
import { interleave, isServiceDecidedlyUnavailable, type RandomSource, type SrvRecord } from './order.js';

export const DEFAULT_S2S_PORT = 5269;
export const XMPPS_SERVER = '_xmpps-server._tcp.';
export const XMPP_SERVER = '_xmpp-server._tcp.';

export interface ServerCandidate {
  host: string;
  port: number;
  /** true: TLS from the first byte (XEP-0368); false: XMPP then STARTTLS. */
  directTls: boolean;
  source: 'srv' | 'fallback' | 'static';
}

/**
 * An SRV lookup. Must resolve with the records, or reject with a `DnsError`
 * (`NODATA`/`NXDOMAIN` for "no such record"). Injectable for tests.
 */
export type SrvLookup = (name: string) => Promise<SrvRecord[]>;

export interface ResolveServerOptions {
  /** Resolver addresses, e.g. `['127.0.0.1:5353']` (passed to `Resolver#setServers`). Default: the system's. */
  servers?: string[];
  /** Per-lookup timeout in ms (default 5000). */
  timeoutMs?: number;
  /** Static overrides: `{ 'example.org': 'xmpp.example.net:5269' }` (IPv6: `[::1]:5269`). Win over DNS. */
  staticHosts?: Record<string, string>;
  /** Random source for RFC 2782 weighted selection (default `Math.random`). */
  random?: RandomSource;
  /** Replace the `node:dns` lookup (tests). When given, `servers`/`timeoutMs` are not used. */
  lookup?: SrvLookup;
  /** Share a cache between calls; `resolveServer` without one does not cache. */
  cache?: SrvCache;
}

// ---------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------

export interface SrvCacheOptions {
  /**
   * Max age of a positive answer, ms (default 300 000). Node 20's
   * `resolveSrv` does not return TTLs (only `resolve4/6` take `{ ttl: true }`,
   * and `resolveAny`'s SRV entries carry no `ttl` either), so SRV answers are
   * cached for this configurable max age instead of their DNS TTL.
   */
  maxAgeMs?: number;
  /** Max age of a negative answer (NODATA/NXDOMAIN), ms (default 30 000). Other errors are never cached. */
  negativeMaxAgeMs?: number;
  /** Bound on the number of names kept (default 1000; oldest evicted first). */
  maxEntries?: number;
  /** Clock, ms (default `Date.now`). */
  now?: () => number;
}

type CacheEntry = { expires: number; records: SrvRecord[] } | { expires: number; error: DnsError };

export class SrvCache {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly maxAgeMs: number;
  private readonly negativeMaxAgeMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(opts: SrvCacheOptions = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? 300_000;
    this.negativeMaxAgeMs = opts.negativeMaxAgeMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Look `name` up through the cache: a cached negative answer rejects with its `DnsError` again. */
  async lookup(name: string, lookup: SrvLookup): Promise<SrvRecord[]> {
    const key = name.toLowerCase();
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) {
      if ('error' in hit) throw hit.error;
      return hit.records;
    }
    if (hit) this.entries.delete(key);
    try {
      const records = await lookup(name);
      this.store(key, { expires: this.now() + this.maxAgeMs, records });
      return records;
    } catch (err) {
      const e = err instanceof DnsError ? err : fromNodeDnsError(err, name);
      if (e.isNoRecord) this.store(key, { expires: this.now() + this.negativeMaxAgeMs, error: e });
      throw e;
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private store(key: string, entry: CacheEntry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}

// ---------------------------------------------------------------------------
// node:dns lookup
// ---------------------------------------------------------------------------

/**
 * An `SrvLookup` over `node:dns/promises` `Resolver`. Each query gets its own
 * `Resolver` (so a timeout's `cancel()` only hits that query) with c-ares'
 * own timeout and one try, plus a guard timer that cancels it.
 */
export function nodeSrvLookup(opts: { servers?: string[]; timeoutMs?: number } = {}): SrvLookup {
  const timeoutMs = opts.timeoutMs ?? 5000;
  if (opts.servers) {
    // Validate once, eagerly: setServers throws on malformed addresses.
    try {
      new Resolver().setServers(opts.servers);
    } catch (err) {
      throw new DnsError('BADNAME', `invalid DNS server list ${JSON.stringify(opts.servers)}`, { cause: err });
    }
  }
  return async (name) => {
    const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
    if (opts.servers) resolver.setServers(opts.servers);
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        resolver.cancel();
        reject(new DnsError('TIMEOUT', `DNS lookup of ${name} timed out after ${timeoutMs} ms`, { query: name }));
      }, timeoutMs);
    });
    try {
      return await Promise.race([resolver.resolveSrv(name), guard]);
    } catch (err) {
      throw fromNodeDnsError(err, name);
    } finally {
      clearTimeout(timer);
    }
  };
}

// ---------------------------------------------------------------------------
// resolveServer
// ---------------------------------------------------------------------------

/** Normalise a domain for lookups: lower case, no trailing dot. Throws `DnsError('BADNAME')`. */
export function normalizeDomain(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (d === '' || d.length > 253 || /[\s/]/.test(d) || d.startsWith('.') || d.includes('..')) {
    throw new DnsError('BADNAME', `not a domain name: ${JSON.stringify(domain)}`);
  }
  return d;
}

/** Parse `'host:port'` / `'[v6]:port'` / `'host'` (port 5269). Throws `DnsError('BADNAME')`. */
export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^([^:\s]+)(?::(\d+))?$/.exec(value);
  const host = m?.[1];
  const port = m?.[2] === undefined ? DEFAULT_S2S_PORT : Number(m[2]);
  if (!m || !host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DnsError('BADNAME', `bad static host ${JSON.stringify(value)} (want host:port)`);
  }
  return { host, port };
}

/** Outcome of one SRV query: records, or "no SRV" (NODATA/NXDOMAIN), or a hard error. */
type Outcome = { records: SrvRecord[] } | { none: true } | { error: DnsError };

async function query(name: string, lookup: SrvLookup, cache: SrvCache | undefined): Promise<Outcome> {
  try {
    const records = cache ? await cache.lookup(name, lookup) : await lookup(name);
    return { records };
  } catch (err) {
    const e = err instanceof DnsError ? err : fromNodeDnsError(err, name);
    return e.isNoRecord ? { none: true } : { error: e };
  }
}

/**
 * Ordered connection candidates for an s2s connection to `domain`:
 *
 * 1. A static override for the domain wins (`source: 'static'`, STARTTLS).
 * 2. An IP-literal domain is connected to directly on 5269 (`'fallback'`).
 * 3. `_xmpps-server._tcp` and `_xmpp-server._tcp` SRV are queried in parallel
 *    and merged per XEP-0368 §3 (priority; ties → direct TLS first; RFC 2782
 *    weighted order within a priority).
 * 4. A service whose only record has target "." is decidedly unavailable; if
 *    that leaves nothing, the result is `[]` (do not connect).
 * 5. If neither query returned any SRV record (NODATA/NXDOMAIN), fall back
 *    to `{ host: domain, port: 5269, directTls: false }` (RFC 6120 §3.2.2).
 *
 * Hard failures (timeout, SERVFAIL, …) reject with a `DnsError` unless the
 * other query produced usable records, which are then returned (and, being
 * partial, the failed query is simply not cached).
 */
export async function resolveServer(domain: string, opts: ResolveServerOptions = {}): Promise<ServerCandidate[]> {
  const d = normalizeDomain(domain);
  const override = opts.staticHosts && lookupStatic(opts.staticHosts, d);
  if (override !== undefined) {
    const { host, port } = parseHostPort(override);
    return [{ host, port, directTls: false, source: 'static' }];
  }
  if (isIP(d) !== 0 || isIP(d.replace(/^\[|\]$/g, '')) !== 0) {
    return [{ host: d.replace(/^\[|\]$/g, ''), port: DEFAULT_S2S_PORT, directTls: false, source: 'fallback' }];
  }
  const lookup = opts.lookup ?? nodeSrvLookup({ ...(opts.servers && { servers: opts.servers }), ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }) });
  const random = opts.random ?? Math.random;
  const [tls, plain] = await Promise.all([query(XMPPS_SERVER + d, lookup, opts.cache), query(XMPP_SERVER + d, lookup, opts.cache)]);

  const recordsOf = (o: Outcome) => ('records' in o && !isServiceDecidedlyUnavailable(o.records) ? o.records : []);
  const merged = interleave(recordsOf(tls), recordsOf(plain), random);
  if (merged.length > 0) {
    return merged.map((r) => ({ host: r.name.replace(/\.$/, ''), port: r.port, directTls: r.directTls, source: 'srv' as const }));
  }
  const failed = 'error' in tls ? tls.error : 'error' in plain ? plain.error : undefined;
  if (failed) throw failed;
  if ('none' in tls && 'none' in plain) {
    return [{ host: d, port: DEFAULT_S2S_PORT, directTls: false, source: 'fallback' }];
  }
  return []; // SRV present but decidedly unavailable (target ".")
}

function lookupStatic(staticHosts: Record<string, string>, domain: string): string | undefined {
  if (Object.hasOwn(staticHosts, domain)) return staticHosts[domain];
  for (const [k, v] of Object.entries(staticHosts)) if (k.toLowerCase().replace(/\.$/, '') === domain) return v;
  return undefined;
}

/** A resolver bound to one set of options and one cache, for long-lived use by the s2s connector. */
export class ServerResolver {
  readonly cache: SrvCache;
  private readonly opts: ResolveServerOptions;

  constructor(opts: ResolveServerOptions & { cacheOptions?: SrvCacheOptions } = {}) {
    const { cacheOptions, ...rest } = opts;
    this.cache = rest.cache ?? new SrvCache(cacheOptions);
    // Build the node lookup once (validates `servers` eagerly).
    const lookup = rest.lookup ?? nodeSrvLookup({ ...(rest.servers && { servers: rest.servers }), ...(rest.timeoutMs !== undefined && { timeoutMs: rest.timeoutMs }) });
    this.opts = { ...rest, lookup, cache: this.cache };
  }

  resolve(domain: string): Promise<ServerCandidate[]> {
    return resolveServer(domain, this.opts);
  }
}
