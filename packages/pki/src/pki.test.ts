import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509 } from 'node:crypto';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  certificateIdentities, verifyServerIdentity, matchDnsId, acceptsForInbound, acceptsForOutbound,
  dialbackKey, verifyDialbackKey, createTestCa, issueServerCert,
} from './index.js';

const ca = await createTestCa({ name: 'Hyphae Test CA' });

test('certificateIdentities reads dNSName, SRVName, xmppAddr, CN, EKU from PEM and DER', async () => {
  const c = await issueServerCert(ca, {
    domains: ['example.org', '*.muc.example.org'],
    srvIds: ['_xmpp-server.example.org'],
    xmppAddrs: ['example.org', 'bücher.example'],
    eku: ['serverAuth'],
  });
  const ids = certificateIdentities(c.certPem);
  assert.deepEqual(ids.dnsIds, ['example.org', '*.muc.example.org']);
  assert.deepEqual(ids.srvIds, ['_xmpp-server.example.org']);
  assert.deepEqual(ids.xmppAddrs, ['example.org', 'bücher.example']);
  assert.deepEqual(ids.commonNames, ['example.org']);
  assert.deepEqual(ids.extKeyUsage, ['serverAuth']);
  assert.equal(ids.hasEku, true);
  const der = new NodeX509(c.certPem).raw;
  assert.deepEqual(certificateIdentities(der), ids);
  assert.deepEqual(certificateIdentities(new NodeX509(c.certPem)), ids);
});

test('SRV-ID: _xmpp-server matches; wrong service / domain does not; _xmpps-server only with directTls', async () => {
  const c = await issueServerCert(ca, { domains: [], commonName: 'example.org', srvIds: ['_XMPP-Server.Example.ORG'] });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'example.org'), { ok: true, matched: 'srv-id' });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'EXAMPLE.org.'), { ok: true, matched: 'srv-id' });
  assert.equal(verifyServerIdentity(c.certPem, 'other.org').ok, false);

  const client = await issueServerCert(ca, { domains: [], commonName: 'example.org', srvIds: ['_xmpp-client.example.org'] });
  const r = verifyServerIdentity(client.certPem, 'example.org');
  assert.equal(r.ok, false, 'SRV-ID for _xmpp-client must not authenticate a server');
  // …and CN is not consulted since a SAN (SRV-ID) is present.

  const direct = await issueServerCert(ca, { domains: [], commonName: 'x', srvIds: ['_xmpps-server.example.org'] });
  assert.equal(verifyServerIdentity(direct.certPem, 'example.org').ok, false);
  assert.deepEqual(verifyServerIdentity(direct.certPem, 'example.org', { directTls: true }), { ok: true, matched: 'srv-id' });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'example.org', { directTls: true }), { ok: true, matched: 'srv-id' });
});

test('DNS-ID exact and case-insensitive', async () => {
  const c = await issueServerCert(ca, { domains: ['Example.ORG'] });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'example.org'), { ok: true, matched: 'dns-id' });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'EXAMPLE.ORG'), { ok: true, matched: 'dns-id' });
  assert.equal(verifyServerIdentity(c.certPem, 'www.example.org').ok, false);
  assert.equal(verifyServerIdentity(c.certPem, 'example.org.evil').ok, false);
});

test('DNS-ID wildcard rules (RFC 6125 §6.4.3)', async () => {
  const c = await issueServerCert(ca, { domains: ['*.example.org'] });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'xmpp.example.org'), { ok: true, matched: 'dns-id' });
  assert.equal(verifyServerIdentity(c.certPem, 'example.org').ok, false, '*.example.org must not match example.org');
  assert.equal(verifyServerIdentity(c.certPem, 'a.b.example.org').ok, false, 'wildcard matches exactly one label');

  assert.equal(matchDnsId('*.example.org', 'x.example.org'), true);
  assert.equal(matchDnsId('*.EXAMPLE.org.', 'x.example.org'), true);
  assert.equal(matchDnsId('www.*.example.org', 'www.foo.example.org'), false, 'wildcard in the middle');
  assert.equal(matchDnsId('example.*', 'example.org'), false, 'wildcard at the end');
  assert.equal(matchDnsId('*.*.example.org', 'a.b.example.org'), false);
  assert.equal(matchDnsId('f*.example.org', 'foo.example.org'), false, 'partial-label wildcard');
  assert.equal(matchDnsId('*oo.example.org', 'foo.example.org'), false);
  assert.equal(matchDnsId('xn--*.example.org', 'xn--bcher-kva.example.org'), false, 'no partial A-label wildcard');
  assert.equal(matchDnsId('*.org', 'example.org'), false, 'no wildcard directly under a TLD');
  assert.equal(matchDnsId('*', 'localhost'), false);
  assert.equal(matchDnsId('*.example.org', '.example.org'), false);
});

test('IDN: reference U-label matches presented A-label', async () => {
  const c = await issueServerCert(ca, { domains: ['xn--bcher-kva.example', '*.xn--bcher-kva.example'] });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'bücher.example'), { ok: true, matched: 'dns-id' });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'BÜCHER.example'), { ok: true, matched: 'dns-id' });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'xmpp.bücher.example'), { ok: true, matched: 'dns-id' });
  assert.equal(verifyServerIdentity(c.certPem, 'bucher.example').ok, false);
});

test('XmppAddr equal to the domain; mismatch fails; no wildcard', async () => {
  const c = await issueServerCert(ca, { domains: [], commonName: 'example.org', xmppAddrs: ['example.org', 'bücher.example'] });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'Example.org'), { ok: true, matched: 'xmppaddr' });
  assert.deepEqual(verifyServerIdentity(c.certPem, 'xn--bcher-kva.example'), { ok: true, matched: 'xmppaddr' });
  const r = verifyServerIdentity(c.certPem, 'example.net');
  assert.equal(r.ok, false);
  const w = await issueServerCert(ca, { domains: [], commonName: 'x', xmppAddrs: ['*.example.org', 'user@example.org'] });
  assert.equal(verifyServerIdentity(w.certPem, 'a.example.org').ok, false);
  assert.equal(verifyServerIdentity(w.certPem, 'example.org').ok, false);
});

test('CN only when no SAN of any type; option can disable it', async () => {
  const cnOnly = await issueServerCert(ca, { domains: [], commonName: 'example.org' });
  assert.deepEqual(certificateIdentities(cnOnly.certPem).dnsIds, []);
  assert.deepEqual(verifyServerIdentity(cnOnly.certPem, 'example.org'), { ok: true, matched: 'cn' });
  assert.equal(verifyServerIdentity(cnOnly.certPem, 'example.org', { allowCommonName: false }).ok, false);
  assert.equal(verifyServerIdentity(cnOnly.certPem, 'example.net').ok, false);

  const withDns = await issueServerCert(ca, { domains: ['other.org'], commonName: 'example.org' });
  const r = verifyServerIdentity(withDns.certPem, 'example.org');
  assert.equal(r.ok, false, 'CN ignored when a DNS-ID is present');
  if (!r.ok) assert.match(r.reason, /other\.org/);
  const withXmpp = await issueServerCert(ca, { domains: [], commonName: 'example.org', xmppAddrs: ['other.org'] });
  assert.equal(verifyServerIdentity(withXmpp.certPem, 'example.org').ok, false, 'CN ignored when an XmppAddr is present');
});

test('invalid reference domain is refused', async () => {
  const c = await issueServerCert(ca, { domains: ['*.example.org'] });
  assert.equal(verifyServerIdentity(c.certPem, '*.example.org').ok, false);
  assert.equal(verifyServerIdentity(c.certPem, '').ok, false);
});

test('EKU: inbound accepts serverAuth-only, clientAuth, none; refuses unrelated EKU', async () => {
  const serverOnly = await issueServerCert(ca, { domains: ['a.example'], eku: ['serverAuth'] });
  const clientOnly = await issueServerCert(ca, { domains: ['a.example'], eku: ['clientAuth'] });
  const both = await issueServerCert(ca, { domains: ['a.example'] });
  const none = await issueServerCert(ca, { domains: ['a.example'], eku: null });
  const codeSigning = await issueServerCert(ca, { domains: ['a.example'], eku: ['1.3.6.1.5.5.7.3.3'] });
  const any = await issueServerCert(ca, { domains: ['a.example'], eku: ['2.5.29.37.0'] });
  assert.deepEqual(certificateIdentities(both.certPem).extKeyUsage, ['serverAuth', 'clientAuth']);
  assert.equal(certificateIdentities(none.certPem).hasEku, false);
  assert.deepEqual(certificateIdentities(codeSigning.certPem).extKeyUsage, ['codeSigning']);
  assert.equal(acceptsForInbound(serverOnly.certPem), true);
  assert.equal(acceptsForInbound(clientOnly.certPem), true);
  assert.equal(acceptsForInbound(both.certPem), true);
  assert.equal(acceptsForInbound(none.certPem), true);
  assert.equal(acceptsForInbound(any.certPem), true);
  assert.equal(acceptsForInbound(codeSigning.certPem), false);
  assert.equal(acceptsForOutbound(serverOnly.certPem), true);
  assert.equal(acceptsForOutbound(none.certPem), true);
  assert.equal(acceptsForOutbound(clientOnly.certPem), false);
  assert.equal(acceptsForOutbound(codeSigning.certPem), false);
});

test('XEP-0185 dialback key example vector', () => {
  const key = dialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F');
  assert.equal(key, '37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643');
  assert.equal(verifyDialbackKey(` ${key.toUpperCase()}\n`, 's3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F'), true);
  assert.equal(verifyDialbackKey(key, 's3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229G'), false);
  assert.equal(verifyDialbackKey('abc', 's3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F'), false);
  // Swapping the roles changes the key.
  assert.notEqual(dialbackKey('s3cr3tf0rd14lb4ck', 'example.org', 'xmpp.example.com', 'D60000229F'), key);
});

async function handshake(server: { certPem: string; keyPem: string }, clientCa: string[], servername: string,
  client?: { certPem: string; keyPem: string }, serverCa?: string[]): Promise<{ ok: boolean; error?: Error; peer?: Buffer }> {
  const srv = tls.createServer({
    cert: server.certPem, key: server.keyPem,
    ...(client ? { requestCert: true, rejectUnauthorized: true, ca: serverCa } : {}),
  }, (s) => { s.on('error', () => {}); s.end(); });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  try {
    return await new Promise((resolve) => {
      const sock = tls.connect({
        host: '127.0.0.1', port, servername, ca: clientCa, rejectUnauthorized: true,
        ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
        checkServerIdentity: () => undefined, // identity is checked with verifyServerIdentity below
      });
      sock.once('secureConnect', () => {
        const peer = sock.getPeerCertificate().raw;
        sock.destroy(); resolve({ ok: true, peer });
      });
      sock.once('error', (error) => resolve({ ok: false, error }));
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
}

test('TLS round trip on loopback with the test CA', { timeout: 20000 }, async () => {
  const server = await issueServerCert(ca, { domains: ['example.org'], srvIds: ['_xmpp-server.example.org'] });
  const good = await handshake(server, [server.caPem], 'example.org');
  assert.equal(good.ok, true, good.error?.message);
  assert.deepEqual(verifyServerIdentity(good.peer!, 'example.org'), { ok: true, matched: 'srv-id' });

  const otherCa = await createTestCa({ name: 'Other CA' });
  const bad = await handshake(server, [otherCa.certPem], 'example.org');
  assert.equal(bad.ok, false);
  assert.match(String((bad.error as NodeJS.ErrnoException).code ?? bad.error?.message), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/i);

  const self = await issueServerCert(null, { domains: ['example.org'], selfSigned: true });
  assert.equal((await handshake(self, [self.caPem], 'example.org')).ok, true);
  assert.equal((await handshake(self, [ca.certPem], 'example.org')).ok, false);

  const expired = await issueServerCert(ca, {
    domains: ['example.org'], notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000),
  });
  assert.equal((await handshake(expired, [ca.certPem], 'example.org')).ok, false);
});

