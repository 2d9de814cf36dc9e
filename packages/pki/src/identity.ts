/**
 * Presented identifiers of an X.509 certificate, and the XMPP server
 * identity check of RFC 6125 §6 as profiled by RFC 6120 §13.7.1.2 and
 * RFC 7590 (plus XEP-0368's `_xmpps-server` SRV-ID for direct TLS).
 */
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectAlternativeName, id_ce_subjectAltName, id_ce_extKeyUsage, ExtendedKeyUsage } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';

/** id-on-dnsSRV (RFC 4985): SRVName ::= IA5String */
export const OID_SRV_NAME = '1.3.6.1.5.5.7.8.7';
/** id-on-xmppAddr (RFC 6120 §13.7.1.4): XmppAddr ::= UTF8String */
export const OID_XMPP_ADDR = '1.3.6.1.5.5.7.8.5';
export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const OID_ANY_EKU = '2.5.29.37.0';

const EKU_NAMES: Record<string, string> = {
  [OID_SERVER_AUTH]: 'serverAuth',
  [OID_CLIENT_AUTH]: 'clientAuth',
  [OID_ANY_EKU]: 'anyExtendedKeyUsage',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
};

/** Anything a certificate can come as: PEM text, DER bytes, or a parsed object. */
export type CertificateInput = string | Uint8Array | ArrayBuffer | x509.X509Certificate | NodeX509Certificate;

export interface CertificateIdentities {
  /** subjectAltName dNSName entries, as presented (lower-cased). */
  dnsIds: string[];
  /** SRVName otherName values, e.g. "_xmpp-server.example.org". */
  srvIds: string[];
  /** id-on-xmppAddr otherName values (UTF8String), as presented. */
  xmppAddrs: string[];
  /** uniformResourceIdentifier entries (URI-IDs; only used to decide whether CN may be consulted). */
  uriIds: string[];
  /** Subject commonName attribute values. */
  commonNames: string[];
  /**
   * Extended key usages: "serverAuth", "clientAuth", "anyExtendedKeyUsage",
   * … or the dotted OID when unnamed.  Empty when there is no EKU extension
   * (see `hasEku`).
   */
  extKeyUsage: string[];
  /** Whether an extendedKeyUsage extension is present at all. */
  hasEku: boolean;
}

export function isIdentities(v: unknown): v is CertificateIdentities {
  return typeof v === 'object' && v !== null && Array.isArray((v as CertificateIdentities).dnsIds)
    && Array.isArray((v as CertificateIdentities).extKeyUsage);
}

export function toX509(cert: CertificateInput): x509.X509Certificate {
  if (cert instanceof x509.X509Certificate) return cert;
  if (cert instanceof NodeX509Certificate) return new x509.X509Certificate(new Uint8Array(cert.raw));
  if (typeof cert === 'string') return new x509.X509Certificate(cert);
  if (cert instanceof ArrayBuffer) return new x509.X509Certificate(cert);
  return new x509.X509Certificate(new Uint8Array(cert));
}

function decodeString(der: ArrayBuffer): string | undefined {
  const { result, offset } = asn1js.fromBER(der);
  if (offset === -1) return undefined;
  if (result instanceof asn1js.Utf8String || result instanceof asn1js.IA5String) return result.valueBlock.value;
  return undefined;
}

export function certificateIdentities(input: CertificateInput): CertificateIdentities {
  const cert = toX509(input);
  const out: CertificateIdentities = {
    dnsIds: [], srvIds: [], xmppAddrs: [], uriIds: [], commonNames: [], extKeyUsage: [], hasEku: false,
  };
  for (const ext of cert.extensions) {
    if (ext.type === id_ce_subjectAltName) {
      const san = AsnConvert.parse(ext.value, SubjectAlternativeName);
      for (const gn of san) {
        if (gn.dNSName !== undefined) out.dnsIds.push(gn.dNSName);
        else if (gn.uniformResourceIdentifier !== undefined) out.uriIds.push(gn.uniformResourceIdentifier);
        else if (gn.otherName !== undefined) {
          const v = decodeString(gn.otherName.value);
          if (v === undefined) continue;
          if (gn.otherName.typeId === OID_SRV_NAME) out.srvIds.push(v);
          else if (gn.otherName.typeId === OID_XMPP_ADDR) out.xmppAddrs.push(v);
        }
      }
    } else if (ext.type === id_ce_extKeyUsage) {
      out.hasEku = true;
      for (const oid of AsnConvert.parse(ext.value, ExtendedKeyUsage)) out.extKeyUsage.push(EKU_NAMES[oid] ?? oid);
    }
  }
  out.commonNames = cert.subjectName.getField('CN');
  return out;
}

/**
 * Canonical A-label, lower-case form of a domain for comparison, or
 * undefined when it is not a valid domain name.  One trailing dot is
 * stripped.  (UTS #46 via node:url's domainToASCII, i.e. the same mapping
 * as @hyphae/jid's prepDomain but to the ASCII form certificates carry.)
 */
export function asciiDomain(d: string): string | undefined {
  const s = d.endsWith('.') ? d.slice(0, -1) : d;
  if (s.length === 0 || s.includes('*') || s.startsWith('.')) return undefined;
  // Pure ASCII: just lower-case (domainToASCII would also accept some oddities).
  if (/^[\x21-\x7e]+$/.test(s)) {
    const l = s.toLowerCase();
    return /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(l) ? l : undefined;
  }
  const a = domainToASCII(s);
  return a === '' ? undefined : a.toLowerCase();
}

/**
 * RFC 6125 §6.4.1/§6.4.3 DNS-ID match of a presented identifier against an
 * already-canonical reference domain.  A wildcard is accepted only as the
 * complete left-most label ("*.example.org"), matches exactly one label,
 * and needs at least two labels after it (no "*.org").  Partial-label
 * wildcards ("f*.example.org", "xn--*.example.org") and wildcards in any
 * other position never match.  Presented identifiers must be ASCII
 * (certificates carry A-labels); comparison is ASCII case-insensitive.
 */
export function matchDnsId(presented: string, reference: string): boolean {
  let p = presented.toLowerCase();
  if (p.endsWith('.')) p = p.slice(0, -1);
  if (!/^[\x21-\x7e]+$/.test(p)) return false;
  const pl = p.split('.');
  const rl = reference.split('.');
  if (pl.some((l) => l.length === 0) || rl.some((l) => l.length === 0)) return false;
  const [first, ...rest] = pl;
  if (rest.some((l) => l.includes('*'))) return false;
  if (first === '*') {
    if (rest.length < 2 || rl.length !== pl.length) return false;
    // The wildcard stands for exactly one whole label; it is never matched
    // against part of a label, so A-labels are never partially matched.
    return rl.slice(1).join('.') === rest.join('.');
  }
  if (first!.includes('*')) return false;
  return p === reference;
}

export type IdentityMatch = 'srv-id' | 'dns-id' | 'xmppaddr' | 'cn';
export type IdentityResult = { ok: true; matched: IdentityMatch } | { ok: false; reason: string };

export interface VerifyServerIdentityOptions {
  /**
   * Direct TLS (XEP-0368): also accept the SRV-ID `_xmpps-server.<domain>`.
   * `_xmpp-server.<domain>` is accepted either way.
   */
  directTls?: boolean;
  /**
   * Fall back to the subject CN when the certificate presents no DNS-ID,
   * SRV-ID, URI-ID or XmppAddr at all (RFC 6125 §6.4.4).  Default true, as
   * deployed XMPP servers still do.
   */
  allowCommonName?: boolean;
}

/**
 * Checks that `cert` identifies the XMPP server `domain` (RFC 6120
 * §13.7.1.2, RFC 6125 §6, RFC 7590).  Tries, in order: SRV-ID
 * `_xmpp-server.<domain>` (and `_xmpps-server.` with directTls), DNS-ID
 * (with the wildcard rule of matchDnsId), XmppAddr equal to the domain,
 * and — only when no SAN of any of those types is present — the CN.
 */
export function verifyServerIdentity(
  cert: CertificateInput | CertificateIdentities,
  domain: string,
  options: VerifyServerIdentityOptions = {},
): IdentityResult {
  const ref = asciiDomain(domain);
  if (ref === undefined) return { ok: false, reason: `invalid reference domain ${JSON.stringify(domain)}` };
  const ids = isIdentities(cert)
    ? (cert as CertificateIdentities)
    : certificateIdentities(cert as CertificateInput);

  const services = options.directTls ? ['_xmpp-server', '_xmpps-server'] : ['_xmpp-server'];
  for (const srv of ids.srvIds) {
    const dot = srv.indexOf('.');
    if (dot <= 0) continue;
    const service = srv.slice(0, dot).toLowerCase();
    const name = asciiDomain(srv.slice(dot + 1));
    if (services.includes(service) && name === ref) return { ok: true, matched: 'srv-id' };
  }
  for (const dns of ids.dnsIds) if (matchDnsId(dns, ref)) return { ok: true, matched: 'dns-id' };
  for (const addr of ids.xmppAddrs) {
    // A server's XmppAddr is a bare domain JID; no wildcards.
    if (asciiDomain(addr) === ref) return { ok: true, matched: 'xmppaddr' };
  }
  const anySan = ids.dnsIds.length + ids.srvIds.length + ids.xmppAddrs.length + ids.uriIds.length > 0;
  if (!anySan && (options.allowCommonName ?? true)) {
    for (const cn of ids.commonNames) if (matchDnsId(cn, ref)) return { ok: true, matched: 'cn' };
    return { ok: false, reason: `no subjectAltName; CN ${JSON.stringify(ids.commonNames)} does not match ${ref}` };
  }
  if (!anySan) return { ok: false, reason: 'certificate has no subjectAltName identifiers and CN fallback is disabled' };
  return {
    ok: false,
    reason: `no SRV-ID, DNS-ID or XmppAddr matches ${ref} (dns ${JSON.stringify(ids.dnsIds)}, srv ${JSON.stringify(ids.srvIds)}, xmppAddr ${JSON.stringify(ids.xmppAddrs)})`,
  };
}
