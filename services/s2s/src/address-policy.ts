/**
 * Which addresses the s2s gateway may connect to for a remote domain. The
 * domain's DNS belongs to whoever owns the domain: without this check a
 * message to `user@127.0.0.1`, or to a domain whose SRV/A records point at
 * 127.0.0.1 or 10.0.0.5, makes the gateway open connections into its own
 * host or network (NATS, Redis, the kubelet…) and write XML there.
 *
 * Always refused: loopback, unspecified, link-local, multicast, broadcast
 * and reserved addresses (documentation, 240/4); IPv4-mapped and NAT64
 * addresses are judged by their IPv4 address. Refused by default (`s2s.refusePrivateAddresses`): private
 * ones (RFC 1918, CGNAT 100.64/10, IPv6 unique local fc00::/7). Prosody and
 * ejabberd filter nothing by default; Hyphae runs next to its own cluster
 * services on private addresses, so it refuses those unless a private
 * federation lists its ranges in `s2s.allowedAddresses`, which overrides
 * every refusal. Static routes are the operator's own and are not filtered.
 */
import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';
import type { S2sConfig } from '@hyphae/config';

export type AddressVerdict = { ok: true } | { ok: false; range: string };

/** ipaddr.js range names (IANA special-purpose registries, RFC 6890). */
const ALWAYS_REFUSED: ReadonlySet<string> = new Set(['loopback', 'unspecified', 'linkLocal', 'multicast', 'broadcast', 'reserved']);
const PRIVATE: ReadonlySet<string> = new Set(['private', 'carrierGradeNat', 'uniqueLocal', 'deprecatedSiteLocal']);

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseRange(entry: string): Range {
  if (!entry.includes('/')) {
    const addr = ipaddr.process(entry);
    return [addr, addr.kind() === 'ipv4' ? 32 : 128];
  }
  const [net, bits] = ipaddr.parseCIDR(entry);
  // Addresses are checked as IPv4 once unmapped: a mapped range is its IPv4 range.
  if (net instanceof ipaddr.IPv6 && net.isIPv4MappedAddress() && bits >= 96) return [net.toIPv4Address(), bits - 96];
  return [net, bits];
}

/** Whether a remote domain is an IP literal (RFC 7622 §3.2: IPv4, or IPv6 in brackets). */
export function isIpLiteralDomain(domain: string): boolean {
  return isIP(domain) !== 0 || (domain.startsWith('[') && domain.endsWith(']') && isIP(domain.slice(1, -1)) === 6);
}

export class AddressPolicy {
  private readonly allowed: Range[];

  constructor(private readonly opts: { refusePrivate: boolean; allowed: readonly string[] }) {
    this.allowed = opts.allowed.map(parseRange);
  }

  static of(s2s: S2sConfig): AddressPolicy {
    return new AddressPolicy({ refusePrivate: s2s.refusePrivateAddresses, allowed: s2s.allowedAddresses });
  }

  /** Whether a connection to `address` (an IP address) may be made; a non-address is refused. */
  check(address: string): AddressVerdict {
    if (!ipaddr.isValid(address)) return { ok: false, range: 'not an IP address' };
    // process(): ::ffff:127.0.0.1 is judged as 127.0.0.1.
    const addr = ipaddr.process(address);
    // NAT64 (RFC 6052 64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if (addr.kind() === 'ipv6' && addr.range() === 'rfc6052') return this.check(addr.toByteArray().slice(12).join('.'));
    if (this.allowed.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits))) return { ok: true };
    const range = addr.range();
    if (ALWAYS_REFUSED.has(range) || (this.opts.refusePrivate && PRIVATE.has(range))) return { ok: false, range };
    return { ok: true };
  }
}
