/**
 * XEP-0199 server-to-client pings of idle clients, in both modes (in the
 * cluster the pinged client and its contact sit on different c2s nodes),
 * with tiny intervals set through the config (modules.ping idleSeconds 1,
 * timeoutSeconds 1): a raw client that answers once and then stays silent
 * (pinged from the domain, its answer swallowed, then <connection-timeout/>
 * and its contact sees it go unavailable), and @xmpp/client, which answers
 * every ping and stays connected.
 *
 * Run: npx tsc -b test services/hyphae && node --test --test-concurrency=1 test/dist/e2e/ping.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, Session, login, newAccount, rawStream, sleep, type RawStream, type XmlElement } from '../harness/clients.js';
import { metricValue, rosterSkipReason, scrapeMetrics, startCluster, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { acceptRosterPushes, presenceFrom, sendPresence, subscribeBothWays } from '../harness/im.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';
const IDLE_S = 1;
const TIMEOUT_S = 1;

function pingSuite(mode: Mode): void {
  const skip = rosterSkipReason(mode);
  describe(`XEP-0199 pings of idle clients (${mode})`, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    const raws: RawStream[] = [];
    const nodeA = 0;
    const nodeB = mode === 'cluster' ? 1 : 0;
    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
      it(name, { timeout: timeoutMs, skip: skip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
    };
    const online = async (acc: { username: string; password: string }, node: number, resource: string): Promise<Session> => {
      const s = acceptRosterPushes(await login(srv(), { username: acc.username, password: acc.password, node, resource }));
      sessions.push(s);
      await sendPresence(s);
      await s.waitFor(presenceFrom(s.jid), 10_000, 'the own initial presence');
      return s;
    };
    /** hyphae_ping_client_pings_total{outcome} of one c2s node. */
    const pings = async (node: number, outcome: string): Promise<number> =>
      metricValue(await scrapeMetrics(srv().c2s[node]?.httpPort ?? 0), 'hyphae_ping_client_pings_total', { outcome }) ?? 0;
    const isPing = (to: string) => (el: XmlElement) =>
      el.name === 'iq' && el.attrs.type === 'get' && el.attrs.to === to && el.getChild('ping', NS.ping) !== undefined;

    before(async () => {
      if (skip) return;
      const config = { modules: { ping: { idleSeconds: IDLE_S, timeoutSeconds: TIMEOUT_S } } };
      server = mode === 'embedded' ? await startEmbedded({ config }) : await startCluster({ c2sNodes: 2, config });
    }, { timeout: 120_000 });
    afterEach(async () => {
      for (const r of raws.splice(0)) r.destroy();
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
    });
    after(async () => {
      await server?.dispose();
    });

    test('§4.1: a silent client is pinged from the domain, then its stream ends with <connection-timeout/> and its contact sees it go unavailable', 45_000, async () => {
      const [j, r] = await Promise.all([newAccount(srv(), 'juliet'), newAccount(srv(), 'romeo')]);
      const [first, romeo] = await Promise.all([online(j, nodeA, 'setup'), online(r, nodeB, 'orchard')]);
      await subscribeBothWays(first, romeo);
      await first.stop();
      await romeo.waitFor(presenceFrom(first.jid, 'unavailable'), 10_000, 'the setup session gone');

      const raw = await rawStream(srv(), { node: nodeA });
      raws.push(raw);
      const full = await raw.loginPlain(j.username, j.password, 'silent');
      const base = { answered: await pings(nodeA, 'answered'), timeout: await pings(nodeA, 'timeout') };
      await raw.write('<presence/>');
      const quietSince = Date.now();
      await romeo.waitFor(presenceFrom(full), 10_000, 'the raw client available');

      // The first ping comes after idleSeconds of silence; answered, it is swallowed (counted) and the stream goes on.
      const ping1 = await raw.next(isPing(full), 10_000, 'the first ping');
      assert.ok(Date.now() - quietSince >= IDLE_S * 1000 - 100, 'not before idleSeconds of silence');
      const id1 = String(ping1.attrs.id ?? '');
      assert.equal(ping1.toString(), `<iq type="get" id="${id1}" from="${srv().domain}" to="${full}"><ping xmlns="${NS.ping}"/></iq>`);
      await raw.write(`<iq type='result' id='${id1}' to='${srv().domain}'/>`);
      // (>=: in the embedded server Romeo's answers count on the same process.)
      await waitUntil(async () => (await pings(nodeA, 'answered')) >= base.answered + 1, 10_000, 'the answer counted');

      // The next one it leaves unanswered: timeoutSeconds later the stream ends.
      const ping2 = await raw.next(isPing(full), 10_000, 'the second ping');
      assert.notEqual(ping2.attrs.id, id1, 'a fresh id');
      const pinged = Date.now();
      assert.equal(await raw.streamError(10_000), 'connection-timeout');
      assert.ok(Date.now() - pinged >= TIMEOUT_S * 1000 - 100, 'not before timeoutSeconds');
      await raw.waitClosed(10_000);
      await romeo.waitFor(presenceFrom(full, 'unavailable'), 10_000, 'the silent client unavailable');
      assert.equal(await pings(nodeA, 'timeout'), base.timeout + 1);
      assert.ok(romeo.isOnline, 'the contact is untouched');
    });

    test('§4.1: @xmpp/client answers every ping (<service-unavailable/> is an answer too) and stays connected', 45_000, async () => {
      const acc = await newAccount(srv(), 'busy');
      const base = await pings(nodeB, 'answered');
      const s = await online(acc, nodeB, 'idle');
      await sleep((IDLE_S + TIMEOUT_S) * 1000 * 2 + 500);
      const got = s.buffered(isPing(s.jid));
      assert.ok(got.length >= 2, `pinged at least twice, got ${got.length}`);
      for (const p of got) assert.equal(p.attrs.from, srv().domain);
      assert.ok(s.isOnline, 'still connected');
      assert.deepEqual(s.streamErrors, []);
      assert.ok((await pings(nodeB, 'answered')) >= base + got.length, 'every answer swallowed at the edge');
      const pong = await s.ping(srv().domain);
      assert.equal(pong.attrs.type, 'result', 'the stream works');
    });
  });
}

pingSuite('embedded');
pingSuite('cluster');
