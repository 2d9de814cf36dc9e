export {
  OID_SRV_NAME, OID_XMPP_ADDR, OID_SERVER_AUTH, OID_CLIENT_AUTH, OID_ANY_EKU,
  certificateIdentities, verifyServerIdentity, matchDnsId, asciiDomain, toX509,
  type CertificateInput, type CertificateIdentities, type IdentityMatch, type IdentityResult,
  type VerifyServerIdentityOptions,
} from './identity.js';
export { acceptsForInbound, acceptsForOutbound } from './eku.js';
export { dialbackKey, verifyDialbackKey } from './dialback.js';
export {
  createTestCa, issueServerCert,
  type TestCa, type EkuName, type IssueServerCertOptions, type IssuedCert,
} from './testca.js';
export {
  tlsPolicyOptions, guardHandshake,
  type TlsPolicy, type HandshakeFailure,
} from './tls-policy.js';
