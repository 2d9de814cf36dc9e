/**
 * Interop: Hyphae federating with Prosody (Debian's package), both
 * directions, with certificates from one test CA:
 *   h.fed.test — Hyphae (embedded), finds Prosody through SRV in a test DNS server;
 *   p.fed.test — Prosody that trusts the test CA: SASL EXTERNAL both ways;
 *   q.fed.test — Prosody with a certificate from another CA, trusting only
 *                the system's roots: neither side can authenticate the other
 *                by certificate, so dialback both ways.
 * Prosody reaches Hyphae through a static route of the Prosody harness.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/prosody-federation.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa } from '@hyphae/pki';
import { Session, login, newAccount, uniqueName, xml, type XmlElement } from '../harness/clients.js';
import { embeddedSkipReason, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { acceptRosterPushes, presenceFrom, rosterGet, sendPresence, subscribeBothWays } from '../harness/im.js';
import { join as joinRoom, reflectionOf } from '../harness/muc.js';
import { startDns, type TestDns } from '../harness/dns.js';
import { certFor, fedConfig, metricSum, writeCa } from '../harness/federation.js';
import { prosodySkipReason, startProsody, withProsodyLogs, type ProsodyServer } from '../harness/prosody.js';
import { withServerLogs } from '../harness/util.js';

const H = 'h.fed.test';
const P = 'p.fed.test';
const Q = 'q.fed.test';

function chat(to: string, body: string): XmlElement {
  return xml('message', { to, type: 'chat', id: uniqueName('m') }, xml('body', {}, body));
}
const bodyIs = (body: string) => (el: XmlElement) => el.name === 'message' && el.getChildText('body') === body;

async function online(server: Parameters<typeof login>[0], username: string, password: string): Promise<Session> {
  const s = await login(server, { username, password });
  acceptRosterPushes(s);
  // Prosody pushes roster changes only to interested resources (RFC 6121 §2.1.6).
  await rosterGet(s);
  await sendPresence(s);
  return s;
}

describe('federation with Prosody', { skip: embeddedSkipReason() ?? prosodySkipReason() ?? false }, () => {
  let root: string;
  let dns: TestDns;
  let h: HyphaeServer;
  let p: ProsodyServer;
  let q: ProsodyServer;
  const open: Session[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hyphae-prosody-fed-'));
    const ca = await createTestCa({ name: 'Hyphae/Prosody federation test CA' });
    const caFile = writeCa(root, ca);
    dns = await startDns({ srv: {}, a: {} });
    h = await startEmbedded({ domain: H, config: fedConfig({ domain: H, certs: await certFor(root, ca, H), caFile, dnsServers: dns.servers }) });
    const route = { [H]: { host: '127.0.0.1', port: h.s2s[0]!.port }, [`conference.${H}`]: { host: '127.0.0.1', port: h.s2s[0]!.port } };
    const pc = await certFor(root, ca, P);
    const qc = await certFor(join(root, 'other'), await createTestCa({ name: 'Another CA' }), Q);
    p = await startProsody({ domain: P, certPem: pc.certPem, keyPem: pc.keyPem, caPem: ca.certPem, trustCa: true, muc: true, staticRoutes: route, users: [{ user: 'paula', password: 'secret-p' }] });
    q = await startProsody({ domain: Q, certPem: qc.certPem, keyPem: qc.keyPem, caPem: ca.certPem, trustCa: false, staticRoutes: route, users: [{ user: 'quinn', password: 'secret-q' }] });
    for (const [domain, server] of [[P, p], [`conference.${P}`, p], [Q, q]] as const) {
      dns.zone.srv[`_xmpp-server._tcp.${domain}`] = [{ target: `s2s.${domain}`, port: server.s2sPort }];
      dns.zone.a[`s2s.${domain}`] = '127.0.0.1';
    }
  });

  after(async () => {
    for (const s of open) await s.stop().catch(() => undefined);
    await Promise.all([h?.dispose(), p?.stop(), q?.stop()]);
    dns?.close();
    if (root && !process.env.HYPHAE_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  });

  it('a Hyphae user and a Prosody user add each other and chat (SASL EXTERNAL both ways)', async (t) => {
    await withProsodyLogs(t, [p], () => withServerLogs(t, h, async () => {
      const acc = await newAccount(h, 'hanna');
      const hanna = await online(h, acc.username, acc.password);
      const paula = await online(p, 'paula', 'secret-p');
      open.push(hanna, paula);
      await subscribeBothWays(hanna, paula, 20_000);
      await sendPresence(paula, {}, { status: 'prosody here' });
      const seen = await hanna.waitFor(presenceFrom(paula.jid), 20_000, "paula's presence");
      assert.equal(seen.getChildText('status'), 'prosody here');
      await hanna.send(chat(paula.bare, 'hello Prosody'));
      await paula.waitFor(bodyIs('hello Prosody'), 20_000, 'the message at Prosody');
      await paula.send(chat(hanna.bare, 'hello Hyphae'));
      await hanna.waitFor(bodyIs('hello Hyphae'), 20_000, 'the message from Prosody');
      assert.ok(await metricSum(h, 'hyphae_s2s_auth_total', { direction: 'out', method: 'external' }) >= 1, 'Hyphae → Prosody: EXTERNAL');
      assert.ok(await metricSum(h, 'hyphae_s2s_auth_total', { direction: 'in', method: 'external' }) >= 1, 'Prosody → Hyphae: EXTERNAL');
      // Prosody answers server iqs from Hyphae users.
      const pong = await hanna.ping(P, 20_000);
      assert.equal(pong.attrs.type, 'result');
    }));
  });

  it('a Hyphae user joins a room on Prosody', async (t) => {
    await withProsodyLogs(t, [p], () => withServerLogs(t, h, async () => {
      const acc = await newAccount(h, 'hugo');
      const hugo = await online(h, acc.username, acc.password);
      open.push(hugo);
      const room = `${uniqueName('lobby')}@conference.${P}`;
      const joined = await joinRoom(hugo, room, 'hugo', { timeoutMs: 20_000 });
      assert.ok(joined.codes.includes(110), 'self-presence from the Prosody room');
      const id = uniqueName('gc');
      await hugo.send(xml('message', { to: room, type: 'groupchat', id }, xml('body', {}, 'hi from Hyphae')));
      await hugo.waitFor(reflectionOf(room, id), 20_000, 'the reflection from Prosody');
    }));
  });

  it('dialback with a Prosody whose certificate we do not trust and which does not trust ours', async (t) => {
    await withProsodyLogs(t, [q], () => withServerLogs(t, h, async () => {
      const acc = await newAccount(h, 'henry');
      const henry = await online(h, acc.username, acc.password);
      const quinn = await online(q, 'quinn', 'secret-q');
      open.push(henry, quinn);
      await henry.send(chat(quinn.bare, 'dialback to Prosody'));
      await quinn.waitFor(bodyIs('dialback to Prosody'), 20_000, 'the message at Prosody (q)');
      await quinn.send(chat(henry.bare, 'dialback from Prosody'));
      await henry.waitFor(bodyIs('dialback from Prosody'), 20_000, 'the message from Prosody (q)');
      assert.ok(await metricSum(h, 'hyphae_s2s_auth_total', { direction: 'out', method: 'dialback' }) >= 1, 'Hyphae → Prosody (q): dialback');
      assert.ok(await metricSum(h, 'hyphae_s2s_auth_total', { direction: 'in', method: 'dialback' }) >= 1, 'Prosody (q) → Hyphae: dialback');
    }));
  });
});
