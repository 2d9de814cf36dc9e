/**
 * XEP-0191 Blocking Command with real clients: @xmpp/client and slixmpp's
 * own xep_0191 plugin. One suite against both modes (DESIGN.md invariant
 * 4); in the cluster the user who blocks and the contact sit on different
 * c2s nodes, so lists, pushes and refusals cross the bus.
 *
 * Run: npx tsc -b test services/hyphae && node --test --test-concurrency=1 test/dist/e2e/blocking.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, Session, login, newAccount, sleep, stanzaErrorCondition, uniqueName, xml, type XmlElement } from '../harness/clients.js';
import { metricValue, rosterSkipReason, scrapeMetrics, startCluster, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { acceptRosterPushes, presenceFrom, sendPresence, subscribeBothWays } from '../harness/im.js';
import { assertError, createRoom, expectNothing, join, mucService, track } from '../harness/muc.js';
import {
  NS_BLOCKING, NS_BLOCKING_ERRORS, acceptBlockingPushes, blockOk, blockSet, blocklist, blocklistGet, isPush, slixBlockingSkipReason, startSlixBlocking,
  type SlixBlocking,
} from '../harness/blocking.js';
import { withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';
type Account = { username: string; password: string; bare: string };
const MAX_ITEMS = 4;

function blockingSuite(mode: Mode): void {
  const skip = rosterSkipReason(mode);
  describe(`XEP-0191 blocking (${mode})`, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    const slixes: SlixBlocking[] = [];
    const nodeA = 0;
    const nodeB = mode === 'cluster' ? 1 : 0;
    /** How long to wait before concluding that something was not delivered. */
    const quietMs = mode === 'cluster' ? 1_000 : 600;

    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>, opts: { skip?: string | null } = {}): void => {
      it(name, { timeout: timeoutMs, skip: skip ?? opts.skip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
    };
    const account = (prefix: string): Promise<Account> => newAccount(srv(), prefix);
    /** Logged in, pushes answered, tracked; initial presence (reflected back) unless `presence: false`. */
    const online = async (acc: Account, node: number, resource: string, presence = true): Promise<Session> => {
      const s = track(acceptRosterPushes(acceptBlockingPushes(await login(srv(), { username: acc.username, password: acc.password, node, resource }))));
      sessions.push(s);
      if (presence) {
        await sendPresence(s);
        await s.waitFor(presenceFrom(s.jid), 10_000, 'the own initial presence');
      }
      return s;
    };
    const chat = (to: string, body: string, id = uniqueName('m')) => xml('message', { to, type: 'chat', id }, xml('body', {}, body));
    const isBody = (body: string) => (el: XmlElement) => el.name === 'message' && el.getChildText('body') === body;
    const errorFor = (id: string | undefined) => (el: XmlElement) => id !== undefined && el.attrs.type === 'error' && el.attrs.id === id;
    const fromBare = (bare: string) => (el: XmlElement) => (el.attrs.from ?? '').split('/')[0] === bare;
    /** Juliet and Romeo online on different nodes, subscribed both ways. */
    /** hyphae_blocking_stanzas_total by direction, summed over the processes that hold client sessions. */
    const blockedCount = async (): Promise<{ in: number; out: number }> => {
      const texts = await Promise.all([...new Set(srv().c2s.map((n) => n.httpPort))].map((p) => scrapeMetrics(p)));
      const sum = (direction: string) => texts.reduce((n, t) => n + (metricValue(t, 'hyphae_blocking_stanzas_total', { direction }) ?? 0), 0);
      return { in: sum('in'), out: sum('out') };
    };
    const couple = async (): Promise<{ juliet: Session; romeo: Session; j: Account; r: Account }> => {
      const [j, r] = await Promise.all([account('juliet'), account('romeo')]);
      const [juliet, romeo] = await Promise.all([online(j, nodeA, 'balcony'), online(r, nodeB, 'orchard')]);
      await subscribeBothWays(juliet, romeo);
      return { juliet, romeo, j, r };
    };

    before(async () => {
      if (skip) return;
      const config = { modules: { blocking: { maxItems: MAX_ITEMS } } };
      server = mode === 'embedded' ? await startEmbedded({ config }) : await startCluster({ c2sNodes: 2, config });
    }, { timeout: 120_000 });
    afterEach(async () => {
      for (const s of slixes.splice(0)) s.kill();
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
    });
    after(async () => {
      await server?.dispose();
    });

    test('§3.1: the server advertises urn:xmpp:blocking', 30_000, async () => {
      const s = await online(await account('disco'), nodeA, 'd', false);
      const info = await s.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoInfo })));
      const features = (info.getChild('query', NS.discoInfo)?.getChildren('feature') ?? []).map((f) => f.attrs.var);
      assert.ok(features.includes(NS_BLOCKING), `no ${NS_BLOCKING} in ${info.toString()}`);
    });

    test('§3.2–§3.5 with @xmpp/client: get, block, unblock, unblock all; pushes to the resources that retrieved the list only', 45_000, async () => {
      const acc = await account('list');
      const a = await online(acc, nodeA, 'a', false);
      const b = await online(acc, nodeB, 'b', false);
      const c = await online(acc, nodeB, 'c', false); // never asks for the list
      const empty = await blocklistGet(a);
      assert.equal(empty.attrs.type, 'result');
      assert.equal(empty.getChild('blocklist', NS_BLOCKING)?.toString(), `<blocklist xmlns="${NS_BLOCKING}"/>`, empty.toString());
      assert.deepEqual(await blocklist(b), []);
      const romeo = `${uniqueName('romeo')}@${srv().domain}`;
      const block = await blockSet(a, 'block', ['iago@shakespeare.lit', romeo]);
      assert.equal(block.attrs.type, 'result', block.toString());
      assert.equal(block.attrs.to, a.jid);
      assert.equal(block.children.length, 0, `the result is empty (§3.3): ${block.toString()}`);
      await Promise.all([a, b].map((s) => s.waitFor(isPush(s, 'block', ['iago@shakespeare.lit', romeo]), 10_000, 'the block push')));
      assert.deepEqual(await blocklist(c), [romeo, 'iago@shakespeare.lit'].sort());
      await blockOk(b, 'unblock', [romeo]);
      await Promise.all([a, b].map((s) => s.waitFor(isPush(s, 'unblock', [romeo]), 10_000, 'the unblock push')));
      // c asked for the list just now: from here on it is an interested resource.
      await blockOk(a, 'unblock', []);
      await Promise.all([a, b, c].map((s) => s.waitFor(isPush(s, 'unblock', []), 10_000, 'the unblock-all push')));
      assert.equal(c.buffered((el) => el.getChild('block', NS_BLOCKING) !== undefined).length, 0, 'no push before c retrieved the list');
      assert.deepEqual(await blocklist(a), []);
    });

    test('errors: <bad-request/>, <jid-malformed/>, <forbidden/> for another account, <policy-violation/> past the limit', 45_000, async () => {
      const [acc, other] = await Promise.all([account('err'), account('other')]);
      const s = await online(acc, nodeA, 'e', false);
      const raw = async (payload: string, type = 'set', to?: string): Promise<XmlElement> => {
        const id = uniqueName('raw');
        const answer = s.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 10_000, `answer to ${payload}`);
        await s.sendRaw(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ''}>${payload}</iq>`);
        return answer;
      };
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'/>`), 'bad-request', 'modify', '§3.3: <block/> without items');
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'><item/></block>`), 'bad-request', 'modify', 'an item without a jid');
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'><jid>x@y.lit</jid></block>`), 'bad-request', 'modify', 'a child that is not an item');
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'><item jid='@nope'/></block>`), 'jid-malformed', 'modify', 'block of a malformed JID');
      assertError(await raw(`<unblock xmlns='${NS_BLOCKING}'><item jid='a@b@c'/></unblock>`), 'jid-malformed', 'modify', 'unblock of a malformed JID');
      assertError(await raw(`<blocklist xmlns='${NS_BLOCKING}'/>`, 'get', other.bare), 'forbidden', 'auth', "another account's blocklist");
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'><item jid='x@y.lit'/></block>`, 'set', other.bare), 'forbidden', 'auth', "blocking in another account's list");
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'><item jid='x@y.lit'/></block>`, 'get'), 'service-unavailable', 'cancel', 'a block of type get');
      assertError(await raw(`<blocklist xmlns='${NS_BLOCKING}'/>`, 'get', srv().domain), 'service-unavailable', 'cancel', 'a blocklist of the server itself');
      await blockOk(s, 'block', ['1@x.lit', '2@x.lit', '3@x.lit', '4@x.lit']);
      assertError(await raw(`<block xmlns='${NS_BLOCKING}'><item jid='5@x.lit'/></block>`), 'policy-violation', 'modify', `more than ${MAX_ITEMS} JIDs`);
      assert.deepEqual(await blocklist(s), ['1@x.lit', '2@x.lit', '3@x.lit', '4@x.lit'], 'refused commands change nothing');
    });

    test('§3.3: the blocked contact sees the user go unavailable; nothing of its reaches the user (message and iq answered, presence silent); the user is refused with <blocked/>', 60_000, async () => {
      const { juliet, romeo, r } = await couple();
      const counted = await blockedCount();
      await blockOk(juliet, 'block', [r.bare]);
      await romeo.waitFor(presenceFrom(juliet.jid, 'unavailable'), 10_000, 'unavailable from the user who blocked (§3.3)');
      // The contact's message: <service-unavailable/>, as if the user were offline.
      const m = chat(juliet.bare, 'are you there?');
      await romeo.send(m);
      assertError(await romeo.waitFor(errorFor(m.attrs.id), 10_000, 'the error for the message'), 'service-unavailable', 'cancel', '§3.3 message from a blocked JID');
      // An iq to the user's resource: <service-unavailable/>.
      const v = await romeo.iq(xml('iq', { type: 'get', to: juliet.jid }, xml('query', { xmlns: 'jabber:iq:version' })));
      assertError(v, 'service-unavailable', 'cancel', '§3.3 iq get from a blocked JID');
      assert.equal(v.attrs.from, juliet.jid);
      // Presence: broadcast and directed, dropped without an error.
      await sendPresence(romeo, {}, { status: 'still here' });
      await romeo.send(xml('presence', { to: juliet.jid }, xml('status', {}, 'directed')));
      await expectNothing(juliet, fromBare(romeo.bare), 'anything from the blocked contact', quietMs);
      await expectNothing(romeo, (el) => el.name === 'presence' && el.attrs.type === 'error', 'an error for presence', 100);
      // The user's own broadcasts are withheld from the contact.
      await sendPresence(juliet, {}, { status: 'hiding' });
      await expectNothing(romeo, fromBare(juliet.bare), "the user's presence", quietMs);
      // §3.3: the user's stanzas to the contact are refused with <not-acceptable/> and <blocked/>.
      const out = chat(romeo.bare, 'Can you hear me now?');
      await juliet.send(out);
      const refused = await juliet.waitFor(errorFor(out.attrs.id), 10_000, 'the refusal');
      assertError(refused, 'not-acceptable', 'cancel', '§3.3 message to a blocked JID');
      assert.ok(refused.getChild('error')?.getChild('blocked', NS_BLOCKING_ERRORS), `no <blocked/> in ${refused.toString()}`);
      assert.equal(refused.attrs.from, romeo.bare);
      assert.equal(refused.getChildText('body'), 'Can you hear me now?');
      const iqOut = await juliet.iq(xml('iq', { type: 'get', to: romeo.jid }, xml('ping', { xmlns: NS.ping })));
      assertError(iqOut, 'not-acceptable', 'cancel', '§3.3 iq to a blocked JID');
      await expectNothing(romeo, fromBare(juliet.bare), 'anything from the user', 200);
      // The metric: message, iq and presence in; message and iq out (broadcasts are withheld in the user actor).
      const now = await blockedCount();
      assert.ok(now.in - counted.in >= 3, `blocked stanzas in: ${JSON.stringify(counted)} → ${JSON.stringify(now)}`);
      assert.ok(now.out - counted.out >= 2, `blocked stanzas out: ${JSON.stringify(counted)} → ${JSON.stringify(now)}`);
    });

    test("§3.3: a blocked contact that logs in later gets no presence of the user's (probes answered from the registry)", 60_000, async () => {
      const { juliet, romeo, r } = await couple();
      await blockOk(juliet, 'block', [r.bare]);
      await romeo.waitFor(presenceFrom(juliet.jid, 'unavailable'), 10_000, 'unavailable');
      await romeo.stop();
      const again = await online(r, nodeB, 'orchard2');
      await expectNothing(again, (el) => el.name === 'presence' && fromBare(juliet.bare)(el), "the user's presence after a new login", quietMs);
    });

    test('§3.4: unblocking sends the current presence and restores delivery both ways', 60_000, async () => {
      const { juliet, romeo, r } = await couple();
      await sendPresence(juliet, {}, { show: 'away', status: 'on the balcony' });
      await romeo.waitFor((el) => presenceFrom(juliet.jid)(el) && el.getChildText('status') === 'on the balcony', 10_000, 'the status');
      await blockOk(juliet, 'block', [r.bare]);
      await romeo.waitFor(presenceFrom(juliet.jid, 'unavailable'), 10_000, 'unavailable');
      await blockOk(juliet, 'unblock', [r.bare]);
      const back = await romeo.waitFor(presenceFrom(juliet.jid), 10_000, 'the current presence after unblock (§3.4)');
      assert.equal(back.getChildText('status'), 'on the balcony');
      assert.equal(back.getChildText('show'), 'away');
      await romeo.send(chat(juliet.bare, 'hello again'));
      await juliet.waitFor(isBody('hello again'), 10_000, 'the message after unblock');
      await juliet.send(chat(romeo.jid, 'welcome back'));
      await romeo.waitFor(isBody('welcome back'), 10_000, 'the reply after unblock');
      await sendPresence(romeo, {}, { status: 'visible again' });
      await juliet.waitFor((el) => presenceFrom(romeo.jid)(el) && el.getChildText('status') === 'visible again', 10_000, "the contact's presence");
    });

    test("§3.3: what the server answers for the user is refused to a blocked JID (vCard, last activity: <service-unavailable/>); its subscription request is neither presented nor kept", 60_000, async () => {
      const [j, r, n] = await Promise.all([account('jv'), account('rv'), account('nv')]);
      const juliet = await online(j, nodeA, 'balcony');
      const romeo = await online(r, nodeB, 'orchard');
      const nurse = await online(n, nodeB, 'kitchen');
      const published = await juliet.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Juliet Capulet'))));
      assert.equal(published.attrs.type, 'result', published.toString());
      await blockOk(juliet, 'block', [r.bare]);
      // The bare JID's vCard is answered by the server (XEP-0054): to the blocked JID it is as if there were no such user.
      const vcard = await romeo.iq(xml('iq', { type: 'get', to: j.bare }, xml('vCard', { xmlns: 'vcard-temp' })));
      assertError(vcard, 'service-unavailable', 'cancel', 'vCard of a user who blocked the requester');
      const lastQ = await romeo.iq(xml('iq', { type: 'get', to: j.bare }, xml('query', { xmlns: 'jabber:iq:last' })));
      assertError(lastQ, 'service-unavailable', 'cancel', 'last activity of a user who blocked the requester');
      // Anyone else still gets an answer.
      const other = await nurse.iq(xml('iq', { type: 'get', to: j.bare }, xml('vCard', { xmlns: 'vcard-temp' })));
      assert.equal(other.attrs.type, 'result', other.toString());
      assert.equal(other.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Juliet Capulet');
      // A subscription request from the blocked JID: never presented, and not waiting for the next login either.
      await romeo.send(xml('presence', { to: j.bare, type: 'subscribe' }));
      await expectNothing(juliet, (el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'the blocked JID\'s subscription request', quietMs);
      await blockOk(juliet, 'unblock', [r.bare]);
      await juliet.stop();
      const again = await online(j, nodeB, 'chamber');
      await expectNothing(again, (el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'a request kept from while it was blocked', quietMs);
    });

    test('a domain item blocks every JID of the domain; unblock all lifts everything; the own resources are never blocked', 60_000, async () => {
      const { juliet, romeo, j } = await couple();
      const nurse = await online(await account('nurse'), nodeB, 'kitchen');
      const chamber = await online(j, nodeB, 'chamber');
      await blockOk(juliet, 'block', [srv().domain]);
      // §5: one resource of the user to another, whatever the list says.
      await chamber.send(chat(juliet.jid, 'note to self'));
      await juliet.waitFor(isBody('note to self'), 10_000, "the own other resource's message");
      await juliet.send(chat(chamber.jid, 'note back'));
      await chamber.waitFor(isBody('note back'), 10_000, 'the message to the own other resource');
      for (const s of [romeo, nurse]) {
        const m = chat(juliet.bare, `from ${s.bare}`);
        await s.send(m);
        assertError(await s.waitFor(errorFor(m.attrs.id), 10_000, 'the error'), 'service-unavailable', 'cancel', `${s.bare} under a domain block`);
      }
      await blockOk(juliet, 'unblock', []);
      await nurse.send(chat(juliet.bare, 'after unblock all'));
      await juliet.waitFor(isBody('after unblock all'), 10_000, 'delivery after unblock all');
    });

    test('offline: a message from a blocked JID is not stored (sender gets <service-unavailable/>); the list persists across logins and is enforced at once', 60_000, async () => {
      const [j, r, b] = await Promise.all([account('jo'), account('ro'), account('be')]);
      const juliet = await online(j, nodeA, 'balcony');
      await blockOk(juliet, 'block', [r.bare]);
      await juliet.stop();
      await sleep(quietMs);
      const [romeo, ben] = await Promise.all([online(r, nodeB, 'orchard'), online(b, nodeB, 'street')]);
      const m = chat(j.bare, 'let me in');
      await romeo.send(m);
      assertError(await romeo.waitFor(errorFor(m.attrs.id), 10_000, 'the error'), 'service-unavailable', 'cancel', 'offline message from a blocked JID');
      await ben.send(chat(j.bare, 'stored for later'));
      await sleep(quietMs);
      // Back on the other node: the list is there, and enforced before any blocklist get.
      const again = await online(j, nodeB, 'chamber');
      await again.waitFor(isBody('stored for later'), 10_000, 'the offline message of an unblocked sender');
      assert.deepEqual(again.buffered(fromBare(r.bare)).map((e) => e.toString()), [], 'nothing from the blocked sender was stored');
      const m2 = chat(j.bare, 'and now?');
      await romeo.send(m2);
      assertError(await romeo.waitFor(errorFor(m2.attrs.id), 10_000, 'the error'), 'service-unavailable', 'cancel', 'online again');
      assert.deepEqual(await blocklist(again), [r.bare], 'the blocklist after a new login');
    });

    test('XEP-0045: a private message from a blocked occupant is answered <service-unavailable/>; other occupants pass', 60_000, async () => {
      const [j, r, b] = await Promise.all([account('mj'), account('mr'), account('mb')]);
      const [juliet, romeo, ben] = await Promise.all([online(j, nodeA, 'balcony'), online(r, nodeB, 'orchard'), online(b, nodeB, 'street')]);
      const room = `${uniqueName('verona')}@${mucService(srv())}`;
      await createRoom(juliet, room, 'juliet');
      await join(romeo, room, 'romeo');
      await join(ben, room, 'ben');
      await blockOk(juliet, 'block', [`${room}/romeo`]);
      const pm = xml('message', { to: `${room}/juliet`, type: 'chat', id: uniqueName('pm') }, xml('body', {}, 'psst'));
      await romeo.send(pm);
      const err = await romeo.waitFor(errorFor(pm.attrs.id), 10_000, 'the error for the private message');
      assert.equal(stanzaErrorCondition(err), 'service-unavailable', err.toString());
      await ben.send(xml('message', { to: `${room}/juliet`, type: 'chat' }, xml('body', {}, 'hi from ben')));
      await juliet.waitFor(isBody('hi from ben'), 10_000, "another occupant's private message");
      assert.deepEqual(juliet.buffered(isBody('psst')).map((e) => e.toString()), []);
    });

    test('slixmpp xep_0191: get, block, unblock, unblock all, pushes both ways with @xmpp/client, <blocked/> on a message', 60_000, async () => {
      const acc = await account('slix');
      const x = await online(acc, nodeA, 'xmppjs', false);
      assert.deepEqual(await blocklist(x), []);
      const slix = await startSlixBlocking(srv(), { jid: `${acc.bare}/slix`, password: acc.password, node: nodeB });
      slixes.push(slix);
      assert.deepEqual(await slix.run({ op: 'get' }), { event: 'result', op: 'get', ok: true, items: [] });
      const romeo = `${uniqueName('romeo')}@${srv().domain}`;
      assert.deepEqual(await slix.run({ op: 'block', jids: [romeo] }), { event: 'result', op: 'block', ok: true });
      assert.deepEqual(await slix.next((e) => e.event === 'blocked', 'its own push'), { event: 'blocked', items: [romeo] });
      await x.waitFor(isPush(x, 'block', [romeo]), 10_000, 'the push at the @xmpp/client resource');
      await blockOk(x, 'block', ['iago@shakespeare.lit']);
      assert.deepEqual(await slix.next((e) => e.event === 'blocked', 'the push from the other resource'), { event: 'blocked', items: ['iago@shakespeare.lit'] });
      assert.deepEqual((await slix.run({ op: 'get' })).items, ['iago@shakespeare.lit', romeo].sort());
      assert.deepEqual(await slix.run({ op: 'message', to: romeo, body: 'blocked?' }), { event: 'result', op: 'message', ok: true });
      const refused = await slix.next((e) => e.event === 'message' && e.type === 'error', 'the refusal');
      assert.deepEqual(refused, { event: 'message', from: romeo, body: 'blocked?', type: 'error', condition: 'not-acceptable', app: [`{${NS_BLOCKING_ERRORS}}blocked`] });
      assert.deepEqual(await slix.run({ op: 'block', jids: [] }), { event: 'result', op: 'block', ok: false, condition: 'bad-request', error_type: 'modify' });
      assert.deepEqual(await slix.run({ op: 'unblock', jids: [romeo] }), { event: 'result', op: 'unblock', ok: true });
      assert.deepEqual(await slix.next((e) => e.event === 'unblocked', 'the unblock push'), { event: 'unblocked', items: [romeo] });
      await x.waitFor(isPush(x, 'unblock', [romeo]), 10_000, 'the unblock push at the @xmpp/client resource');
      assert.deepEqual(await slix.run({ op: 'unblock', jids: [] }), { event: 'result', op: 'unblock', ok: true });
      assert.deepEqual(await slix.next((e) => e.event === 'unblocked', 'the unblock-all push'), { event: 'unblocked', items: [] });
      assert.deepEqual(await blocklist(x), []);
      assert.equal(await slix.quit(), 0);
    }, { skip: slixBlockingSkipReason() });
  });
}

blockingSuite('embedded');
blockingSuite('cluster');
