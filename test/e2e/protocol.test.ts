/**
 * The protocol suite: one set of tests run against both modes (DESIGN.md
 * invariant 4). In cluster mode the two users of each test sit on different
 * c2s nodes, so every exchange crosses the bus.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/protocol.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  NS,
  Session,
  bareJid,
  login,
  loginFails,
  newAccount,
  RawStream,
  stanzaErrorCondition,
  tryRegister,
  uniqueName,
  xml,
  type LoginOptions,
  type XmlElement,
} from '../harness/clients.js';
import {
  clusterSkipReason,
  embeddedSkipReason,
  httpGet,
  scrapeMetrics,
  startCluster,
  startEmbedded,
  type HyphaeServer,
} from '../harness/server.js';
import { runSlixmpp, slixmppSkipReason } from '../harness/slixmpp.js';
import { logLevelNumber, withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';

function protocolSuite(mode: Mode): void {
  const skip = mode === 'embedded' ? embeddedSkipReason() : clusterSkipReason();
  describe(`protocol suite (${mode})`, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    /** Node of the "first" user and of the "second" user of a test: different nodes in cluster mode. */
    const nodeA = 0;
    const nodeB = mode === 'cluster' ? 1 : 0;

    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const connect = async (opts: LoginOptions): Promise<Session> => {
      const s = await login(srv(), opts);
      sessions.push(s);
      return s;
    };
    const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>): void => {
      it(name, { timeout: timeoutMs, skip: skip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
    };

    before(async () => {
      if (skip) return;
      server = mode === 'embedded' ? await startEmbedded() : await startCluster({ c2sNodes: 2 });
    }, { timeout: 120_000 });
    afterEach(async () => {
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
    });
    after(async () => {
      await server?.dispose();
    });

    // --- registration ------------------------------------------------------

    test('XEP-0077: registers a new account; a taken username gets <conflict/>', 30_000, async () => {
      const username = uniqueName('reg');
      const first = await tryRegister(srv(), username, 'first-password', { node: nodeA });
      assert.equal(first.type, 'result', `registration answered ${first.stanza.toString()}`);
      const again = await tryRegister(srv(), username, 'second-password', { node: nodeB });
      assert.equal(again.type, 'error', `second registration answered ${again.stanza.toString()}`);
      assert.equal(again.condition, 'conflict');
      // The refused registration did not overwrite the account.
      const s = await connect({ username, password: 'first-password', node: nodeB });
      assert.equal(s.bare, `${username}@${srv().domain}`);
      const err = await loginFails(srv(), { username, password: 'second-password' });
      assert.equal(err.condition, 'not-authorized');
    });

    test('XEP-0077: registration form is advertised and answers a get', 20_000, async () => {
      const raw = await RawStream.connect(srv(), { node: nodeA });
      try {
        await raw.openStream();
        const features = await raw.starttls();
        assert.ok(features.getChild('register', NS.registerFeature), `no iq-register feature in ${features.toString()}`);
        await raw.write(`<iq type='get' id='form1'><query xmlns='${NS.register}'/></iq>`);
        const form = await raw.next((el) => el.name === 'iq' && el.attrs.id === 'form1');
        assert.equal(form.attrs.type, 'result', form.toString());
        const q = form.getChild('query', NS.register);
        assert.ok(q?.getChild('username') && q.getChild('password'), `form lacks username/password: ${form.toString()}`);
      } finally {
        raw.destroy();
      }
    });

    // --- TLS and SASL ------------------------------------------------------

    test('before STARTTLS: STARTTLS is offered and PLAIN is not', 20_000, async () => {
      const raw = await RawStream.connect(srv(), { node: nodeA });
      try {
        const features = await raw.openStream();
        assert.ok(features.getChild('starttls', NS.tls), `no starttls in ${features.toString()}`);
        const mechs = (features.getChild('mechanisms', NS.sasl)?.getChildren('mechanism') ?? []).map((m) => m.text());
        assert.ok(!mechs.includes('PLAIN'), `PLAIN offered before TLS: ${features.toString()}`);
        assert.equal(raw.header?.from, srv().domain, 'stream header from');
        assert.ok(raw.header?.id, 'stream header has an id');
        assert.equal(raw.header?.version, '1.0');
      } finally {
        raw.destroy();
      }
    });

    test('STARTTLS + SCRAM-SHA-1 login (all three mechanisms offered after TLS)', 30_000, async () => {
      const acc = await newAccount(srv());
      const s = await connect({ ...acc, mechanism: 'SCRAM-SHA-1', node: nodeA });
      assert.equal(s.mechanism, 'SCRAM-SHA-1');
      for (const m of ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']) {
        assert.ok(s.offeredMechanisms.includes(m), `${m} not offered after TLS: ${s.offeredMechanisms.join(', ')}`);
      }
      assert.equal(s.bare, acc.bare);
      assert.ok(s.client.isSecure());
      const pong = await s.ping(srv().domain);
      assert.equal(pong.attrs.type, 'result');
    });

    test('XEP-0368 direct TLS + PLAIN login', 30_000, async () => {
      const acc = await newAccount(srv());
      const s = await connect({ ...acc, mechanism: 'PLAIN', directTls: true, node: nodeB });
      assert.equal(s.mechanism, 'PLAIN');
      assert.equal(s.bare, acc.bare);
      const pong = await s.ping(srv().domain);
      assert.equal(pong.attrs.type, 'result');
    });

    test('STARTTLS + PLAIN login', 30_000, async () => {
      const acc = await newAccount(srv());
      const s = await connect({ ...acc, mechanism: 'PLAIN', node: nodeA });
      assert.equal(s.bare, acc.bare);
    });

    test('SCRAM-SHA-256 login with slixmpp (server-generated resource) and a message each way', 60_000, async (t) => {
      const reason = slixmppSkipReason();
      if (reason) {
        t.skip(reason);
        return;
      }
      const py = await newAccount(srv(), 'py');
      const js = await newAccount(srv(), 'js');
      const peer = await connect({ ...js, node: nodeB, resource: 'peer' });
      const body = `hello from slixmpp ${uniqueName('')}`;
      const expect = `hello back ${uniqueName('')}`;
      const run = runSlixmpp(srv(), { jid: py.bare, password: py.password, peer: peer.jid, body, expect, node: nodeA });
      try {
        const bound = await run.event('bound');
        assert.equal(bound.mechanism, 'SCRAM-SHA-256');
        const boundJid = String(bound.jid);
        assert.equal(bareJid(boundJid), py.bare);
        assert.ok(boundJid.length > py.bare.length + 1, `no server-generated resource in ${boundJid}`);
        const msg = await Promise.race([
          peer.waitFor((m) => m.name === 'message' && m.getChildText('body') === body, 20_000, 'the slixmpp message'),
          run.done.then((r) => {
            throw new Error(`slixmpp exited ${r.code} before its message arrived: ${JSON.stringify(r.events)} ${r.stderr.slice(-1500)}`);
          }),
        ]);
        assert.equal(msg.attrs.from, boundJid, 'from is the slixmpp full JID');
        await peer.send(xml('message', { to: boundJid, type: 'chat' }, xml('body', {}, expect)));
        const result = await run.done;
        assert.equal(result.code, 0, `slixmpp exit ${result.code}: ${JSON.stringify(result.events)} ${result.stderr.slice(-1500)}`);
        const received = result.events.find((e) => e.event === 'received');
        assert.equal(received?.from, peer.jid);
      } finally {
        run.kill();
      }
    });

    test('wrong password and unknown user → SASL <not-authorized/> (SCRAM-SHA-1 and PLAIN)', 30_000, async () => {
      const acc = await newAccount(srv());
      for (const mechanism of ['SCRAM-SHA-1', 'PLAIN'] as const) {
        const bad = await loginFails(srv(), { username: acc.username, password: `${acc.password}x`, mechanism, node: nodeA });
        assert.equal(bad.condition, 'not-authorized', `${mechanism} wrong password: ${bad.message}`);
        const unknown = await loginFails(srv(), { username: uniqueName('ghost'), password: 'whatever', mechanism, node: nodeB });
        assert.equal(unknown.condition, 'not-authorized', `${mechanism} unknown user: ${unknown.message}`);
      }
      // Still fine with the right one.
      await connect({ ...acc, node: nodeA });
    });

    // --- resource binding --------------------------------------------------

    test('binds a client-chosen resource and server-generated ones', 30_000, async () => {
      const acc = await newAccount(srv());
      const chosen = 'Chosen Résource-1';
      const s1 = await connect({ ...acc, resource: chosen, node: nodeA });
      assert.equal(s1.jid, `${acc.bare}/${chosen}`);
      const s2 = await connect({ ...acc, node: nodeB });
      const s3 = await connect({ ...acc, node: nodeA });
      for (const s of [s2, s3]) {
        assert.equal(s.bare, acc.bare);
        assert.ok(s.resource.length > 0, 'server generated an empty resource');
      }
      assert.notEqual(s2.resource, s3.resource, 'server-generated resources must differ');
      assert.notEqual(s2.resource, chosen);
      // All three sessions are live at once.
      for (const s of [s1, s2, s3]) assert.equal((await s.ping(srv().domain)).attrs.type, 'result');
    });

    test('legacy session establishment (RFC 3921) is answered with a result', 20_000, async () => {
      const acc = await newAccount(srv());
      const s = await connect({ ...acc, node: nodeA });
      const res = await s.iq(xml('iq', { type: 'set' }, xml('session', { xmlns: NS.session })));
      assert.equal(res.attrs.type, 'result', res.toString());
    });

    test('second login with the same resource kicks the first with a <conflict/> stream error', 30_000, async () => {
      const acc = await newAccount(srv());
      const first = await connect({ ...acc, resource: 'dup', node: nodeA });
      const observer = await connect({ ...(await newAccount(srv())), node: nodeA });
      const second = await connect({ ...acc, resource: 'dup', node: nodeB });
      assert.equal(second.jid, `${acc.bare}/dup`);
      assert.equal(await first.waitStreamError(10_000), 'conflict');
      await first.waitOffline(10_000);
      assert.equal(second.isOnline, true);
      assert.equal(second.streamErrors.length, 0, `second got stream errors: ${second.streamErrors.join(', ')}`);
      // The full JID now routes to the second session.
      const pong = await observer.ping(second.jid);
      assert.equal(pong.attrs.type, 'result', pong.toString());
      assert.equal(pong.attrs.from, second.jid);
    });

    // --- routing -----------------------------------------------------------

    test('1,000 messages between two users arrive complete and in order', 120_000, async (t) => {
      const a = await connect({ ...(await newAccount(srv(), 'snd')), node: nodeA, resource: 'a' });
      const b = await connect({ ...(await newAccount(srv(), 'rcv')), node: nodeB, resource: 'b' });
      const N = 1000;
      const tag = uniqueName('seq');
      const started = Date.now();
      const arrived = b.collect(
        N,
        (m) => m.name === 'message' && (m.getChildText('body') ?? '').startsWith(`${tag}:`),
        90_000,
        `${N} messages`,
      );
      const writes: Array<Promise<void>> = [];
      for (let i = 0; i < N; i++) {
        writes.push(a.send(xml('message', { to: b.jid, type: 'chat', id: `${tag}-${i}` }, xml('body', {}, `${tag}:${i}`))));
      }
      await Promise.all(writes);
      const got = await arrived;
      const elapsed = Date.now() - started;
      t.diagnostic(`${N} messages (${mode}, node ${nodeA} → node ${nodeB}) in ${elapsed} ms`);
      const bodies = got.map((m) => m.getChildText('body'));
      const expected = Array.from({ length: N }, (_, i) => `${tag}:${i}`);
      const firstBad = bodies.findIndex((bd, i) => bd !== expected[i]);
      assert.equal(firstBad, -1, `out of order at ${firstBad}: got ${bodies.slice(Math.max(0, firstBad - 2), firstBad + 3).join(' | ')}`);
      for (const m of got) {
        assert.equal(m.attrs.from, a.jid);
        assert.equal(m.attrs.to, b.jid);
        assert.equal(m.attrs.type, 'chat');
      }
      assert.deepEqual(got.map((m) => m.attrs.id), expected.map((_, i) => `${tag}-${i}`));
      // Nothing extra (duplicates) trailing behind.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(b.buffered((m) => m.name === 'message' && (m.getChildText('body') ?? '').startsWith(`${tag}:`)).length, 0, 'duplicates');
      assert.equal(a.buffered((m) => m.name === 'message' && m.attrs.type === 'error').length, 0, 'sender got errors');
    });

    test('iq round trip between two full JIDs', 30_000, async () => {
      const a = await connect({ ...(await newAccount(srv())), node: nodeA, resource: 'ra' });
      const b = await connect({ ...(await newAccount(srv())), node: nodeB, resource: 'rb' });
      const seen: XmlElement[] = [];
      b.client.iqCallee.get('urn:hyphae:e2e:echo', 'echo', (ctx) => {
        seen.push(ctx.stanza);
        return xml('echo', { xmlns: 'urn:hyphae:e2e:echo' }, `echo:${ctx.element.text()}`);
      });
      const res = await a.iq(xml('iq', { type: 'get', to: b.jid }, xml('echo', { xmlns: 'urn:hyphae:e2e:echo' }, 'payload-42')));
      assert.equal(res.attrs.type, 'result', res.toString());
      assert.equal(res.attrs.from, b.jid);
      assert.equal(res.attrs.to, a.jid);
      assert.equal(res.getChild('echo', 'urn:hyphae:e2e:echo')?.text(), 'echo:payload-42');
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.attrs.from, a.jid, 'the recipient sees the stamped sender');
    });

    test('XEP-0199: ping the server', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeB });
      const pong = await s.ping(srv().domain);
      assert.equal(pong.attrs.type, 'result', pong.toString());
      assert.equal(pong.attrs.from, srv().domain);
      assert.equal(pong.attrs.to, s.jid);
    });

    test('XEP-0030: disco#info and disco#items of the server', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeA });
      const info = await s.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoInfo })));
      assert.equal(info.attrs.type, 'result', info.toString());
      const q = info.getChild('query', NS.discoInfo);
      assert.ok(q, info.toString());
      const identities = q.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`);
      assert.ok(identities.includes('server/im'), `identities: ${identities.join(', ')}`);
      const features = q.getChildren('feature').map((f) => f.attrs.var);
      for (const f of [NS.discoInfo, NS.discoItems, NS.ping, NS.version]) {
        assert.ok(features.includes(f), `feature ${f} missing from ${features.join(', ')}`);
      }
      const items = await s.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoItems })));
      assert.equal(items.attrs.type, 'result', items.toString());
      assert.ok(items.getChild('query', NS.discoItems), items.toString());
    });

    test('XEP-0030: disco#info and disco#items of an account (bare JID)', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeA });
      const info = await s.iq(xml('iq', { type: 'get', to: s.bare }, xml('query', { xmlns: NS.discoInfo })));
      assert.equal(info.attrs.type, 'result', info.toString());
      assert.equal(info.attrs.from, s.bare);
      const identities = (info.getChild('query', NS.discoInfo)?.getChildren('identity') ?? []).map((i) => `${i.attrs.category}/${i.attrs.type}`);
      assert.ok(identities.includes('account/registered'), `identities: ${identities.join(', ')}`);
      const items = await s.iq(xml('iq', { type: 'get', to: s.bare }, xml('query', { xmlns: NS.discoItems })));
      assert.equal(items.attrs.type, 'result', items.toString());
    });

    test('XEP-0092: software version of the server', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeB });
      const v = await s.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.version })));
      assert.equal(v.attrs.type, 'result', v.toString());
      const q = v.getChild('query', NS.version);
      assert.ok((q?.getChildText('name') ?? '').length > 0, `no name: ${v.toString()}`);
      assert.ok((q?.getChildText('version') ?? '').length > 0, `no version: ${v.toString()}`);
    });

    // --- account management ------------------------------------------------

    test('XEP-0077: change password, then only the new one works', 30_000, async () => {
      const acc = await newAccount(srv());
      const s = await connect({ ...acc, node: nodeA });
      const newPassword = `${acc.password}-new`;
      const res = await s.iq(
        xml(
          'iq',
          { type: 'set', to: srv().domain },
          xml('query', { xmlns: NS.register }, xml('username', {}, acc.username), xml('password', {}, newPassword)),
        ),
      );
      assert.equal(res.attrs.type, 'result', res.toString());
      await s.stop();
      const again = await connect({ username: acc.username, password: newPassword, node: nodeB });
      assert.equal(again.bare, acc.bare);
      const plain = await connect({ username: acc.username, password: newPassword, node: nodeA, mechanism: 'PLAIN' });
      assert.equal(plain.bare, acc.bare);
      const old = await loginFails(srv(), { ...acc, node: nodeA });
      assert.equal(old.condition, 'not-authorized');
    });

    test('XEP-0077: cancel registration closes every session and the account is gone', 30_000, async () => {
      const acc = await newAccount(srv());
      const s1 = await connect({ ...acc, node: nodeA, resource: 'one' });
      const s2 = await connect({ ...acc, node: nodeB, resource: 'two' });
      const res = await s1.iq(xml('iq', { type: 'set', to: srv().domain }, xml('query', { xmlns: NS.register }, xml('remove'))));
      assert.equal(res.attrs.type, 'result', res.toString());
      await s1.waitOffline(10_000);
      await s2.waitOffline(10_000);
      const after = await loginFails(srv(), { ...acc, node: nodeA });
      assert.equal(after.condition, 'not-authorized');
      // The username is free again.
      const re = await tryRegister(srv(), acc.username, 'reborn-password', { node: nodeB });
      assert.equal(re.type, 'result', re.stanza.toString());
      await connect({ username: acc.username, password: 'reborn-password', node: nodeA });
    });

    // --- errors ------------------------------------------------------------

    test('stanzas to a nonexistent local user → service-unavailable', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeA });
      const ghost = `${uniqueName('nobody')}@${srv().domain}`;
      for (const to of [ghost, `${ghost}/res`]) {
        const res = await s.iq(xml('iq', { type: 'get', to }, xml('query', { xmlns: NS.version })));
        assert.equal(res.attrs.type, 'error', `iq to ${to}: ${res.toString()}`);
        assert.equal(stanzaErrorCondition(res), 'service-unavailable', `iq to ${to}: ${res.toString()}`);
        assert.equal(res.attrs.from, to);
      }
      await s.send(xml('message', { to: ghost, type: 'chat', id: 'ghost-msg' }, xml('body', {}, 'anyone?')));
      const bounce = await s.waitFor((m) => m.name === 'message' && m.attrs.id === 'ghost-msg', 10_000, 'the message bounce');
      assert.equal(bounce.attrs.type, 'error', bounce.toString());
      assert.equal(stanzaErrorCondition(bounce), 'service-unavailable', bounce.toString());
    });

    test('iq to an offline resource of an existing account → service-unavailable', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeA });
      const other = await newAccount(srv());
      const to = `${other.bare}/not-connected`;
      const res = await s.iq(xml('iq', { type: 'get', to }, xml('ping', { xmlns: NS.ping })));
      assert.equal(res.attrs.type, 'error', res.toString());
      assert.equal(stanzaErrorCondition(res), 'service-unavailable', res.toString());
    });

    test('iq without id, with a bad type, or without a payload → bad-request', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeB });
      await s.sendRaw(`<iq type='get' to='${srv().domain}'><ping xmlns='${NS.ping}'/></iq>`);
      const noId = await s.waitFor((el) => el.name === 'iq' && el.attrs.type === 'error' && !el.attrs.id, 10_000, 'error for iq without id');
      assert.equal(stanzaErrorCondition(noId), 'bad-request', noId.toString());

      await s.sendRaw(`<iq type='fetch' id='badtype1' to='${srv().domain}'><ping xmlns='${NS.ping}'/></iq>`);
      const badType = await s.waitFor((el) => el.name === 'iq' && el.attrs.id === 'badtype1', 10_000, 'error for iq with bad type');
      assert.equal(badType.attrs.type, 'error', badType.toString());
      assert.equal(stanzaErrorCondition(badType), 'bad-request', badType.toString());

      const empty = await s.iq(xml('iq', { type: 'get', to: srv().domain }));
      assert.equal(empty.attrs.type, 'error', empty.toString());
      assert.equal(stanzaErrorCondition(empty), 'bad-request', empty.toString());
      // The stream survived all three.
      assert.equal((await s.ping(srv().domain)).attrs.type, 'result');
    });

    test('unknown iq namespace to the server → service-unavailable', 20_000, async () => {
      const s = await connect({ ...(await newAccount(srv())), node: nodeA });
      for (const type of ['get', 'set']) {
        const res = await s.iq(xml('iq', { type, to: srv().domain }, xml('query', { xmlns: 'urn:hyphae:e2e:no-such-thing' })));
        assert.equal(res.attrs.type, 'error', res.toString());
        assert.equal(stanzaErrorCondition(res), 'service-unavailable', `${type}: ${res.toString()}`);
        assert.equal(res.attrs.from, srv().domain);
      }
      // An iq with no `to` is addressed to the account (RFC 6120 §10.3.3); an unknown namespace is refused too.
      const self = await s.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'urn:hyphae:e2e:no-such-thing' })));
      assert.equal(self.attrs.type, 'error', self.toString());
      assert.equal(stanzaErrorCondition(self), 'service-unavailable', self.toString());
    });

    // --- observability -----------------------------------------------------

    test('health, readiness and Prometheus metrics on every process; JSON logs', 20_000, async () => {
      const ports = new Set<number>([srv().httpPort, ...srv().c2s.map((n) => n.httpPort)]);
      for (const port of ports) {
        assert.equal((await httpGet(port, '/healthz')).status, 200, `/healthz on ${port}`);
        assert.equal((await httpGet(port, '/readyz')).status, 200, `/readyz on ${port}`);
        const metrics = await scrapeMetrics(port);
        assert.match(metrics, /^# TYPE hyphae_\w+ /m, `no hyphae_ metrics on ${port}`);
      }
      const json = srv()
        .logs()
        .map((l) => l.replace(/^\[[^\]]+\] /, ''))
        .filter((l) => l.startsWith('{'));
      assert.ok(json.length > 0, 'no JSON log lines');
      const rec = JSON.parse(json[0] ?? '{}') as Record<string, unknown>;
      assert.ok(!Number.isNaN(logLevelNumber(rec.level)), `no pino level in ${json[0]}`);
      assert.equal(typeof rec.msg, 'string');
    });
  });
}

protocolSuite('embedded');
protocolSuite('cluster');
