/**
 * The s2s gateway does not connect to loopback, private or other refused
 * addresses for a remote domain (issue 21, finding 9: a message to
 * user@127.0.0.1 made it connect to a loopback port). The test DNS server
 * points remote domains at 127.0.0.1 — through SRV and A records, as an
 * attacker's zone would — where a listening socket counts the connections it
 * gets: none may arrive, and the sender gets <remote-server-not-found/>. The
 * same server with 127.0.0.0/8 in s2s.allowedAddresses does connect (so the
 * trap can see a connection at all).
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/s2s-address-policy.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { createTestCa } from '@hyphae/pki';
import { login, newAccount, stanzaErrorCondition, uniqueName, xml, type Session, type XmlElement } from '../harness/clients.js';
import { embeddedSkipReason, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { startDns, type TestDns } from '../harness/dns.js';
import { certFor, fedConfig, metricSum, writeCa } from '../harness/federation.js';
import { waitUntil } from '../harness/util.js';

const H = 'h.policy.test';
const skip = embeddedSkipReason();

describe('s2s address policy: no connection to loopback or private addresses of a remote domain', { skip: skip ?? false }, () => {
  let root: string;
  let dns: TestDns;
  let trap: Server;
  let trapPort = 0;
  const trapped: Socket[] = [];
  let strict: HyphaeServer;
  let lenient: HyphaeServer;
  const open: Session[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hyphae-s2s-policy-'));
    const ca = await createTestCa({ name: 'Hyphae s2s policy test CA' });
    const caFile = writeCa(root, ca);
    // A listener on loopback standing in for what a server must not reach (Redis, NATS, the kubelet…).
    trap = createServer((s) => {
      trapped.push(s);
      s.on('error', () => undefined);
    });
    trapPort = await new Promise<number>((r) => trap.listen(0, '127.0.0.1', () => r((trap.address() as { port: number }).port)));
    dns = await startDns({
      srv: {
        '_xmpp-server._tcp.evil.test': [{ target: 'trap.evil.test', port: trapPort }],
        '_xmpp-server._tcp.private.evil.test': [{ target: 'inside.evil.test', port: trapPort }],
      },
      a: { 'trap.evil.test': '127.0.0.1', 'inside.evil.test': '10.255.255.1' },
    });
    const certs = await certFor(root, ca, H);
    const s2s = { connectTimeoutMs: 1000, queueTimeoutMs: 4000 };
    // The default policy: the harness allows loopback for the federation tests; here it is taken back.
    strict = await startEmbedded({ domain: H, config: fedConfig({ domain: H, certs, caFile, dnsServers: dns.servers, s2s: { ...s2s, allowedAddresses: [] } }) });
    lenient = await startEmbedded({ domain: H, config: fedConfig({ domain: H, certs, caFile, dnsServers: dns.servers, s2s: { ...s2s, allowedAddresses: ['127.0.0.0/8'] } }) });
  });

  after(async () => {
    for (const s of open) await s.stop().catch(() => undefined);
    for (const s of trapped) s.destroy();
    trap?.close();
    await Promise.all([strict?.dispose(), lenient?.dispose()]);
    dns?.close();
    if (root && !process.env.HYPHAE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  });

  const chatTo = async (server: HyphaeServer, to: string): Promise<XmlElement> => {
    const account = await newAccount(server, 'alice');
    const s = await login(server, { username: account.username, password: account.password });
    open.push(s);
    const id = uniqueName('m');
    await s.send(xml('message', { to, type: 'chat', id }, xml('body', {}, 'hello?')));
    return s.waitFor((el) => el.attrs.type === 'error' && el.attrs.id === id, 15_000, `the bounce of the message to ${to}`);
  };

  it('a domain whose SRV target resolves to 127.0.0.1: <remote-server-not-found/>, no connection made', async () => {
    const err = await chatTo(strict, 'someone@evil.test');
    assert.equal(stanzaErrorCondition(err), 'remote-server-not-found', err.toString());
    assert.equal(err.attrs.from, 'someone@evil.test');
    assert.ok(dns.queries.includes('trap.evil.test'), 'the target was resolved (the refusal is on its address)');
    assert.equal(trapped.length, 0, 'nothing connected to the loopback listener');
    assert.ok(await metricSum(strict, 'hyphae_s2s_failures_total', { direction: 'out', reason: 'address' }) >= 1);
  });

  it('IP-literal domains (user@127.0.0.1, user@[::1]) and a private address: refused at once, no connection made', async () => {
    for (const to of ['someone@127.0.0.1', 'someone@[::1]', 'someone@private.evil.test']) {
      const refused = await metricSum(strict, 'hyphae_s2s_failures_total', { direction: 'out', reason: 'address' });
      const err = await chatTo(strict, to);
      assert.equal(stanzaErrorCondition(err), 'remote-server-not-found', `${to}: ${err.toString()}`);
      // Refused by the address policy before connecting — not a connect timeout (10.255.255.1 would not answer).
      assert.equal(await metricSum(strict, 'hyphae_s2s_failures_total', { direction: 'out', reason: 'address' }), refused + 1, `${to}: not refused by the address policy`);
    }
    assert.equal(trapped.length, 0);
  });

  it('with 127.0.0.0/8 in s2s.allowedAddresses the same domain is connected to (the trap can see a connection)', async () => {
    const err = await chatTo(lenient, 'someone@evil.test');
    // The trap never speaks XMPP: the stream times out.
    assert.match(stanzaErrorCondition(err) ?? '', /^remote-server-(timeout|not-found)$/);
    await waitUntil(() => trapped.length > 0, 5000, 'a connection to the loopback listener');
  });
});
