/**
 * XEP-0352 Client State Indication with @xmpp/client, in both modes (in
 * the cluster the inactive user and the contact sit on different c2s
 * nodes). Whether a delivery was held is read from the holding node's
 * hyphae_csi_queued_total, so every step is known to have reached the
 * queue before the next (the order of what is flushed is then exact).
 *
 * Run: npx tsc -b test services/hyphae && node --test --test-concurrency=1 test/dist/e2e/csi.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Session, login, newAccount, rawStream, uniqueName, xml, type XmlElement } from '../harness/clients.js';
import { metricValue, rosterSkipReason, scrapeMetrics, startCluster, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { acceptRosterPushes, presenceFrom, sendPresence, subscribeBothWays, subscriptionFrom } from '../harness/im.js';
import { seqOf, track } from '../harness/muc.js';
import { waitUntil, withServerLogs } from '../harness/util.js';
import { slixCsiSkipReason, startSlixCsi, type SlixCsi, type SlixCsiEvent } from '../harness/csi.js';

type Mode = 'embedded' | 'cluster';
type Account = { username: string; password: string; bare: string };
const NS_CSI = 'urn:xmpp:csi:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const QUEUE_MAX = 5;

function csiSuite(mode: Mode): void {
  const skip = rosterSkipReason(mode);
  describe(`XEP-0352 client state indication (${mode})`, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    const nodeA = 0;
    const nodeB = mode === 'cluster' ? 1 : 0;
    const srv = (): HyphaeServer => {
      if (!server) throw new Error('server did not start');
      return server;
    };
    const slixes: SlixCsi[] = [];
    const test = (name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>, alsoSkip: string | null = null): void => {
      it(name, { timeout: timeoutMs, skip: skip ?? alsoSkip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
    };
    const account = (prefix: string): Promise<Account> => newAccount(srv(), prefix);
    const online = async (acc: Account, node: number, resource: string): Promise<Session> => {
      const s = track(acceptRosterPushes(await login(srv(), { username: acc.username, password: acc.password, node, resource })));
      sessions.push(s);
      await sendPresence(s);
      await s.waitFor(presenceFrom(s.jid), 10_000, 'the own initial presence');
      return s;
    };
    /** Juliet (node A) and Romeo (node B), subscribed both ways, inboxes empty. */
    const couple = async (): Promise<{ juliet: Session; romeo: Session }> => {
      const [j, r] = await Promise.all([account('juliet'), account('romeo')]);
      const [juliet, romeo] = await Promise.all([online(j, nodeA, 'phone'), online(r, nodeB, 'orchard')]);
      await subscribeBothWays(juliet, romeo);
      return { juliet, romeo };
    };
    /** A CSI counter on node A (Juliet's), by label. */
    const counter = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
      metricValue(await scrapeMetrics(srv().c2s[nodeA]?.httpPort ?? 0), `hyphae_csi_${name}_total`, labels) ?? 0;
    /** Runs `send`, then waits until node A has held `n` more deliveries. */
    const held = async (n: number, send: () => Promise<void>): Promise<void> => {
      const base = await counter('queued');
      await send();
      await waitUntil(async () => (await counter('queued')) >= base + n, 10_000, `${n} more held deliveries`, 25);
      assert.equal(await counter('queued'), base + n);
    };
    const fromBare = (bare: string) => (el: XmlElement) => (el.attrs.from ?? '').split('/')[0] === bare;
    const chatState = (to: string, state: string, id = uniqueName('cs')) => xml('message', { to, type: 'chat', id }, xml(state, { xmlns: NS_CHATSTATES }));
    const chat = (to: string, body: string) => xml('message', { to, type: 'chat', id: uniqueName('m') }, xml('body', {}, body));
    const state = (el: XmlElement | undefined): string => {
      if (!el) return '(none)';
      if (el.name === 'presence') return `presence ${el.attrs.type ?? el.getChildText('show') ?? 'available'}`;
      const cs = el.getChildElements().find((c) => c.getNS() === NS_CHATSTATES);
      return el.getChildText('body') !== null ? `body ${el.getChildText('body') ?? ''}` : `state ${cs?.name ?? '?'}`;
    };
    const inactive = (s: Session) => s.sendRaw(`<inactive xmlns='${NS_CSI}'/>`);
    const active = (s: Session) => s.sendRaw(`<active xmlns='${NS_CSI}'/>`);

    before(async () => {
      if (skip) return;
      const config = { modules: { csi: { queueMax: QUEUE_MAX } } };
      server = mode === 'embedded' ? await startEmbedded({ config }) : await startCluster({ c2sNodes: 2, config });
    }, { timeout: 120_000 });
    afterEach(async () => {
      for (const x of slixes.splice(0)) x.kill();
      await Promise.all(sessions.splice(0).map((s) => s.stop()));
    });
    after(async () => {
      await server?.dispose();
    });

    test('§4.1: <csi/> is offered after authentication; <inactive/> before bind is accepted without a reply', 30_000, async () => {
      const acc = await account('raw');
      const raw = await rawStream(srv(), { node: nodeA });
      try {
        const features = await raw.openStream();
        assert.equal(features.getChild('csi', NS_CSI), undefined, 'not before authentication');
        if (features.getChild('starttls')) await raw.starttls();
        const postAuth = await raw.authPlain(acc.username, acc.password);
        assert.equal(postAuth.getChild('csi', NS_CSI)?.toString(), `<csi xmlns="${NS_CSI}"/>`, postAuth.toString());
        await raw.write(`<inactive xmlns='${NS_CSI}'/>`);
        assert.match(await raw.bind('r'), /\/r$/, 'the stream goes on to bind');
        assert.deepEqual(raw.streamErrors, []);
      } finally {
        raw.destroy();
      }
    });

    test('§3.2: inactive, presence changes and chat states wait; a body brings them in order, presence deduplicated', 45_000, async () => {
      const { juliet, romeo } = await couple();
      const base = { superseded: await counter('dropped', { reason: 'superseded' }), urgent: await counter('flushed', { reason: 'urgent' }) };
      await inactive(juliet);
      await held(1, () => sendPresence(romeo, {}, { show: 'away' }));
      await held(1, () => romeo.send(chatState(juliet.jid, 'composing')));
      await held(1, () => sendPresence(romeo, {}, { show: 'dnd' }));
      await held(1, () => romeo.send(chatState(juliet.jid, 'paused')));
      await held(1, () => sendPresence(romeo, {}, { show: 'xa', status: 'gone fishing' }));
      assert.deepEqual(juliet.buffered(fromBare(romeo.bare)).map(state), [], 'nothing from Romeo while inactive');
      await romeo.send(chat(juliet.jid, 'wake up'));
      const got = await juliet.collect(4, fromBare(romeo.bare), 10_000, "Romeo's stanzas");
      assert.deepEqual(got.map(state), ['state composing', 'state paused', 'presence xa', 'body wake up']);
      assert.equal(got[2]?.attrs.from, romeo.jid);
      assert.equal(got[2]?.getChildText('status'), 'gone fishing');
      assert.equal(await counter('dropped', { reason: 'superseded' }), base.superseded + 2);
      assert.equal(await counter('flushed', { reason: 'urgent' }), base.urgent + 3);
      // Still inactive: the next presence waits again.
      await held(1, () => sendPresence(romeo, {}, { show: 'chat' }));
      assert.deepEqual(juliet.buffered(presenceFrom(romeo.jid)).map(state), []);
    });

    test('§4.2, §5.1: <active/> flushes in order before the next stanza is processed; then nothing waits', 45_000, async () => {
      const { juliet, romeo } = await couple();
      await inactive(juliet);
      await held(1, () => sendPresence(romeo, {}, { show: 'away' }));
      await held(1, () => romeo.send(chatState(juliet.jid, 'composing')));
      await active(juliet);
      const pong = await juliet.ping(srv().domain);
      assert.equal(pong.attrs.type, 'result');
      const flushed = juliet.buffered(fromBare(romeo.bare));
      assert.deepEqual(flushed.map(state), ['presence away', 'state composing']);
      for (const el of flushed) assert.ok(seqOf(juliet, el) < seqOf(juliet, pong), `${el.toString()} before the pong`);
      juliet.drain();
      const queued = await counter('queued');
      await sendPresence(romeo, {}, { show: 'dnd' });
      await romeo.send(chatState(juliet.jid, 'paused'));
      const now = await juliet.collect(2, fromBare(romeo.bare), 10_000, 'deliveries while active');
      assert.deepEqual(now.map(state), ['presence dnd', 'state paused']);
      assert.equal(await counter('queued'), queued, 'nothing held while active');
    });

    test('§3.2: an iq and a subscription request are urgent: what waits comes first, then them', 45_000, async () => {
      const { juliet, romeo } = await couple();
      const nurse = await online(await account('nurse'), nodeB, 'kitchen');
      await inactive(juliet);
      await held(1, () => sendPresence(romeo, {}, { show: 'away' }));
      const version = await romeo.iq(xml('iq', { type: 'get', to: juliet.jid }, xml('query', { xmlns: 'jabber:iq:version' })));
      assert.equal(version.attrs.type, 'error', '@xmpp/client answers what it does not handle');
      const iq = juliet.buffered((el) => el.name === 'iq' && el.attrs.id === version.attrs.id)[0];
      const away = juliet.buffered(presenceFrom(romeo.jid))[0];
      assert.ok(iq && away, 'both arrived');
      assert.equal(state(away), 'presence away');
      assert.ok(seqOf(juliet, away) < seqOf(juliet, iq), 'the held presence first');
      await held(1, () => sendPresence(romeo, {}, { show: 'dnd' }));
      await nurse.send(xml('presence', { to: juliet.bare, type: 'subscribe' }));
      const sub = await juliet.waitFor(subscriptionFrom(nurse.bare, 'subscribe'), 10_000, 'the subscription request');
      const dnd = juliet.buffered((el) => presenceFrom(romeo.jid)(el) && el.getChildText('show') === 'dnd')[0];
      assert.ok(dnd, "Romeo's held presence arrived with the request");
      assert.ok(seqOf(juliet, dnd) < seqOf(juliet, sub), 'the held presence first');
    });

    test(`the queue holds ${QUEUE_MAX}: one more flushes all of them in order, itself last`, 45_000, async () => {
      const { juliet, romeo } = await couple();
      const overflow = await counter('flushed', { reason: 'overflow' });
      await inactive(juliet);
      const states = ['composing', 'paused', 'active', 'composing', 'paused', 'inactive'];
      for (const s of states.slice(0, QUEUE_MAX)) await held(1, () => romeo.send(chatState(juliet.jid, s)));
      assert.deepEqual(juliet.buffered(fromBare(romeo.bare)).map(state), []);
      await romeo.send(chatState(juliet.jid, states[QUEUE_MAX] ?? ''));
      const got = await juliet.collect(QUEUE_MAX + 1, fromBare(romeo.bare), 10_000, 'the chat states');
      assert.deepEqual(got.map(state), states.map((s) => `state ${s}`));
      assert.equal(await counter('flushed', { reason: 'overflow' }), overflow + QUEUE_MAX);
    });

    test("slixmpp's xep_0352: feature seen; directed presence and chat states wait, a body and <active/> flush them in order", 45_000, async () => {
      const [j, r] = await Promise.all([account('slix'), account('romeo')]);
      const slix = await startSlixCsi(srv(), { jid: `${j.bare}/slix`, password: j.password, node: nodeA });
      slixes.push(slix);
      assert.equal(slix.csiEnabled, true, 'the plugin saw <csi/> in the features');
      const romeo = await online(r, nodeB, 'orchard');
      const show = (s: string) => xml('presence', { to: slix.jid }, xml('show', {}, s));
      const seen = (e: SlixCsiEvent): string => (e.body ? `body ${String(e.body)}` : e.state ? `state ${String(e.state)}` : `${String(e.name)} ${String(e.show ?? e.type)}`);
      const fromRomeo = (e: SlixCsiEvent) => e.event === 'stanza' && e.from === romeo.jid;
      assert.equal((await slix.run('inactive')).ok, true);
      await held(1, () => romeo.send(show('away')));
      await held(1, () => romeo.send(chatState(slix.jid, 'composing')));
      await held(1, () => romeo.send(show('dnd')));
      assert.deepEqual(slix.pending().filter(fromRomeo), [], 'nothing while inactive');
      await romeo.send(chat(slix.jid, 'hello'));
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(seen(await slix.next(fromRomeo, `stanza ${i + 1} from Romeo after ${got.join(", ")}`)));
      assert.deepEqual(got, ['state composing', 'presence dnd', 'body hello']);
      await held(1, () => romeo.send(show('xa')));
      assert.deepEqual(slix.pending().filter(fromRomeo), []);
      assert.equal((await slix.run('active')).ok, true);
      // The ping after <active/> was answered: the flushed presence came before it (§5.1).
      assert.deepEqual(slix.pending().filter(fromRomeo).map(seen), ['presence xa']);
      assert.equal((await slix.run('quit')).ok, true);
    }, slixCsiSkipReason());
  });
}

csiSuite('embedded');
csiSuite('cluster');
