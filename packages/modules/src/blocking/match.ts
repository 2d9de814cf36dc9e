/**
 * XEP-0191 §6 JID matching (the order of XEP-0016 §2.1): an item blocks
 * - <user@domain/resource>: only that resource;
 * - <user@domain>: any resource of it;
 * - <domain/resource>: only that resource (of the domain, or of any
 *   user@domain with that resource — XEP-0016 derives the candidates from
 *   the sender's address);
 * - <domain>: the domain itself and every user@domain or domain/resource.
 * Version 1.3 dropped 1.1's "or address containing a subdomain": a domain
 * item does not block its subdomains (conference.example.org is not
 * example.org).
 *
 * Items and candidates are prepared JID strings (parseJid(...).toString()),
 * so the comparison is RFC 7622 comparison.
 */
import { JID, tryParseJid } from '@hyphae/jid';

/** The addresses an item may name to block `jid`, in §6 order. */
export function candidates(jid: JID): string[] {
  const out: string[] = [];
  if (jid.local !== '' && jid.resource !== '') out.push(jid.toString());
  if (jid.local !== '') out.push(jid.toBareString());
  if (jid.resource !== '') out.push(new JID('', jid.domain, jid.resource).toString());
  out.push(jid.domain);
  return out;
}

/**
 * Whether `owner`'s list blocks `jid`. Never the owner's own bare JID or
 * resources (§5: "MUST NOT block communications from one of a user's
 * resources to another", whatever the list says).
 */
export function isBlocked(list: ReadonlySet<string>, owner: string, jid: JID): boolean {
  if (list.size === 0 || jid.toBareString() === owner) return false;
  for (const c of candidates(jid)) if (list.has(c)) return true;
  return false;
}

/** Like isBlocked, for an address as it appears in a stanza ('from', 'to'); an unparsable one is not blocked. */
export function isBlockedAddress(list: ReadonlySet<string>, owner: string, address: unknown): boolean {
  if (list.size === 0 || typeof address !== 'string' || address === '') return false;
  const jid = tryParseJid(address);
  return jid !== null && isBlocked(list, owner, jid);
}
