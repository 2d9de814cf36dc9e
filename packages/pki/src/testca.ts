/**
 * A throw-away certificate authority for tests (ECDSA P-256, SHA-256),
 * producing PEM that node:tls accepts directly.  Not for production use.
 */
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, OtherName, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH, OID_SRV_NAME, OID_XMPP_ADDR } from './identity.js';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TestCa {
  name: string;
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

export type EkuName = 'serverAuth' | 'clientAuth';

export interface IssueServerCertOptions {
  /** dNSName SANs (wildcards allowed); the first is also the subject CN unless commonName is given. */
  domains: string[];
  /** SRVName otherNames, e.g. "_xmpp-server.example.org". */
  srvIds?: string[];
  /** id-on-xmppAddr otherNames, e.g. "example.org". */
  xmppAddrs?: string[];
  /** Subject CN; defaults to domains[0]. */
  commonName?: string;
  /**
   * EKU extension contents: names or dotted OIDs.  Default
   * ['serverAuth', 'clientAuth']; null leaves the extension out.
   */
  eku?: (EkuName | string)[] | null;
  notBefore?: Date;
  notAfter?: Date;
  /** Self-sign instead of issuing from `ca` (caPem is then the certificate itself). */
  selfSigned?: boolean;
}

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  /** PEM of the trust anchor to put in `ca: [...]`. */
  caPem: string;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f | 0x01; // positive, no leading zero
  return b.toString('hex');
}

function keyPem(k: webcrypto.CryptoKey): string {
  return KeyObject.from(k).export({ type: 'pkcs8', format: 'pem' }).toString();
}

function dnEscape(v: string): string {
  return v.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
}

export async function createTestCa(opts: { name: string; notAfter?: Date }): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${dnEscape(opts.name)}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { name: opts.name, certPem: cert.toString('pem'), keyPem: keyPem(keys.privateKey), cert, keys };
}

function otherName(typeId: string, value: asn1js.BaseBlock): GeneralName {
  return new GeneralName({ otherName: new OtherName({ typeId, value: value.toBER() }) });
}

export async function issueServerCert(ca: TestCa | null, opts: IssueServerCertOptions): Promise<IssuedCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const names: GeneralName[] = [
    ...opts.domains.map((d) => new GeneralName({ dNSName: d })),
    ...(opts.srvIds ?? []).map((s) => otherName(OID_SRV_NAME, new asn1js.IA5String({ value: s }))),
    ...(opts.xmppAddrs ?? []).map((a) => otherName(OID_XMPP_ADDR, new asn1js.Utf8String({ value: a }))),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (names.length > 0) {
    const cn = opts.commonName ?? opts.domains[0];
    // RFC 5280 §4.2.1.6: critical when the subject is empty.
    extensions.push(new x509.Extension(id_ce_subjectAltName, cn === undefined,
      AsnConvert.serialize(new SubjectAlternativeName(names))));
  }
  const eku = opts.eku === undefined ? ['serverAuth', 'clientAuth'] : opts.eku;
  if (eku !== null) {
    const oids = eku.map((u) => (u === 'serverAuth' ? OID_SERVER_AUTH : u === 'clientAuth' ? OID_CLIENT_AUTH : u));
    extensions.push(new x509.ExtendedKeyUsageExtension(oids, false));
  }
  const cn = opts.commonName ?? opts.domains[0];
  const subject = cn === undefined ? '' : `CN=${dnEscape(cn)}`;
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = opts.notAfter ?? new Date(Date.now() + 7 * DAY);

  if (opts.selfSigned || ca === null) {
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(), name: subject, notBefore, notAfter, signingAlgorithm: ALG, keys, extensions,
    });
    const pem = cert.toString('pem');
    return { certPem: pem, keyPem: keyPem(keys.privateKey), caPem: pem };
  }
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: keyPem(keys.privateKey), caPem: ca.certPem };
}
