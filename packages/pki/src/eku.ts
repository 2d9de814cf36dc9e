/**
 * Extended Key Usage policy for server-to-server TLS.
 *
 * On s2s, the connecting (originating) server acts as a TLS *client*, so a
 * strict reading of RFC 5280 would require clientAuth in its EKU.  But the
 * public WebPKI is dropping clientAuth from server certificates: the Chrome
 * Root Program requires dedicated serverAuth-only hierarchies, and Let's
 * Encrypt and other public CAs stop including clientAuth during 2025/2026.
 * XMPP peers with such certificates must keep federating, so inbound s2s
 * accepts a peer certificate whose EKU has serverAuth OR clientAuth (the
 * peer is authenticated as a *server* by its domain anyway), one with
 * anyExtendedKeyUsage, and one without any EKU extension (unrestricted,
 * RFC 5280 §4.2.1.12).  An EKU extension that lists neither (e.g. only
 * codeSigning or emailProtection) restricts the key to other purposes and
 * is refused.
 */
import { certificateIdentities, isIdentities, type CertificateIdentities, type CertificateInput } from './identity.js';

function ekuOf(cert: CertificateInput | CertificateIdentities): CertificateIdentities {
  return isIdentities(cert)
    ? (cert as CertificateIdentities)
    : certificateIdentities(cert as CertificateInput);
}

/** Whether a peer certificate presented on an inbound s2s connection is usable (see module doc). */
export function acceptsForInbound(cert: CertificateInput | CertificateIdentities): boolean {
  const ids = ekuOf(cert);
  if (!ids.hasEku) return true;
  return ids.extKeyUsage.some((u) => u === 'serverAuth' || u === 'clientAuth' || u === 'anyExtendedKeyUsage');
}

/** Whether a certificate presented by the server we connect to (outbound s2s) is usable: serverAuth, any, or no EKU. */
export function acceptsForOutbound(cert: CertificateInput | CertificateIdentities): boolean {
  const ids = ekuOf(cert);
  if (!ids.hasEku) return true;
  return ids.extKeyUsage.some((u) => u === 'serverAuth' || u === 'anyExtendedKeyUsage');
}
