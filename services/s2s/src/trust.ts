/**
 * Certificates on server-to-server streams (RFC 6125, RFC 7590): what we
 * present, which anchors we trust, and whether a peer's certificate
 * authenticates a domain — the condition for offering or using SASL EXTERNAL
 * (XEP-0178). A peer that fails these checks may still authenticate with
 * dialback (XEP-0220), when policy allows.
 */
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, rootCertificates, type ConnectionOptions, type SecureContext, type TLSSocket, type TLSSocketOptions } from 'node:tls';
import { verifyServerIdentity, acceptsForInbound, acceptsForOutbound, tlsPolicyOptions, type TlsPolicy } from '@hyphae/pki';
import type { S2sConfig } from '@hyphae/config';

export type PeerCheck = { ok: true } | { ok: false; reason: string };

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function timeValid(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

/**
 * The peer's chain up to one of `anchors`, checked without OpenSSL's purpose
 * rule: OpenSSL refuses a client certificate that lacks the clientAuth EKU,
 * yet public CAs now issue serverAuth-only certificates, which peers present
 * on their outbound streams; RFC 7590 leaves the EKU rule to us (eku.ts).
 */
export function chainTrusted(chain: readonly X509Certificate[], anchors: readonly X509Certificate[], now = Date.now()): boolean {
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i] as X509Certificate;
    if (!timeValid(c, now)) return false;
    for (const a of anchors) {
      if (c.checkIssued(a) && c.verify(a.publicKey) && timeValid(a, now)) return true;
    }
    const next = chain[i + 1];
    if (!next || !next.ca || !c.checkIssued(next) || !c.verify(next.publicKey)) return false;
  }
  return false;
}

/** The certificates the peer sent, leaf first. */
function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (cert && cert.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    out.push(new X509Certificate(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}

export class Trust {
  private constructor(
    private readonly cert: string,
    private readonly key: string,
    private readonly caPems: string[],
    private readonly anchors: X509Certificate[],
    /** For inbound streams: our certificate, the TLS policy, and the anchors client certificates are checked against. */
    readonly serverContext: SecureContext,
    private readonly policy: ReturnType<typeof tlsPolicyOptions>,
  ) {}

  /** `policy`: tls.minVersion and tls.ciphers, applied both ways. */
  static async load(s2s: S2sConfig, creds: { cert: string; key: string }, policy: TlsPolicy): Promise<Trust> {
    const extra = s2s.caFile ? splitPem(await readFile(s2s.caFile, 'utf8')) : [];
    const caPems = s2s.caOnly ? extra : [...rootCertificates, ...extra];
    const anchors: X509Certificate[] = [];
    for (const pem of caPems) {
      try {
        anchors.push(new X509Certificate(pem));
      } catch {
        // an unreadable system root is skipped, not fatal
      }
    }
    const options = tlsPolicyOptions(policy);
    const serverContext = createSecureContext({ cert: creds.cert, key: creds.key, ca: caPems, ...options });
    return new Trust(creds.cert, creds.key, caPems, anchors, serverContext, options);
  }

  /**
   * The server side of TLS on an inbound connection (`new TLSSocket`), after
   * STARTTLS or at once on the direct-TLS port (XEP-0368, ALPN
   * 'xmpp-server'). A certificate is asked for (SASL EXTERNAL) but not
   * required: dialback peers have none to offer; checkPeer() judges it.
   */
  inboundSocketOptions(directTls: boolean): TLSSocketOptions {
    return {
      isServer: true, secureContext: this.serverContext, requestCert: true, rejectUnauthorized: false,
      ...(directTls ? { ALPNProtocols: ['xmpp-server'] } : {}),
    };
  }

  /**
   * TLS options for an outbound stream to `remote`: SNI, our certificate as
   * the client certificate (even serverAuth-only: peers that accept it can
   * use EXTERNAL), verification done by checkPeer() afterwards.
   */
  clientOptions(remote: string, directTls: boolean): ConnectionOptions {
    return {
      servername: remote,
      cert: this.cert,
      key: this.key,
      ca: this.caPems,
      rejectUnauthorized: false,
      // RFC 6125 identity (SRV-ID, XmppAddr, …) is checked by checkPeer(), not Node's hostname rule.
      checkServerIdentity: () => undefined,
      ...(directTls ? { ALPNProtocols: ['xmpp-server'] } : {}),
      ...this.policy,
    };
  }

  /** Whether the peer's certificate authenticates `domain` (§13.7.2 / RFC 6125). */
  checkPeer(socket: TLSSocket, domain: string, direction: 'in' | 'out', directTls = false): PeerCheck {
    const chain = peerChain(socket);
    const leaf = chain[0];
    if (!leaf) return { ok: false, reason: 'no certificate' };
    // Node's verdict is used when it is positive; otherwise (a server-side
    // socket wrapped after STARTTLS gets none, and a serverAuth-only client
    // certificate fails OpenSSL's purpose rule) the chain is checked here.
    if (!socket.authorized && !chainTrusted(chain, this.anchors)) {
      return { ok: false, reason: `untrusted certificate${socket.authorizationError ? ` (${String(socket.authorizationError)})` : ''}` };
    }
    if (!(direction === 'in' ? acceptsForInbound(leaf) : acceptsForOutbound(leaf))) {
      return { ok: false, reason: 'certificate not usable for this purpose' };
    }
    const id = verifyServerIdentity(leaf, domain, { directTls });
    return id.ok ? { ok: true } : { ok: false, reason: id.reason };
  }
}
