/**
 * Federation (RFC 6120 server-to-server) between Hyphae deployments on
 * loopback, with certificates from a test CA and a real DNS server run by
 * the test:
 *   a.fed.test (embedded)  — trusts the test CA; finds peers through SRV.
 *   b.fed.test (embedded)  — trusts the test CA; SASL EXTERNAL with a.
 *   d.fed.test (embedded)  — a certificate from another CA, which a does not
 *                            trust: dialback both ways; reached by direct TLS
 *                            (_xmpps-server SRV, XEP-0368).
 * Bad peers (raw sockets): a forged 'from', a wrong certificate, a peer that
 * never answers. The cluster section federates a cluster with b.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/federation.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { createTestCa, type TestCa } from '@hyphae/pki';
import { Session, login, newAccount, stanzaErrorCondition, uniqueName, xml, sleep, type XmlElement } from '../harness/clients.js';
import { clusterSkipReason, embeddedSkipReason, startCluster, startEmbedded, type ClusterServer, type HyphaeServer } from '../harness/server.js';
import { acceptRosterPushes, presenceFrom, sendPresence, subscribeBothWays, userShard } from '../harness/im.js';
import { createRoom, join as joinRoom, say, reflectionOf } from '../harness/muc.js';
import { startDns, type TestDns } from '../harness/dns.js';
import { RawPeer, certFor, fedConfig, metricSum, writeCa, type CertFiles } from '../harness/federation.js';
import { redisCommand, waitUntil } from '../harness/util.js';

const A = 'a.fed.test';
const B = 'b.fed.test';
const D = 'd.fed.test';

type Account = { username: string; password: string; bare: string };

const skip = embeddedSkipReason();

function chat(to: string, body: string, id = uniqueName('m')): XmlElement {
  return xml('message', { to, type: 'chat', id }, xml('body', {}, body));
}

function bodyIs(body: string): (el: XmlElement) => boolean {
  return (el) => el.name === 'message' && el.getChildText('body') === body;
}

function errorFor(id: string): (el: XmlElement) => boolean {
  return (el) => el.attrs.type === 'error' && el.attrs.id === id;
}

async function online(server: HyphaeServer, account: Account): Promise<Session> {
  const s = await login(server, { username: account.username, password: account.password });
  acceptRosterPushes(s);
  await sendPresence(s);
  return s;
}

/** Points `domain`'s SRV records at the s2s listeners of `server` (direct TLS when asked). */
function publish(dns: TestDns, domain: string, server: HyphaeServer, directTls = false): void {
  const service = directTls ? '_xmpps-server' : '_xmpp-server';
  dns.zone.srv[`${service}._tcp.${domain}`] = server.s2s.map((n, i) => ({ target: `s2s${i}.${domain}`, port: directTls ? n.directTlsPort : n.port, priority: 10, weight: 10 }));
  server.s2s.forEach((_, i) => (dns.zone.a[`s2s${i}.${domain}`] = '127.0.0.1'));
}

describe('federation between Hyphae domains', { skip: skip ?? false }, () => {
  let root: string;
  let ca: TestCa;
  let caFile: string;
  let dns: TestDns;
  let a: HyphaeServer;
  let b: HyphaeServer;
  let d: HyphaeServer;
  let certs: Record<string, CertFiles>;
  /** Raw listeners standing in for bad peers. */
  const fakes: Server[] = [];
  let silentPort = 0;
  let wrongCertPort = 0;
  const open: Session[] = [];

  const on = async (server: HyphaeServer, account: Account) => {
    const s = await online(server, account);
    open.push(s);
    return s;
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hyphae-fed-'));
    ca = await createTestCa({ name: 'Hyphae federation test CA' });
    const other = await createTestCa({ name: 'Some other CA' });
    caFile = writeCa(root, ca);
    certs = {
      [A]: await certFor(root, ca, A),
      // serverAuth only, as public CAs issue them now: must still be accepted inbound.
      [B]: await certFor(root, ca, B, { eku: ['serverAuth'] }),
      [D]: await certFor(root, other, D),
      other: await certFor(root, ca, 'other.fed.test'),
      evil: await certFor(root, ca, 'evil.fed.test'),
    };
    dns = await startDns({ srv: {}, a: {} });
    // A peer that accepts connections and never says a word.
    const silent = createServer((s: Socket) => s.on('error', () => undefined));
    silentPort = await new Promise<number>((r) => silent.listen(0, '127.0.0.1', () => r((silent.address() as { port: number }).port)));
    fakes.push(silent);
    wrongCertPort = await startWrongCertPeer(certs.other!, fakes);

    d = await startEmbedded({ domain: D, config: fedConfig({ domain: D, certs: certs[D]!, caFile, dnsServers: dns.servers }) });
    b = await startEmbedded({ domain: B, config: fedConfig({ domain: B, certs: certs[B]!, caFile, dnsServers: dns.servers }) });
    a = await startEmbedded({
      domain: A,
      config: fedConfig({
        domain: A, certs: certs[A]!, caFile, dnsServers: dns.servers,
        staticRoutes: [`silent.fed.test=127.0.0.1:${silentPort}`, `wrong.fed.test=127.0.0.1:${wrongCertPort}`],
        s2s: { connectTimeoutMs: 1500, queueTimeoutMs: 6000 },
      }),
    });
    publish(dns, A, a);
    publish(dns, B, b);
    publish(dns, D, d, true);
    // Operators publish SRV records for their component domains too (rooms live there).
    publish(dns, `conference.${A}`, a);
    publish(dns, `conference.${B}`, b);
  });

  after(async () => {
    for (const s of open) await s.stop().catch(() => undefined);
    for (const f of fakes) f.close();
    await Promise.all([a?.dispose(), b?.dispose(), d?.dispose()]);
    dns?.close();
    if (root && !process.env.HYPHAE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  });

  it('carries messages both ways; the peer is found through SRV in the test DNS server; SASL EXTERNAL authenticates', async () => {
    const alice = await on(a, await newAccount(a, 'alice'));
    const bob = await on(b, await newAccount(b, 'bob'));
    await alice.send(chat(bob.bare, 'hello from a'));
    const got = await bob.waitFor(bodyIs('hello from a'), 15_000, 'the message from a');
    assert.equal(got.attrs.from, alice.jid, 'the sender is the full JID stamped by a');
    await bob.send(chat(alice.jid, 'hello from b'));
    await alice.waitFor(bodyIs('hello from b'), 15_000, 'the message from b');
    // Order across the federated stream (RFC 6120 §10.1).
    for (let i = 0; i < 30; i++) await alice.send(chat(bob.bare, `seq ${i}`));
    const seq = await bob.collect(30, (el) => /^seq \d+$/.test(el.getChildText('body') ?? ''), 15_000, 'the sequence');
    assert.deepEqual(seq.map((el) => el.getChildText('body')), Array.from({ length: 30 }, (_, i) => `seq ${i}`));
    assert.ok(dns.queries.includes(`_xmpp-server._tcp.${B}`), `a asked the DNS server for b's SRV (asked: ${dns.queries.join(', ')})`);
    assert.ok(await metricSum(a, 'hyphae_s2s_auth_total', { direction: 'out', method: 'external' }) >= 1, 'a authenticated to b with SASL EXTERNAL');
    assert.ok(await metricSum(b, 'hyphae_s2s_auth_total', { direction: 'in', method: 'external' }) >= 1, "b accepted a's certificate (EXTERNAL)");
    // b's certificate is serverAuth-only: a still accepted it inbound.
    assert.ok(await metricSum(a, 'hyphae_s2s_auth_total', { direction: 'in', method: 'external' }) >= 1, "a accepted b's serverAuth-only certificate inbound");
  });

  it('runs the subscription handshake across domains to both, with presence seen and probes answered', async () => {
    const carolAcc = await newAccount(a, 'carol');
    const carol = await on(a, carolAcc);
    const dave = await on(b, await newAccount(b, 'dave'));
    await subscribeBothWays(carol, dave, 15_000);
    await sendPresence(dave, {}, { status: 'at the remote end', show: 'away' });
    const p = await carol.waitFor(presenceFrom(dave.jid), 15_000, "dave's presence");
    assert.equal(p.getChildText('status'), 'at the remote end');
    // A new session of carol probes dave's server (RFC 6121 §4.3) and gets his presence.
    const carol2 = await login(a, { username: carolAcc.username, password: carolAcc.password, resource: 'second' });
    open.push(carol2);
    acceptRosterPushes(carol2);
    await sendPresence(carol2);
    const probed = await carol2.waitFor(presenceFrom(dave.jid), 15_000, "dave's presence after the probe");
    assert.equal(probed.getChildText('show'), 'away');
    // And dave sees carol's second resource come online.
    await dave.waitFor(presenceFrom(carol2.jid), 15_000, "carol's second resource");
  });

  it('answers an iq to the remote server (ping, version) and errors from remote entities', async () => {
    const alice = await on(a, await newAccount(a, 'alice'));
    const pong = await alice.ping(B, 15_000);
    assert.equal(pong.attrs.type, 'result', `ping to ${B}: ${pong.toString()}`);
    assert.equal(pong.attrs.from, B);
    const version = await alice.iq(xml('iq', { type: 'get', to: B, id: uniqueName('v') }, xml('query', { xmlns: 'jabber:iq:version' })), 15_000);
    assert.equal(version.attrs.type, 'result');
    assert.equal(version.getChild('query')?.getChildText('name'), 'Hyphae');
    // A message to a user that does not exist over there: the remote server's error comes back.
    const id = uniqueName('nobody');
    await alice.send(chat(`nobody-${id}@${B}`, 'anyone?', id));
    const err = await alice.waitFor(errorFor(id), 15_000, 'the error for a nonexistent remote user');
    assert.equal(stanzaErrorCondition(err), 'service-unavailable');
    assert.equal(err.attrs.from, `nobody-${id}@${B}`);
    // A domain that does not exist: no SRV, no address.
    const id2 = uniqueName('nowhere');
    await alice.send(chat(`someone@nowhere.fed.test`, 'hello?', id2));
    const err2 = await alice.waitFor(errorFor(id2), 15_000, 'the error for an unknown domain');
    assert.equal(stanzaErrorCondition(err2), 'remote-server-not-found');
  });

  it('lets a user join a room on the other domain and talk in it', async () => {
    const alice = await on(a, await newAccount(a, 'alice'));
    const bob = await on(b, await newAccount(b, 'bob'));
    const room = `${uniqueName('room')}@conference.${B}`;
    await createRoom(bob, room, 'bob');
    const joined = await joinRoom(alice, room, 'alice');
    assert.ok(joined.codes.includes(110), 'alice got her self-presence from the remote room');
    await bob.waitFor(presenceFrom(`${room}/alice`), 15_000, 'bob sees alice join');
    const id = uniqueName('gc');
    await bob.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, 'welcome, remote user')));
    await alice.waitFor(reflectionOf(room, id), 15_000, "bob's groupchat message at alice");
    await say(alice, room, 'thanks from a', 15_000);
    await bob.waitFor(bodyIs('thanks from a'), 15_000, "alice's groupchat message at bob");
  });

  it('uses dialback with a peer whose certificate is not trusted (and direct TLS found by _xmpps-server SRV)', async () => {
    const alice = await on(a, await newAccount(a, 'alice'));
    const erin = await on(d, await newAccount(d, 'erin'));
    await alice.send(chat(erin.bare, 'dialback, please'));
    await erin.waitFor(bodyIs('dialback, please'), 15_000, 'the message at d');
    await erin.send(chat(alice.bare, 'dialback works'));
    await alice.waitFor(bodyIs('dialback works'), 15_000, 'the answer from d');
    assert.ok(await metricSum(a, 'hyphae_s2s_auth_total', { direction: 'out', method: 'dialback' }) >= 1, 'a authenticated to d with dialback');
    assert.ok(await metricSum(a, 'hyphae_s2s_auth_total', { direction: 'in', method: 'dialback' }) >= 1, 'd authenticated to a with dialback');
    assert.ok(dns.queries.includes(`_xmpps-server._tcp.${D}`), 'a looked for direct TLS');
  });

  describe('bad peers', () => {
    it('a peer sending a from it did not authenticate gets <invalid-from/>, and nothing reaches the user', async () => {
      const alice = await on(a, await newAccount(a, 'alice'));
      const peer = await RawPeer.connect(a.s2s[0]!.port);
      try {
        peer.header('evil.fed.test', A);
        await peer.expect(/<starttls[^>]*>/);
        await peer.startTls(A, certs.evil);
        peer.header('evil.fed.test', A);
        await peer.expect(/<mechanism>EXTERNAL<\/mechanism>/);
        peer.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>${Buffer.from('evil.fed.test').toString('base64')}</auth>`);
        await peer.expect(/<success[^>]*\/>/);
        peer.header('evil.fed.test', A);
        await peer.expect(/<stream:features/);
        peer.send(`<message from='mallory@${B}/x' to='${alice.bare}' type='chat'><body>forged</body></message>`);
        await peer.expect(/<invalid-from xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']\/>/);
        assert.ok(await peer.closedWithin(3000), 'a closed the stream');
      } finally {
        peer.destroy();
      }
      await sleep(300);
      assert.equal(alice.buffered(bodyIs('forged')).length, 0, 'the forged message was not delivered');
      // Nothing else disturbed: federation with b still works.
      const bob = await on(b, await newAccount(b, 'bob'));
      await bob.send(chat(alice.bare, 'still here'));
      await alice.waitFor(bodyIs('still here'), 15_000);
    });

    it('a peer whose certificate does not match its domain is refused EXTERNAL; a stanza before authentication ends the stream', async () => {
      const peer = await RawPeer.connect(a.s2s[0]!.port);
      try {
        peer.header('impostor.fed.test', A);
        await peer.expect(/<starttls[^>]*>/);
        await peer.startTls(A, certs.other);
        peer.header('impostor.fed.test', A);
        const features = await peer.expect(/<stream:features>[\s\S]*?<\/stream:features>|<stream:features\/>/);
        assert.doesNotMatch(features[0], /EXTERNAL/, 'EXTERNAL is not offered for a certificate of another domain');
        assert.match(features[0], /urn:xmpp:features:dialback/, 'dialback is offered instead');
        peer.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>`);
        await peer.expect(/<failure xmlns=["']urn:ietf:params:xml:ns:xmpp-sasl["']><not-authorized\/>/);
        peer.send(`<message from='x@impostor.fed.test' to='someone@${A}'><body>hi</body></message>`);
        await peer.expect(/<not-authorized xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']\/>/);
      } finally {
        peer.destroy();
      }
    });

    it('a header to a domain this server does not serve gets <host-unknown/>', async () => {
      const peer = await RawPeer.connect(a.s2s[0]!.port);
      try {
        peer.header(B, 'not-served.fed.test');
        await peer.expect(/<host-unknown xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']\/>/);
      } finally {
        peer.destroy();
      }
    });

    it('a remote server with a wrong certificate and no dialback: the sender gets <remote-server-not-found/>', async () => {
      const alice = await on(a, await newAccount(a, 'alice'));
      const id = uniqueName('wrong');
      await alice.send(chat('someone@wrong.fed.test', 'hello?', id));
      const err = await alice.waitFor(errorFor(id), 15_000, 'the bounce');
      assert.equal(stanzaErrorCondition(err), 'remote-server-not-found');
    });

    it('a remote server that never answers: every queued stanza bounces with <remote-server-timeout/>, others unaffected', async () => {
      const alice = await on(a, await newAccount(a, 'alice'));
      const bob = await on(b, await newAccount(b, 'bob'));
      const ids = [uniqueName('s1'), uniqueName('s2'), uniqueName('s3')];
      const started = Date.now();
      for (const id of ids) await alice.send(chat('someone@silent.fed.test', 'anyone?', id));
      // Meanwhile chat with b goes on.
      await alice.send(chat(bob.bare, 'meanwhile'));
      await bob.waitFor(bodyIs('meanwhile'), 10_000);
      for (const id of ids) {
        const err = await alice.waitFor(errorFor(id), 20_000, `the bounce of ${id}`);
        assert.equal(stanzaErrorCondition(err), 'remote-server-timeout');
      }
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 1000 && elapsed < 15_000, `bounced after the connect timeout (${elapsed} ms)`);
    });
  });
});

const C = 'c.fed.test';
const E = 'e.fed.test';

describe('federation of a cluster (2 s2s instances) with an embedded domain', { skip: clusterSkipReason() ?? skip ?? false }, () => {
  let root: string;
  let dns: TestDns;
  let c: ClusterServer;
  let e: HyphaeServer;
  const open: Session[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hyphae-fed-cluster-'));
    const ca = await createTestCa({ name: 'Hyphae federation cluster test CA' });
    const caFile = writeCa(root, ca);
    dns = await startDns({ srv: {}, a: {} });
    e = await startEmbedded({ domain: E, config: fedConfig({ domain: E, certs: await certFor(root, ca, E), caFile, dnsServers: dns.servers }) });
    c = await startCluster({
      domain: C,
      rosterNodes: 1,
      mucNodes: 1,
      proxy65Nodes: 0,
      s2sNodes: 2,
      config: fedConfig({ domain: C, certs: await certFor(root, ca, C), caFile, dnsServers: dns.servers, s2s: { leaseTtlMs: 2000, queueTimeoutMs: 5000 } }),
    });
    // Both instances behind SRV records of equal priority: peers fail over to the other.
    publish(dns, C, c);
    publish(dns, E, e);
  });

  after(async () => {
    for (const s of open) await s.stop().catch(() => undefined);
    await Promise.all([c?.dispose(), e?.dispose()]);
    dns?.close();
    if (root && !process.env.HYPHAE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  });

  it('carries messages both ways, and after kill -9 of the instance holding the stream every message is delivered or bounced', async () => {
    const alice = await online(c, await newAccount(c, 'alice'));
    const bob = await online(e, await newAccount(e, 'bob'));
    open.push(alice, bob);
    await alice.send(chat(bob.bare, 'from the cluster'));
    await bob.waitFor(bodyIs('from the cluster'), 15_000);
    await bob.send(chat(alice.bare, 'to the cluster'));
    await alice.waitFor(bodyIs('to the cluster'), 15_000);

    // The instance owning e's shard holds the outbound stream.
    const shard = userShard(E); // the same hash places remote domains on s2s shards
    const holder = await redisCommand(c.redis.port, ['GET', `hy:lease:{s2s:shard:${shard}}`]);
    const owner = c.s2s.findIndex((n) => n.nodeId === holder);
    assert.ok(owner >= 0, `an s2s instance holds shard ${shard} (holder ${String(holder)})`);

    const total = 60;
    const ids: string[] = [];
    for (let i = 0; i < total; i++) {
      if (i === 10) await c.killS2s(owner);
      const id = `k${i}-${uniqueName('x')}`;
      ids.push(id);
      await alice.send(chat(bob.bare, `kill ${i}`, id));
      await sleep(50);
    }
    const outcome = new Map<string, 'delivered' | 'bounced'>();
    await waitUntil(() => {
      for (const el of bob.buffered((x) => /^kill \d+$/.test(x.getChildText('body') ?? ''))) outcome.set(String(el.attrs.id), 'delivered');
      for (const el of alice.buffered((x) => x.attrs.type === 'error' && String(x.attrs.id ?? '').startsWith('k'))) {
        if (!outcome.has(String(el.attrs.id))) outcome.set(String(el.attrs.id), 'bounced');
      }
      return ids.every((id) => outcome.has(id));
    }, 40_000, 'every message delivered or bounced');
    const delivered = ids.filter((id) => outcome.get(id) === 'delivered').length;
    const bounced = total - delivered;
    console.log(`# s2s kill -9: ${delivered} delivered, ${bounced} bounced of ${total}`);
    assert.ok(delivered >= total - 15, `most messages got through (${delivered} delivered, ${bounced} bounced)`);
    // Delivered ones kept their order.
    const order = bob.buffered((x) => /^kill \d+$/.test(x.getChildText('body') ?? '')).map((x) => Number((x.getChildText('body') ?? '').split(' ')[1]));
    assert.deepEqual(order, [...order].sort((x, y) => x - y), 'delivered in order');
    // Both ways work afterwards (e reconnects to the surviving instance).
    await bob.send(chat(alice.bare, 'after the kill'));
    await alice.waitFor(bodyIs('after the kill'), 20_000);
    await alice.send(chat(bob.bare, 'after the kill too'));
    await bob.waitFor(bodyIs('after the kill too'), 20_000);
  });
});


/**
 * A server-to-server peer with a certificate for another domain that offers
 * only SASL EXTERNAL after TLS, and ends the stream on anything else.
 */
async function startWrongCertPeer(cert: CertFiles, fakes: Server[]): Promise<number> {
  const { TLSSocket } = await import('node:tls');
  const header = (id: string) => `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='wrong.fed.test' id='${id}' version='1.0'>`;
  const server = createServer((raw: Socket) => {
    raw.on('error', () => undefined);
    let text = '';
    const onPlain = (d: Buffer) => {
      text += d.toString('utf8');
      if (/<stream:stream[^>]*>/.test(text) && !text.includes('<starttls')) {
        if (!text.includes('__sent')) {
          raw.write(`${header('p1')}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`);
          text += '__sent';
        }
        return;
      }
      if (text.includes('<starttls')) {
        raw.removeListener('data', onPlain);
        raw.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        const tls = new TLSSocket(raw, { isServer: true, cert: cert.certPem, key: cert.keyPem });
        tls.on('error', () => undefined);
        let t = '';
        let sent = false;
        tls.on('data', (c: Buffer) => {
          t += c.toString('utf8');
          if (!sent && /<stream:stream[^>]*>/.test(t)) {
            sent = true;
            tls.write(`${header('p2')}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>`);
            t = '';
            return;
          }
          if (sent && t.includes('<')) {
            tls.end("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
          }
        });
      }
    };
    raw.on('data', onPlain);
  });
  fakes.push(server);
  return new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
}

