/**
 * XEP-0280 Message Carbons with real clients: @xmpp/client, and slixmpp's
 * own xep_0280 plugin for one scenario. One suite against both modes
 * (DESIGN.md invariant 4); in the cluster a user's resources sit on both
 * c2s nodes and the contact on the other, so flags, copies and the
 * original cross the bus.
 *
 * Run: npx tsc -b test services/hyphae && node --test --test-concurrency=1 test/dist/e2e/carbons.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, Session, login, newAccount, stanzaErrorCondition, uniqueName, xml, type XmlElement } from '../harness/clients.js';
import { metricValue, rosterSkipReason, scrapeMetrics, startCluster, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { presenceFrom, sendPresence } from '../harness/im.js';
import { expectNothing, track } from '../harness/muc.js';
import { NS_CARBONS, NS_CARBONS_RULES, enableCarbons, forwardedOf, isAnyCopy, isCopy, runSlixCarbons, slixCarbonsSkipReason, toggleCarbons, type SlixCarbons } from '../harness/carbons.js';
import { withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';
type Account = { username: string; password: string; bare: string };

function carbonsSuite(mode: Mode): void {
  const skip = rosterSkipReason(mode);
  describe(`XEP-0280 message carbons (${mode})`, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    const slixes: SlixCarbons[] = [];
    const nodeA = 0;
    const nodeB = mode === 'cluster' ? 1 : 0;
    const quietMs = mode === 'cluster' ? 1_000 : 600;
    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>, opts: { skip?: string | null } = {}): void => {
      it(name, { timeout: timeoutMs, skip: skip ?? opts.skip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
    };
    /** Logged in and tracked; carbons enabled first when asked, then available with `priority` (null: no presence). */
    const online = async (acc: Account, node: number, resource: string, o: { carbons?: boolean; priority?: number | null } = {}): Promise<Session> => {
      const s = track(await login(srv(), { username: acc.username, password: acc.password, node, resource }));
      sessions.push(s);
      if (o.carbons) await enableCarbons(s);
      if (o.priority !== null) {
        await sendPresence(s, {}, { priority: o.priority ?? 0 });
        await s.waitFor(presenceFrom(s.jid), 10_000, 'the own initial presence');
      }
      return s;
    };
    const chat = (to: string, body: string, ...extra: XmlElement[]) => xml('message', { to, type: 'chat', id: uniqueName('m') }, xml('body', {}, body), ...extra);
    const isBody = (body: string) => (el: XmlElement) => el.name === 'message' && el.getChildText('body') === body;
    /** hyphae_carbons_copies_total of a direction, summed over the processes that route client stanzas. */
    const copies = async (direction: 'sent' | 'received'): Promise<number> => {
      const texts = await Promise.all([...new Set(srv().c2s.map((n) => n.httpPort))].map((p) => scrapeMetrics(p)));
      return texts.reduce((n, t) => n + (metricValue(t, 'hyphae_carbons_copies_total', { direction }) ?? 0), 0);
    };
    /** Romeo with garden (node A, priority 5, carbons), home (node B, carbons) and phone (node A, no carbons); Juliet on node B. */
    const verona = async () => {
      const [r, j] = await Promise.all([newAccount(srv(), 'romeo'), newAccount(srv(), 'juliet')]);
      const garden = await online(r, nodeA, 'garden', { carbons: true, priority: 5 });
      const home = await online(r, nodeB, 'home', { carbons: true });
      const phone = await online(r, nodeA, 'phone');
      const juliet = await online(j, nodeB, 'balcony');
      return { r, garden, home, phone, juliet };
    };

    before(async () => {
      if (skip) return;
      server = mode === 'embedded' ? await startEmbedded() : await startCluster({ c2sNodes: 2 });
    }, { timeout: 120_000 });
    afterEach(async () => {
      for (const s of slixes.splice(0)) s.kill();
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
    });
    after(async () => {
      await server?.dispose();
    });

    test('§3: the server advertises urn:xmpp:carbons:2 and urn:xmpp:carbons:rules:0', 30_000, async () => {
      const s = await online(await newAccount(srv(), 'disco'), nodeA, 'd', { priority: null });
      const info = await s.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoInfo })));
      const features = (info.getChild('query', NS.discoInfo)?.getChildren('feature') ?? []).map((f) => f.attrs.var);
      assert.ok(features.includes(NS_CARBONS) && features.includes(NS_CARBONS_RULES), info.toString());
    });

    test('§4/§5: enable and disable answer results, twice in a row too (§10.1); another account <not-allowed/>, a get <bad-request/>', 30_000, async () => {
      const [acc, other] = await Promise.all([newAccount(srv(), 'toggle'), newAccount(srv(), 'other')]);
      const s = await online(acc, nodeA, 'garden', { priority: null });
      for (const [what, to] of [['enable', undefined], ['enable', acc.bare], ['disable', undefined], ['disable', acc.bare]] as const) {
        const answer = await toggleCarbons(s, what, to === undefined ? {} : { to });
        assert.equal(answer.attrs.type, 'result', answer.toString());
        assert.equal(answer.attrs.to, s.jid);
        assert.equal(answer.children.length, 0, answer.toString());
      }
      for (const what of ['enable', 'disable'] as const) {
        const refused = await toggleCarbons(s, what, { to: other.bare });
        assert.equal(stanzaErrorCondition(refused), 'not-allowed', refused.toString());
        assert.equal(refused.getChild('error')?.attrs.type, 'cancel');
        const get = await toggleCarbons(s, what, { type: 'get' });
        assert.equal(stanzaErrorCondition(get), 'bad-request', get.toString());
        assert.equal(get.getChild('error')?.attrs.type, 'modify');
      }
    });

    test('§7: the top resource gets the message, the other carbons-enabled resource one <received/> copy, the one without carbons nothing', 45_000, async () => {
      const { r, garden, home, phone, juliet } = await verona();
      const before = await copies('received');
      await juliet.send(chat(r.bare, 'What man art thou'));
      const original = await garden.waitFor(isBody('What man art thou'), 10_000, 'the message at the top resource');
      assert.equal(original.attrs.from, juliet.jid);
      const copy = await home.waitFor(isCopy('received', 'What man art thou'), 10_000, 'the <received/> copy');
      assert.equal(copy.attrs.from, r.bare, 'from the bare JID (§7)');
      assert.equal(copy.attrs.to, home.jid, 'to the full JID of the resource (§7)');
      assert.equal(copy.attrs.type, 'chat', 'the type kept');
      const fwd = forwardedOf(copy, 'received');
      assert.equal(fwd?.attrs.from, juliet.jid);
      assert.equal(fwd?.attrs.to, r.bare);
      assert.equal(fwd?.attrs.xmlns, 'jabber:client');
      // To a full JID: the addressed resource gets the message, both carbons-enabled ones a copy.
      await juliet.send(chat(`${r.bare}/phone`, 'so stumblest'));
      await phone.waitFor(isBody('so stumblest'), 10_000, 'the message at phone');
      await Promise.all([garden, home].map((s) => s.waitFor(isCopy('received', 'so stumblest'), 10_000, 'the copy')));
      await Promise.all([
        expectNothing(phone, isAnyCopy('What man art thou'), 'a copy without carbons', quietMs),
        expectNothing(garden, isAnyCopy('What man art thou'), 'a copy of what it got itself', quietMs),
        expectNothing(home, isBody('What man art thou'), 'the message itself besides its copy', quietMs),
      ]);
      assert.equal((await copies('received')) - before, 3);
    });

    test('§7: resources of equal top priority each get the message once, with no copy; a negative-priority one the copy', 45_000, async () => {
      const [r, j] = await Promise.all([newAccount(srv(), 'romeo'), newAccount(srv(), 'juliet')]);
      const a = await online(r, nodeA, 'a', { carbons: true });
      const b = await online(r, nodeB, 'b', { carbons: true });
      const c = await online(r, nodeA, 'c', { carbons: true, priority: -1 });
      const juliet = await online(j, nodeB, 'balcony');
      await juliet.send(chat(r.bare, 'both of you'));
      await Promise.all([a, b].map((s) => s.waitFor(isBody('both of you'), 10_000, 'the message')));
      await c.waitFor(isCopy('received', 'both of you'), 10_000, 'the copy at the negative-priority resource');
      await Promise.all([a, b, c].map((s) => expectNothing(s, (el) => el.name === 'message', 'a second message or copy', quietMs)));
    });

    test('§8: a sent message is copied as <sent/> to the other carbons-enabled resources, though the sender has carbons off', 45_000, async () => {
      const { r, garden, home, phone, juliet } = await verona();
      const before = await copies('sent');
      await phone.send(chat(juliet.jid, 'Neither, fair saint'));
      await juliet.waitFor(isBody('Neither, fair saint'), 10_000, 'the original');
      for (const s of [garden, home]) {
        const copy = await s.waitFor(isCopy('sent', 'Neither, fair saint'), 10_000, 'the <sent/> copy');
        assert.equal(copy.attrs.from, r.bare);
        assert.equal(copy.attrs.to, s.jid);
        assert.equal(copy.attrs.type, 'chat');
        assert.equal(forwardedOf(copy, 'sent')?.attrs.from, phone.jid);
        assert.equal(forwardedOf(copy, 'sent')?.attrs.to, juliet.jid);
      }
      // A carbons-enabled sender gets no copy of its own message (§8).
      await garden.send(chat(juliet.jid, 'thee dislike'));
      await home.waitFor(isCopy('sent', 'thee dislike'), 10_000, 'the copy at home');
      await Promise.all([
        expectNothing(garden, isAnyCopy('thee dislike'), 'a copy of its own message', quietMs),
        expectNothing(phone, isAnyCopy('Neither, fair saint'), 'a copy without carbons', quietMs),
      ]);
      assert.equal((await copies('sent')) - before, 3);
    });

    test('a message to the own account: the other carbons-enabled resources get one <sent/> copy, the sender none', 45_000, async () => {
      const { r, garden, home, phone } = await verona();
      await phone.send(chat(`${r.bare}/home`, 'note to self'));
      await home.waitFor(isBody('note to self'), 10_000, 'the message');
      const copy = await garden.waitFor(isCopy('sent', 'note to self'), 10_000, 'the copy');
      assert.equal(forwardedOf(copy, 'sent')?.attrs.from, phone.jid);
      await Promise.all([
        expectNothing(garden, (el) => isBody('note to self')(el) || isCopy('received', 'note to self')(el), 'a second copy', quietMs),
        expectNothing(home, isAnyCopy('note to self'), 'a copy besides the message', quietMs),
        expectNothing(phone, isAnyCopy('note to self'), 'a copy of its own message', quietMs),
      ]);
    });

    test('§9 and XEP-0334: <private/> and <no-copy/> messages are not copied; the recipient gets the message without <private/>', 45_000, async () => {
      const { r, garden, home, juliet } = await verona();
      await juliet.send(chat(`${r.bare}/garden`, 'psst', xml('private', { xmlns: NS_CARBONS })));
      const got = await garden.waitFor(isBody('psst'), 10_000, 'the private message');
      assert.equal(got.getChild('private', NS_CARBONS), undefined, got.toString());
      await juliet.send(chat(`${r.bare}/garden`, 'hint', xml('no-copy', { xmlns: 'urn:xmpp:hints' })));
      await garden.waitFor(isBody('hint'), 10_000, 'the no-copy message');
      await garden.send(chat(juliet.jid, 'my secret', xml('private', { xmlns: NS_CARBONS })));
      await juliet.waitFor(isBody('my secret'), 10_000, 'the private message sent');
      await Promise.all(['psst', 'hint', 'my secret'].map((b) => expectNothing(home, isAnyCopy(b), `a copy of '${b}'`, quietMs)));
    });

    test('disable stops the copies; headline messages are never copied; 30 copies keep their order', 60_000, async () => {
      const { r, garden, home, juliet } = await verona();
      const bodies = Array.from({ length: 30 }, (_, i) => `line ${i}`);
      for (const b of bodies) await juliet.send(chat(`${r.bare}/garden`, b));
      const got = await home.collect(30, (el) => forwardedOf(el, 'received') !== null, 15_000, 'the 30 copies');
      assert.deepEqual(got.map((el) => forwardedOf(el, 'received')?.getChildText('body')), bodies);
      await juliet.send(xml('message', { to: r.bare, type: 'headline' }, xml('body', {}, 'news')));
      await home.waitFor(isBody('news'), 10_000, 'the headline itself');
      const answer = await toggleCarbons(home, 'disable');
      assert.equal(answer.attrs.type, 'result', answer.toString());
      await juliet.send(chat(`${r.bare}/garden`, 'after disable'));
      await garden.waitFor(isBody('after disable'), 10_000, 'the message');
      await Promise.all([
        expectNothing(home, isAnyCopy('after disable'), 'a copy after disabling', quietMs),
        expectNothing(garden, isAnyCopy('news'), 'a copy of a headline', quietMs),
      ]);
    });

    test("slixmpp's xep_0280: enables, then gets <received/> and <sent/> copies from its bare JID", 60_000, async () => {
      const { r, garden, juliet } = await verona();
      const slix = runSlixCarbons(srv(), {
        jid: `${r.bare}/slix`, password: r.password, node: nodeB, priority: -1,
        steps: [{ op: 'enable' }, { op: 'wait_received', body: 'to the garden' }, { op: 'wait_sent', body: 'from the garden' }, { op: 'disable' }],
      });
      slixes.push(slix);
      assert.deepEqual(await slix.step(0), { event: 'step', i: 0, op: 'enable', ok: true, type: 'result' });
      await juliet.send(chat(garden.jid, 'to the garden'));
      assert.deepEqual(await slix.step(1), {
        event: 'step', i: 1, op: 'wait_received', ok: true, outer_from: r.bare, outer_to: `${r.bare}/slix`, outer_type: 'chat',
        from: juliet.jid, to: garden.jid, body: 'to the garden',
      });
      await garden.send(chat(juliet.jid, 'from the garden'));
      assert.deepEqual(await slix.step(2), {
        event: 'step', i: 2, op: 'wait_sent', ok: true, outer_from: r.bare, outer_to: `${r.bare}/slix`, outer_type: 'chat',
        from: garden.jid, to: juliet.jid, body: 'from the garden',
      });
      assert.deepEqual(await slix.step(3), { event: 'step', i: 3, op: 'disable', ok: true, type: 'result' });
      assert.equal((await slix.done).code, 0);
    }, { skip: slixCarbonsSkipReason() });
  });
}

carbonsSuite('embedded');
carbonsSuite('cluster');
