/**
 * XEP-0045 Multi-User Chat with real clients: service and room discovery
 * (with XEP-0059 paging), room creation (instant, reserved, cancelled,
 * groupchat 1.0), configuration (XEP-0004 forms, permissions, invalid
 * values, change notifications), entering (order of events, anonymity,
 * history management, every refusal of §7.2), subject, groupchat, private
 * messages, nickname and status changes, exit, invitations, moderation
 * (kick, ban, voice), affiliations, destruction, sessions that end, service
 * limits, and persistence across a restart.
 *
 * One suite, run against both modes: `hyphae all`, and a cluster of sm +
 * 2 muc instances + 2 c2s nodes in which the occupants of a room sit on
 * different c2s nodes.
 *
 * Error conditions and types are the ones XEP-0045 shows; where it shows no
 * type, the one RFC 6120 §8.3.3 gives the condition:
 *   item-not-found cancel (§7.2.11)      jid-malformed modify (§7.2.1)
 *   conflict cancel (§7.2.9, §7.6)       not-authorized auth (§7.2.6)
 *   registration-required auth (§7.2.7)  forbidden auth (§7.2.8, §8.1, §9.5, §10.8, §10.9)
 *   service-unavailable wait (§7.2.10)   not-allowed cancel (§8.2, §10.1.1)
 *   not-acceptable modify (§10.1.3)      bad-request modify (§7.5)
 *   policy-violation modify, resource-constraint wait (RFC 6120 §8.3.3.12/13)
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/muc.test.js
 */
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Session, bareJid, login, newAccount, sleep, uniqueName, xml, type XmlElement } from '../harness/clients.js';
import { startCluster, startEmbedded, type ClusterServer, type HyphaeServer } from '../harness/server.js';
import { breakConnection, sendPresence } from '../harness/im.js';
import {
  MUC_NS,
  adminGet,
  adminSet,
  adminSetOk,
  assertError,
  assertResult,
  cancelConfig,
  configure,
  createRoom,
  describeError,
  describePresence,
  errorOf,
  destroyRoom,
  discoInfo,
  discoItems,
  expectNothing,
  externalServer,
  fieldValue,
  formBoolean,
  fromRoom,
  getConfig,
  isSubjectMessage,
  itemOf,
  join,
  joinError,
  kick,
  leave,
  mark,
  messageErrorFor,
  mucService,
  mucSkipReason,
  mucUser,
  newRoomJid,
  nickOf,
  ownerGet,
  parseDiscoInfo,
  parseDiscoItems,
  presenceOf,
  receivedSince,
  reflectionOf,
  roomInfo,
  roomInfoForm,
  sameJid,
  say,
  sendGroupchat,
  sendSubject,
  seqOf,
  setSubject,
  statusCodes,
  submitConfig,
  submitInstant,
  track,
  type ConfigFields,
  type DataForm,
  type DiscoInfo,
  type Joined,
  type MucItem,
} from '../harness/muc.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

type Mode = 'embedded' | 'cluster';

/** sm timing of the cluster (as in faults.test.ts): a killed c2s node is declared dead within seconds. */
const HEARTBEAT_MS = 500;
const NODE_TTL_MS = 3_000;
/** muc.leaseTtlMs of the cluster (faster failover than the 5 s default). */
const LEASE_TTL_MS = 2_000;

/** The disco#info feature pairs of §6.4 / §15.6 (exactly one of each is advertised). */
const FEATURE_PAIRS = [
  ['muc_public', 'muc_hidden'],
  ['muc_persistent', 'muc_temporary'],
  ['muc_passwordprotected', 'muc_unsecured'],
  ['muc_membersonly', 'muc_open'],
  ['muc_moderated', 'muc_unmoderated'],
  ['muc_nonanonymous', 'muc_semianonymous'],
] as const;

/** The advertised member of each feature pair, in FEATURE_PAIRS order ('both'/'neither' when broken). */
function pairChoices(info: DiscoInfo): string[] {
  return FEATURE_PAIRS.map(([yes, no]) => {
    const y = info.features.includes(yes);
    const n = info.features.includes(no);
    return y && n ? `both ${yes}/${no}` : y ? yes : n ? no : `neither ${yes}/${no}`;
  });
}

/** Every <x xmlns=muc#user/> item attribute a presence must carry (§17.2 rule 8: role and affiliation always). */
function assertRoleAndAffiliation(el: XmlElement, what: string): MucItem {
  const u = mucUser(el);
  assert.ok(u, `${what}: no <x xmlns='${MUC_NS.user}'/>: ${el.toString()}`);
  assert.equal(u.count, 1, `${what}: more than one muc#user <x/> (§7.2.3 note): ${el.toString()}`);
  const it = u.items[0];
  assert.ok(it, `${what}: no <item/> in the muc#user <x/>: ${el.toString()}`);
  assert.ok(it.role !== undefined && it.affiliation !== undefined, `${what}: the item lacks role or affiliation (§17.2 rule 8): ${el.toString()}`);
  return it;
}

/** A history message (§7.2.12): groupchat from an occupant JID with an XEP-0203 delay from the room. */
function assertHistoryMessage(el: XmlElement, room: string, what: string): number {
  assert.equal(el.name, 'message', `${what}: not a message: ${el.toString()}`);
  assert.equal(el.attrs.type, 'groupchat', `${what}: ${el.toString()}`);
  assert.ok(fromRoom(el, room) && nickOf(el) !== undefined, `${what}: not from an occupant JID of ${room}: ${el.toString()}`);
  const delay = el.getChild('delay', MUC_NS.delay);
  assert.ok(delay, `${what}: no <delay xmlns='${MUC_NS.delay}'/> (§7.2.12 MUST): ${el.toString()}`);
  assert.ok(sameJid(delay.attrs.from, room), `${what}: the delay's from must be the room JID ${room} (§7.2.12): ${el.toString()}`);
  const stamp = Date.parse(delay.attrs.stamp ?? '');
  assert.ok(!Number.isNaN(stamp), `${what}: bad delay stamp: ${el.toString()}`);
  return stamp;
}

interface Ctx {
  srv(): HyphaeServer;
  cluster(): ClusterServer;
  service(): string;
  /** c2s node of the "first" and of the "second" user of a test: different nodes in cluster mode. */
  nodeA: number;
  nodeB: number;
  /** How long to wait before concluding that something was not delivered. */
  quietMs: number;
  sessions: Session[];
  test(name: string, timeoutMs: number, fn: (t: TestContext) => Promise<void>, extraSkip?: string | null): void;
  online(node: number, opts?: { presence?: boolean }): Promise<Session>;
  users(n: number): Promise<Session[]>;
  loginAs(bare: string, node: number): Promise<Session>;
  setupRoom(owner: [Session, string], others: Array<[Session, string]>, config?: ConfigFields): Promise<{ room: string; joins: Joined[] }>;
  nothingFrom(ss: Session[], room: string, pred: (el: XmlElement) => boolean, what: string): Promise<void>;
  errorFrom(el: XmlElement, expected: string, what: string): void;
}

/**
 * Registers the hooks of a describe block (one server for the block, every
 * test's sessions stopped after it) and returns the helpers its tests use.
 * Call inside the describe callback.
 */
function suiteContext(mode: Mode, skip: string | null, start: () => Promise<HyphaeServer>): Ctx {
  let server: HyphaeServer | undefined;
  const sessions: Session[] = [];
  const nodeA = 0;
  const nodeB = mode === 'cluster' ? 1 : 0;
  const quietMs = mode === 'cluster' ? 1_200 : 800;
  const credentials = new Map<string, { username: string; password: string }>();

  const srv = (): HyphaeServer => {
    if (!server) throw new Error('server did not start');
    return server;
  };
  const track1 = async (s: Session): Promise<Session> => {
    track(s);
    sessions.push(s);
    return s;
  };
  const online = async (node: number, opts: { presence?: boolean } = {}): Promise<Session> => {
    const acc = await newAccount(srv(), 'm');
    const s = await track1(await login(srv(), { username: acc.username, password: acc.password, node }));
    credentials.set(s.bare, acc);
    if (opts.presence) await sendPresence(s);
    return s;
  };
  const ctx: Ctx = {
    srv,
    cluster: () => {
      const s = srv();
      if (s.mode !== 'cluster') throw new Error('not a cluster');
      return s as ClusterServer;
    },
    service: () => mucService(srv()),
    nodeA,
    nodeB,
    quietMs,
    sessions,
    test: (name, timeoutMs, fn, extraSkip = null) => {
      it(name, { timeout: timeoutMs, skip: skip ?? extraSkip ?? false }, async (t) => {
        const started = Date.now();
        await withServerLogs(t, server, () => fn(t));
        t.diagnostic(`${mode}: ${Date.now() - started} ms`);
      });
    },
    online,
    /** `n` fresh sessions alternating between the two nodes, starting with nodeA. */
    users: (n) => Promise.all(Array.from({ length: n }, (_, i) => online(i % 2 === 0 ? nodeA : nodeB))),
    loginAs: async (bare, node) => {
      const cred = credentials.get(bare);
      if (!cred) throw new Error(`no credentials kept for ${bare}`);
      return track1(await login(srv(), { ...cred, node }));
    },
    /**
     * A room created by `owner` (instant, or reserved with `config`) that the
     * others then enter in order; returns once every occupant has seen every
     * later one enter, with those presences consumed.
     */
    setupRoom: async (owner, others, config) => {
      const room = newRoomJid(srv());
      const joins = [await createRoom(owner[0], room, owner[1], config)];
      for (const [s, nick] of others) joins.push(await join(s, room, nick));
      const all = [owner, ...others];
      for (const [i, [s]] of all.entries()) {
        for (const [, laterNick] of all.slice(i + 1)) {
          await s.waitFor(presenceOf(room, laterNick), 10_000, `${laterNick}'s presence in ${room}`);
        }
      }
      return { room, joins };
    },
    nothingFrom: async (ss, room, pred, what) => {
      await Promise.all(ss.map((s) => expectNothing(s, (el) => fromRoom(el, room) && pred(el), what, quietMs)));
    },
    errorFrom: (el, expected, what) => {
      assert.ok(
        sameJid(el.attrs.from, expected),
        `${what}: the error must come from ${expected} (the address the request was sent to), came from ${el.attrs.from}: ${el.toString()}`,
      );
    },
  };
  before(async () => {
    if (skip) return;
    server = await start();
  }, { timeout: 120_000 });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.stop()));
  });
  after(async () => {
    await server?.dispose();
  });
  return ctx;
}

/** The configuration field of the discussion history length, as the form names it. */
function historyField(form: DataForm): string | undefined {
  return ['muc#maxhistoryfetch', 'muc#roomconfig_historylength'].find((v) => form.fields.has(v));
}

function mucSuite(mode: Mode): void {
  const skip = mucSkipReason(mode);
  describe(`XEP-0045 multi-user chat (${mode})`, () => {
    const { srv, cluster, service, nodeA, nodeB, quietMs, sessions, test, online, users, loginAs, setupRoom, nothingFrom, errorFrom } = suiteContext(mode, skip, () =>
      mode === 'embedded'
        ? startEmbedded()
        : startCluster({
            c2sNodes: 2,
            mucNodes: 2,
            config: { sm: { heartbeatIntervalMs: HEARTBEAT_MS, nodeTtlMs: NODE_TTL_MS }, muc: { leaseTtlMs: LEASE_TTL_MS } },
          }),
    );

    // --- discovery -----------------------------------------------------------

    test('§6.1/§6.2: the server’s disco#items lists the MUC service; its disco#info is conference/text with the muc feature', 30_000, async () => {
      const a = await online(nodeA);
      const items = await discoItems(a, srv().domain);
      assertResult(items, `disco#items of ${srv().domain}`);
      const listed = parseDiscoItems(items).items.map((i) => i.jid);
      assert.ok(listed.includes(service()), `${service()} is not among the server's disco#items: ${items.toString()}`);
      const info = parseDiscoInfo(await discoInfo(a, service()));
      assertResult(info.stanza, `disco#info of ${service()}`);
      assert.ok(sameJid(info.stanza.attrs.from, service()), `answer from ${info.stanza.attrs.from}`);
      assert.ok(
        info.identities.some((i) => i.category === 'conference' && i.type === 'text'),
        `no <identity category='conference' type='text'/>: ${info.stanza.toString()}`,
      );
      assert.ok(info.features.includes(MUC_NS.muc), `no <feature var='${MUC_NS.muc}'/>: ${info.stanza.toString()}`);
    });

    test('§6.3 + XEP-0059: disco#items lists public rooms (persistent and empty, temporary and occupied) but not hidden ones; max/after paging covers the list exactly once', 60_000, async (t) => {
      const [a, b] = await users(2);
      const tag = uniqueName('ls');
      const names = new Map<string, string>();
      for (let i = 0; i < 4; i++) {
        const room = `${tag}-p${i}@${service()}`;
        await createRoom(a!, room, 'owner', { roomname: `Listed ${i}`, publicroom: true, persistentroom: true });
        await leave(a!, room, 'owner');
        names.set(room, `Listed ${i}`);
      }
      const temp = `${tag}-t@${service()}`;
      await createRoom(b!, temp, 'bob', { roomname: 'Occupied', publicroom: true, persistentroom: false });
      names.set(temp, 'Occupied');
      const hidden = `${tag}-h@${service()}`;
      await createRoom(b!, hidden, 'bob', { roomname: 'Hidden', publicroom: false, persistentroom: true });

      const full = parseDiscoItems(await discoItems(a!, service()));
      assertResult(full.stanza, `disco#items of ${service()}`);
      const listed = full.items.map((i) => i.jid.toLowerCase());
      for (const [room, name] of names) {
        const item = full.items.find((i) => sameJid(i.jid, room));
        assert.ok(item, `public room ${room} is not listed: ${full.stanza.toString()}`);
        if (item.name !== undefined) assert.equal(item.name, name, `the item's name is the room name: ${full.stanza.toString()}`);
      }
      assert.ok(!listed.includes(hidden), `hidden room ${hidden} is listed (§6.3: not return any rooms that are hidden)`);
      assert.equal(new Set(listed).size, listed.length, `duplicate items: ${listed.join(' ')}`);

      // XEP-0059 paging, two items a page, until an empty page.
      const paged: string[] = [];
      let count: number | undefined;
      let after: string | undefined;
      for (let pages = 0; ; pages++) {
        assert.ok(pages < 100, `paging does not end: ${paged.length} items so far`);
        const page = parseDiscoItems(await discoItems(a!, service(), { max: 2, after }));
        assertResult(page.stanza, `disco#items page ${pages} (after ${after ?? '-'})`);
        assert.ok(page.rsm, `page ${pages}: no <set xmlns='${MUC_NS.rsm}'/> in the answer: ${page.stanza.toString()}`);
        assert.ok(page.items.length <= 2, `page ${pages}: ${page.items.length} items for <max>2</max>`);
        assert.ok(page.rsm.count !== undefined, `page ${pages}: no <count/>: ${page.stanza.toString()}`);
        if (count === undefined) count = page.rsm.count;
        assert.equal(page.rsm.count, count, `the count changed between pages: ${page.stanza.toString()}`);
        if (page.items.length === 0) {
          assert.equal(page.rsm.first, undefined, `an empty page must not have <first/> (XEP-0059 §2.1): ${page.stanza.toString()}`);
          assert.equal(page.rsm.last, undefined, `an empty page must not have <last/> (XEP-0059 §2.1): ${page.stanza.toString()}`);
          break;
        }
        assert.ok(page.rsm.first !== undefined && page.rsm.last !== undefined, `page ${pages}: <first/> and <last/> are required (XEP-0059 §2.1): ${page.stanza.toString()}`);
        if (page.items.length === 1) assert.equal(page.rsm.first, page.rsm.last, 'one item: first and last UIDs are the same');
        if (page.rsm.firstIndex !== undefined) assert.equal(page.rsm.firstIndex, paged.length, `page ${pages}: <first index/> is the position of the page's first item`);
        paged.push(...page.items.map((i) => i.jid.toLowerCase()));
        after = page.rsm.last;
      }
      t.diagnostic(`${paged.length} rooms listed in pages of 2 (count ${count})`);
      assert.equal(new Set(paged).size, paged.length, `an item was returned twice while paging: ${paged.join(' ')}`);
      assert.equal(paged.length, count, `paging returned ${paged.length} items, <count/> says ${count}`);
      if (!full.rsm) assert.deepEqual([...paged].sort(), [...listed].sort(), 'the pages together are the unpaged list');
      for (const room of names.keys()) assert.ok(paged.includes(room), `${room} missing from the pages`);
      assert.ok(!paged.includes(hidden), 'the hidden room appears in a page');

      // <max>0</max>: the count only (XEP-0059 §2.6).
      const c = parseDiscoItems(await discoItems(a!, service(), { max: 0 }));
      assertResult(c.stanza, 'disco#items with <max>0</max>');
      assert.equal(c.items.length, 0, `<max>0</max> returned items: ${c.stanza.toString()}`);
      assert.equal(c.rsm?.count, count, `<max>0</max>: <count/> ${c.stanza.toString()}`);
    });

    test('§6.4: room disco#info has identity conference/text with the room name, one feature of each pair following the configuration, and a muc#roominfo form; unknown room → <item-not-found/> cancel; occupant JID from a non-occupant → <bad-request/> modify', 60_000, async () => {
      const [a, b] = await users(2);
      const room = newRoomJid(srv());
      await createRoom(a!, room, 'owner', {
        roomname: 'Room One',
        roomdesc: 'First description',
        publicroom: false,
        persistentroom: true,
        passwordprotectedroom: true,
        roomsecret: 'pw1',
        membersonly: true,
        moderatedroom: true,
        whois: 'anyone',
      });
      let info = await roomInfo(b!, room);
      assert.ok(sameJid(info.stanza.attrs.from, room), `answer from ${info.stanza.attrs.from}`);
      const ident = info.identities.find((i) => i.category === 'conference' && i.type === 'text');
      assert.ok(ident, `no <identity category='conference' type='text'/>: ${info.stanza.toString()}`);
      assert.equal(ident.name, 'Room One', `the identity carries the room name: ${info.stanza.toString()}`);
      assert.ok(info.features.includes(MUC_NS.muc), `no muc feature: ${info.stanza.toString()}`);
      assert.deepEqual(pairChoices(info), ['muc_hidden', 'muc_persistent', 'muc_passwordprotected', 'muc_membersonly', 'muc_moderated', 'muc_nonanonymous'], info.stanza.toString());
      let form = roomInfoForm(info);
      assert.ok(form, `no muc#roominfo form (FORM_TYPE ${MUC_NS.roominfo}): ${info.stanza.toString()}`);
      assert.equal(form.fields.get('FORM_TYPE')?.type, 'hidden', 'FORM_TYPE is a hidden field (XEP-0128)');
      assert.equal(form.type, 'result', 'the extended info form is of type result (XEP-0128)');
      assert.equal(fieldValue(form, 'muc#roominfo_description'), 'First description');
      assert.equal(fieldValue(form, 'muc#roominfo_occupants'), '1', 'the owner is the only occupant');

      await configure(a!, room, {
        roomname: 'Room Two',
        roomdesc: 'Second description',
        publicroom: true,
        persistentroom: false,
        passwordprotectedroom: false,
        membersonly: false,
        moderatedroom: false,
        whois: 'moderators',
      });
      await join(b!, room, 'bob');
      await setSubject(a!, room, 'Now discussing');
      info = await roomInfo(b!, room);
      assert.equal(info.identities.find((i) => i.category === 'conference')?.name, 'Room Two', info.stanza.toString());
      assert.deepEqual(pairChoices(info), ['muc_public', 'muc_temporary', 'muc_unsecured', 'muc_open', 'muc_unmoderated', 'muc_semianonymous'], info.stanza.toString());
      form = roomInfoForm(info);
      assert.ok(form, `no muc#roominfo form: ${info.stanza.toString()}`);
      assert.equal(fieldValue(form, 'muc#roominfo_description'), 'Second description');
      assert.equal(fieldValue(form, 'muc#roominfo_occupants'), '2');
      assert.equal(fieldValue(form, 'muc#roominfo_subject'), 'Now discussing');

      const unknown = `${uniqueName('nosuch')}@${service()}`;
      const res = await discoInfo(b!, unknown);
      assertError(res, 'item-not-found', 'cancel', `disco#info of the nonexistent room ${unknown}`);
      // §6.5: a non-occupant's disco request to an occupant JID.
      const c = await online(nodeA);
      assertError(await discoInfo(c, `${room}/owner`), 'bad-request', 'modify', 'disco#info from a non-occupant to an occupant JID (§6.5)');
    });

    // --- creation and configuration -----------------------------------------------

    test('§10.1.1/§10.1.2: entering a new room creates it locked (110+201, owner/moderator); others get <item-not-found/> cancel until the owner accepts the default (instant room)', 45_000, async () => {
      const [a, b] = await users(2);
      const room = newRoomJid(srv());
      const created = await join(a!, room, 'owner');
      assert.ok(created.codes.includes(110) && created.codes.includes(201), `self-presence of the creator: ${describePresence(created.self)}`);
      assert.equal(created.item?.affiliation, 'owner', describePresence(created.self));
      assert.equal(created.item?.role, 'moderator', describePresence(created.self));
      assert.deepEqual(created.others, [], 'nobody else is in a new room');
      assert.equal(created.history.length, 0, 'a new room has no history');

      const locked = await joinError(b!, room, 'bob');
      assertError(locked, 'item-not-found', 'cancel', 'entering a locked room (§7.2.11)');
      errorFrom(locked, `${room}/bob`, 'entering a locked room');
      await nothingFrom([a!], room, (el) => el.name === 'presence', 'a presence about the refused user');

      assertResult(await submitInstant(a!, room), 'instant room: empty submitted form (§10.1.2)');
      const entered = await join(b!, room, 'bob');
      assert.ok(!entered.codes.includes(201), `201 is for the creator only: ${describePresence(entered.self)}`);
      assert.deepEqual(entered.others.map(nickOf), ['owner'], 'the new occupant sees the owner');
      const seen = await a!.waitFor(presenceOf(room, 'bob'), 10_000, "bob's presence");
      assert.equal(itemOf(seen)?.role, 'participant', describePresence(seen));
    });

    test('§10.1.3: a reserved room: the config form (FORM_TYPE, every field with its XEP-0004 type); the submitted configuration is in force', 45_000, async () => {
      const [a, b] = await users(2);
      const room = newRoomJid(srv());
      await join(a!, room, 'owner');
      const form = await getConfig(a!, room);
      assert.equal(form.type, 'form', `the configuration form has type 'form': ${form.el.toString()}`);
      const ft = form.fields.get('FORM_TYPE');
      assert.equal(ft?.type, 'hidden', 'FORM_TYPE is a hidden field');
      assert.deepEqual(ft?.values, [MUC_NS.roomconfig]);
      /** Field → its type in the §15.5.3 registry (null: not registered there, any type). */
      const expected: Record<string, string | null> = {
        'muc#roomconfig_roomname': 'text-single',
        'muc#roomconfig_roomdesc': 'text-single',
        'muc#roomconfig_publicroom': 'boolean',
        'muc#roomconfig_persistentroom': 'boolean',
        'muc#roomconfig_passwordprotectedroom': 'boolean',
        'muc#roomconfig_roomsecret': 'text-private',
        'muc#roomconfig_membersonly': 'boolean',
        'muc#roomconfig_moderatedroom': 'boolean',
        'muc#roomconfig_maxusers': 'list-single',
        'muc#roomconfig_whois': 'list-single',
        'muc#roomconfig_changesubject': 'boolean',
        'muc#roomconfig_allowinvites': 'boolean',
        'muc#roomconfig_allowpm': 'list-single',
      };
      const problems: string[] = [];
      for (const [v, type] of Object.entries(expected)) {
        const f = form.fields.get(v);
        if (!f) {
          problems.push(`${v} missing`);
          continue;
        }
        if (type !== null && f.type !== type) problems.push(`${v} has type ${f.type}, the registry says ${type}`);
        if (f.type === 'boolean' && f.values.length && formBoolean(f.values[0]) === undefined) problems.push(`${v} has the non-boolean value ${f.values[0]}`);
      }
      // The discussion history length: the registry's muc#maxhistoryfetch (§15.5.3), or the common muc#roomconfig_historylength.
      const hist = historyField(form);
      if (!hist) problems.push('no history length field (muc#maxhistoryfetch or muc#roomconfig_historylength)');
      const whois = form.fields.get('muc#roomconfig_whois');
      for (const o of ['anyone', 'moderators']) if (whois && !whois.options.includes(o)) problems.push(`muc#roomconfig_whois lacks option ${o}`);
      const allowpm = form.fields.get('muc#roomconfig_allowpm');
      for (const o of ['anyone', 'participants', 'moderators', 'none']) if (allowpm && !allowpm.options.includes(o)) problems.push(`muc#roomconfig_allowpm lacks option ${o}`);
      assert.deepEqual(problems, [], `configuration form: ${form.el.toString()}`);

      const maxOptions = (form.fields.get('muc#roomconfig_maxusers')?.options ?? []).filter((o) => /^\d+$/.test(o)).map(Number);
      const maxusers = maxOptions.length === 0 || maxOptions.includes(10) ? 10 : Math.min(...maxOptions);
      const config: ConfigFields = {
        roomname: 'Reserved Room',
        roomdesc: 'Configured before anyone entered',
        publicroom: false,
        persistentroom: true,
        maxusers,
        whois: 'anyone',
        allowpm: 'moderators',
        changesubject: true,
        allowinvites: true,
        ...(hist ? { [hist]: 7 } : {}),
      };
      assertResult(await submitConfig(a!, room, config), 'submitting the initial configuration');
      const entered = await join(b!, room, 'bob');
      assert.ok(entered.codes.includes(100), `whois=anyone: the self-presence has status 100 (§7.2.4): ${describePresence(entered.self)}`);
      const again = await getConfig(a!, room);
      const now = (v: string): string | undefined => fieldValue(again, `muc#roomconfig_${v}`);
      assert.equal(now('roomname'), 'Reserved Room');
      assert.equal(now('roomdesc'), 'Configured before anyone entered');
      assert.equal(formBoolean(now('publicroom')), false);
      assert.equal(formBoolean(now('persistentroom')), true);
      assert.equal(now('maxusers'), String(maxusers));
      assert.equal(now('whois'), 'anyone');
      assert.equal(now('allowpm'), 'moderators');
      assert.equal(formBoolean(now('changesubject')), true);
      assert.equal(formBoolean(now('allowinvites')), true);
      if (hist) assert.equal(fieldValue(again, hist), '7', hist);
      const info = await roomInfo(b!, room);
      assert.equal(info.identities.find((i) => i.category === 'conference')?.name, 'Reserved Room');
      assert.deepEqual(pairChoices(info), ['muc_hidden', 'muc_persistent', 'muc_unsecured', 'muc_open', 'muc_unmoderated', 'muc_nonanonymous'], info.stanza.toString());
    });

    test('§10.1.3: cancelling the initial configuration destroys the locked room (the owner gets unavailable; disco#info → <item-not-found/>)', 30_000, async () => {
      const [a, b] = await users(2);
      const room = newRoomJid(srv());
      await join(a!, room, 'owner');
      assertResult(await cancelConfig(a!, room), 'cancelling the initial configuration');
      await a!.waitFor(presenceOf(room, 'owner', 'unavailable'), 10_000, 'the unavailable presence of the destroyed room');
      assertError(await discoInfo(b!, room), 'item-not-found', 'cancel', 'disco#info of a room destroyed by cancelling its configuration');
      // The name is free again: the next user creates a new room.
      const again = await join(b!, room, 'bob');
      assert.ok(again.codes.includes(201), `the room is created anew: ${describePresence(again.self)}`);
    });

    test('§7.2.20: entering without the MUC <x/> (groupchat 1.0) creates an instant, unlocked room', 30_000, async () => {
      const [a, b] = await users(2);
      const room = newRoomJid(srv());
      const created = await join(a!, room, 'owner', { noMucX: true });
      assert.equal(created.item?.affiliation, 'owner', describePresence(created.self));
      assert.equal(created.item?.role, 'moderator', describePresence(created.self));
      const entered = await join(b!, room, 'bob');
      assert.equal(entered.item?.role, 'participant', describePresence(entered.self));
    });

    test('§10.1.3/§10.2 + XEP-0004: only an owner gets or submits the form (<forbidden/> auth); invalid values → <not-acceptable/> modify; nothing changes, nor on a cancelled reconfiguration', 45_000, async () => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'owner'], [[b!, 'bob']], { roomname: 'Strict', whois: 'moderators', allowpm: 'anyone', persistentroom: false });
      assertError(await ownerGet(b!, room), 'forbidden', 'auth', 'a participant asking for the configuration form');
      assertError(await submitConfig(b!, room, { roomname: 'Hijacked' }), 'forbidden', 'auth', 'a participant submitting a configuration');
      const formBefore = await getConfig(a!, room);
      const invalid: ConfigFields[] = [{ whois: 'nobody' }, { allowpm: 'everybody' }, { maxusers: 'abc' }, { persistentroom: 'maybe' }];
      const answers: XmlElement[] = [];
      for (const fields of invalid) answers.push(await submitConfig(a!, room, fields));
      // §10.2: cancelling a subsequent configuration leaves the configuration as it was.
      await getConfig(a!, room);
      assertResult(await cancelConfig(a!, room), 'cancelling a subsequent configuration');
      assert.equal((await roomInfo(b!, room)).identities.find((i) => i.category === 'conference')?.name, 'Strict', 'the room survives a cancelled reconfiguration');
      const formAfter = await getConfig(a!, room);
      for (const v of ['roomname', 'whois', 'allowpm', 'maxusers', 'persistentroom']) {
        assert.deepEqual(formAfter.fields.get(`muc#roomconfig_${v}`)?.values, formBefore.fields.get(`muc#roomconfig_${v}`)?.values, `${v} changed although every submission was refused`);
      }
      const wrong = invalid
        .map((fields, i) => [JSON.stringify(fields), answers[i]!] as const)
        .filter(([, el]) => el.attrs.type !== 'error' || errorOf(el).condition !== 'not-acceptable' || errorOf(el).type !== 'modify')
        .map(([f, el]) => `${f} → ${el.attrs.type === 'error' ? describeError(el) : el.attrs.type}`);
      assert.deepEqual(wrong, [], 'invalid values must be refused with <not-acceptable/> type=modify (XEP-0004 §3.3, XEP-0045 §10.1.3)');
    });

    test('§10.2.1: a privacy-relevant configuration change is announced to the occupants (172 non-anonymous, 173 semi-anonymous)', 30_000, async (t) => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'owner'], [[b!, 'bob']], { whois: 'moderators' });
      const notice = (code: number) => (el: XmlElement): boolean => el.name === 'message' && sameJid(el.attrs.from, room) && statusCodes(el).includes(code);
      await configure(a!, room, { whois: 'anyone' });
      for (const s of [a!, b!]) await s.waitFor(notice(172), 10_000, 'status 172 (the room is now non-anonymous)');
      await configure(a!, room, { whois: 'moderators' });
      for (const s of [a!, b!]) await s.waitFor(notice(173), 10_000, 'status 173 (the room is now semi-anonymous)');
      await configure(a!, room, { roomname: 'Renamed' });
      const got104 = await b!.waitFor(notice(104), quietMs, 'status 104').then(() => true, () => false);
      t.diagnostic(`non-privacy change (room name): status 104 ${got104 ? 'sent' : 'not sent'} (SHOULD)`);
    });

    test('§10.2: making a room members-only removes the non-members with 322 (to them and to the others); members stay', 30_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']]);
      await adminSetOk(a!, room, { jid: c!.bare, affiliation: 'member' });
      for (const s of [a!, b!, c!]) await s.waitFor((el) => presenceOf(room, 'carol')(el) && itemOf(el)?.affiliation === 'member', 10_000, 'carol as member');
      await configure(a!, room, { membersonly: true });
      for (const s of [b!, a!, c!]) {
        const p = await s.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, 'the removal of the non-member');
        assert.ok(statusCodes(p).includes(322), `status 322: ${p.toString()}`);
        assert.equal(itemOf(p)?.role, 'none', p.toString());
        if (s !== b!) assert.ok(!statusCodes(p).includes(110), `110 on another occupant's copy: ${p.toString()}`);
      }
      await nothingFrom([a!], room, (el) => presenceOf(room, 'carol', 'unavailable')(el), 'the member being removed');
      await say(c!, room, 'members only now');
      assertError(await joinError(b!, room, 'bob'), 'registration-required', 'auth', 'the removed non-member entering again');
    });

    // --- entering --------------------------------------------------------------------

    test('§7.2.2/§7.2.3: order of events on entering: existing occupants, self-presence (110), history with delay, subject last; the others get the new presence', 45_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      await setSubject(a!, room, 'The plan');
      const sentAt = Date.now();
      const bodies = ['one', 'two', 'three'];
      for (const body of bodies) await say(b!, room, body);
      const info = await roomInfo(c!, room);
      const nonAnonymous = info.features.includes('muc_nonanonymous');

      const j = await join(c!, room, 'carol');
      // 1. Presence of every existing occupant, each with role and affiliation.
      assert.deepEqual(j.others.map((el) => `${el.name}:${nickOf(el)}`).sort(), ['presence:alice', 'presence:bob'], `before the self-presence: ${j.others.map((e) => e.toString()).join(' | ')}`);
      for (const el of j.others) {
        assert.equal(el.attrs.type, undefined, `an occupant's presence is available: ${el.toString()}`);
        assert.ok(!statusCodes(el).includes(110), `110 on another occupant's presence: ${el.toString()}`);
      }
      const alice = assertRoleAndAffiliation(j.others.find((e) => nickOf(e) === 'alice')!, "alice's presence");
      assert.equal(`${alice.affiliation}/${alice.role}`, 'owner/moderator');
      const bob = assertRoleAndAffiliation(j.others.find((e) => nickOf(e) === 'bob')!, "bob's presence");
      assert.equal(`${bob.affiliation}/${bob.role}`, 'none/participant');
      // 2. Self-presence.
      const self = assertRoleAndAffiliation(j.self, 'self-presence');
      assert.equal(`${self.affiliation}/${self.role}`, 'none/participant');
      assert.ok(j.codes.includes(110), describePresence(j.self));
      assert.equal(j.codes.includes(100), nonAnonymous, `status 100 iff the room is non-anonymous (§7.2.4; disco says ${nonAnonymous ? 'muc_nonanonymous' : 'not'}): ${describePresence(j.self)}`);
      assert.ok(!j.codes.includes(201), 'no 201: the room existed');
      // 3. History, in order, each with a delay from the room.
      assert.deepEqual(j.history.map((el) => el.getChildText('body')), bodies, `history: ${j.history.map((e) => e.toString()).join(' | ')}`);
      let last = 0;
      for (const el of j.history) {
        const stamp = assertHistoryMessage(el, room, 'history message');
        assert.equal(nickOf(el), 'bob');
        assert.ok(stamp >= sentAt - 2_000 && stamp <= Date.now() + 2_000, `delay stamp ${new Date(stamp).toISOString()} is not when the message was sent`);
        assert.ok(stamp >= last, 'delay stamps go backwards');
        last = stamp;
      }
      // 4. Subject, last, no body.
      assert.equal(j.subject.getChildText('subject'), 'The plan', j.subject.toString());
      assert.equal(j.stanzas[j.stanzas.length - 1], j.subject, 'the subject is the last thing of the join');
      // The others see the new occupant; jid only where allowed (§7.2.4/§7.2.5), and then the full JID (§17.2 rule 10).
      for (const [s, moderator] of [[a!, true], [b!, false]] as const) {
        const p = await s.waitFor(presenceOf(room, 'carol'), 10_000, "carol's presence");
        const it = assertRoleAndAffiliation(p, `carol's presence at ${s.jid}`);
        assert.equal(`${it.affiliation}/${it.role}`, 'none/participant');
        assert.ok(!statusCodes(p).includes(110), `110 sent to another occupant: ${p.toString()}`);
        if (moderator || nonAnonymous) assert.equal(it.jid, c!.jid, `${moderator ? 'a moderator' : 'everyone in a non-anonymous room'} sees the real full JID: ${p.toString()}`);
        else assert.equal(it.jid, undefined, `a participant of a semi-anonymous room must not see real JIDs: ${p.toString()}`);
      }
    });

    test('§7.2.1/§17.2 rule 3: a join from an occupant already in the room resynchronises it: occupants, self-presence, history and subject again; it does not leave', 30_000, async () => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      await setSubject(a!, room, 'Sync');
      const live = await say(a!, room, 'before the resync');
      await b!.waitFor(reflectionOf(room, live.attrs.id ?? ''), 10_000, 'the live copy of the message');
      await b!.waitFor((el) => isSubjectMessage(el, room), 10_000, 'the live subject change');
      const again = await join(b!, room, 'bob');
      assert.deepEqual(again.others.map(nickOf), ['alice'], `the occupants are sent again, once each: ${again.others.map((e) => e.toString()).join(' | ')}`);
      assert.ok(again.codes.includes(110), describePresence(again.self));
      assert.ok(!again.codes.includes(201), describePresence(again.self));
      assert.deepEqual(again.history.map((el) => el.getChildText('body')), ['before the resync'], 'the history is sent again');
      assert.equal(again.subject.getChildText('subject'), 'Sync', 'the subject is sent again');
      await nothingFrom([a!], room, (el) => presenceOf(room, 'bob', 'unavailable')(el), 'bob leaving because of a resync');
      await say(b!, room, 'still in');
    });

    test('§7.2.4/§7.2.5: non-anonymous room → status 100 and full JIDs for everyone; semi-anonymous → JIDs for moderators only', 45_000, async () => {
      const [a, b, c, d] = await users(4);
      const open = await setupRoom([a!, 'alice'], [[b!, 'bob']], { whois: 'anyone' });
      const j = await join(c!, open.room, 'carol');
      assert.ok(j.codes.includes(100), `non-anonymous: status 100 in the self-presence: ${describePresence(j.self)}`);
      const seen = new Map(j.others.map((el) => [nickOf(el), itemOf(el)?.jid]));
      assert.equal(seen.get('alice'), a!.jid, 'alice’s full JID');
      assert.equal(seen.get('bob'), b!.jid, 'bob’s full JID');
      assert.equal(j.item?.jid, c!.jid, 'own full JID in the self-presence');
      const atBob = await b!.waitFor(presenceOf(open.room, 'carol'), 10_000, "carol's presence");
      assert.equal(itemOf(atBob)?.jid, c!.jid, `a participant sees the full JID in a non-anonymous room: ${atBob.toString()}`);

      const semi = await setupRoom([a!, 'alice'], [[b!, 'bob']], { whois: 'moderators' });
      const k = await join(d!, semi.room, 'dave');
      assert.ok(!k.codes.includes(100), `semi-anonymous: no status 100: ${describePresence(k.self)}`);
      for (const el of k.others) assert.equal(itemOf(el)?.jid, undefined, `a participant sees a real JID in a semi-anonymous room: ${el.toString()}`);
      const atAlice = await a!.waitFor(presenceOf(semi.room, 'dave'), 10_000, "dave's presence at the moderator");
      assert.equal(itemOf(atAlice)?.jid, d!.jid, `the moderator sees the full JID: ${atAlice.toString()}`);
      const atBob2 = await b!.waitFor(presenceOf(semi.room, 'dave'), 10_000, "dave's presence at a participant");
      assert.equal(itemOf(atBob2)?.jid, undefined, `a participant sees the JID: ${atBob2.toString()}`);
    });

    test('§7.2.9/§7.2.1: nick in use → <conflict/> cancel; no nick (bare room JID) → <jid-malformed/> modify; an invisible nick is refused; each from the address tried, nothing broadcast', 30_000, async (t) => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], []);
      const conflict = await joinError(b!, room, 'alice');
      assertError(conflict, 'conflict', 'cancel', 'entering with the nick of another occupant');
      errorFrom(conflict, `${room}/alice`, 'nick conflict');
      const noNick = await joinError(b!, room, '');
      assertError(noNick, 'jid-malformed', 'modify', 'entering without a nick');
      errorFrom(noNick, room, 'no nick');
      await nothingFrom([a!], room, (el) => el.name === 'presence', 'a presence caused by a refused entry');
      // §17.1: empty or invisible nicks (only spaces) are not allowed; the XEP names no condition.
      const blank = await joinError(b!, room, '   ');
      t.diagnostic(`a nick of three spaces is refused with ${describeError(blank)}`);
    });

    test('§7.2.6: password-protected room: no or a wrong password → <not-authorized/> auth; the right one enters', 30_000, async () => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [], { passwordprotectedroom: true, roomsecret: 'cauldronburn' });
      const none = await joinError(b!, room, 'bob');
      assertError(none, 'not-authorized', 'auth', 'entering without a password');
      errorFrom(none, `${room}/bob`, 'no password');
      assertError(await joinError(b!, room, 'bob', { password: 'wrong' }), 'not-authorized', 'auth', 'entering with a wrong password');
      const ok = await join(b!, room, 'bob', { password: 'cauldronburn' });
      assert.ok(ok.codes.includes(110));
    });

    test('§7.2.7/§9.4: members-only room: a non-member → <registration-required/> auth; a granted member enters as member/participant; revoking membership removes it with 321', 30_000, async (t) => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [], { membersonly: true });
      const refused = await joinError(b!, room, 'bob');
      assertError(refused, 'registration-required', 'auth', 'a non-member entering a members-only room');
      errorFrom(refused, `${room}/bob`, 'members-only');
      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'member' });
      const ok = await join(b!, room, 'bob');
      assert.equal(`${ok.item?.affiliation}/${ok.item?.role}`, 'member/participant', describePresence(ok.self));
      await a!.waitFor(presenceOf(room, 'bob'), 10_000, "bob's presence");
      // §9.4: revoking membership in a members-only room removes the user, with status 321.
      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'none' });
      for (const s of [b!, a!]) {
        const p = await s.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, 'the removal of the former member');
        assert.ok(statusCodes(p).includes(321), `status 321 (removed because of an affiliation change): ${p.toString()}`);
        assert.equal(`${itemOf(p)?.affiliation}/${itemOf(p)?.role}`, 'none/none', p.toString());
      }
      const deaffiliated = receivedSince(a!, 0, (el) => presenceOf(room, 'bob')(el) && itemOf(el)?.affiliation === 'none');
      if (deaffiliated.length) t.diagnostic(`also sent an available presence with affiliation none before the removal (§9.4: SHOULD NOT): ${deaffiliated[0]!.toString()}`);
      assertError(await joinError(b!, room, 'bob'), 'registration-required', 'auth', 'a former member entering');
    });

    test('§7.2.10: a full room (muc#roomconfig_maxusers) refuses one more non-affiliated user with <service-unavailable/> wait', 60_000, async (t) => {
      const [a] = await users(1);
      const room = newRoomJid(srv());
      await join(a!, room, 'owner');
      const form = await getConfig(a!, room);
      const numeric = (form.fields.get('muc#roomconfig_maxusers')?.options ?? []).filter((o) => /^\d+$/.test(o)).map(Number);
      const max = numeric.length === 0 || numeric.includes(2) ? 2 : Math.min(...numeric);
      t.diagnostic(`maxusers ${max} (form options: ${numeric.join(',') || 'none'})`);
      assertResult(await submitConfig(a!, room, { maxusers: max }), `maxusers=${max}`);
      const guests = await users(max);
      for (const [i, g] of guests.slice(0, max - 1).entries()) await join(g, room, `guest${i}`);
      const late = guests[max - 1]!;
      const full = await joinError(late, room, 'late');
      assertError(full, 'service-unavailable', 'wait', `entering a room with ${max} of ${max} occupants`);
      errorFrom(full, `${room}/late`, 'room full');
      // A seat frees up: the same user enters.
      await leave(guests[0]!, room, 'guest0');
      await join(late, room, 'late');
    });

    test('§7.2.13: history management: maxstanzas, maxchars (0, partial), seconds, since, combinations; history length field', 60_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      const tag = uniqueName('h');
      const body = (i: number): string => `${tag}:${i}:${'x'.repeat(600)}`;
      for (let i = 1; i <= 3; i++) await say(b!, room, body(i));
      const t3 = Date.now();
      await sleep(3_000);
      for (let i = 4; i <= 5; i++) await say(b!, room, body(i));
      let n = 0;
      /** Enters with `history`, returns the history bodies' indexes, leaves. */
      const historyWith = async (history?: { maxstanzas?: number; maxchars?: number; seconds?: number; since?: string }): Promise<number[]> => {
        const nick = `c${n++}`;
        const j = await join(c!, room, nick, history ? { history } : {});
        let last = 0;
        for (const el of j.history) {
          const stamp = assertHistoryMessage(el, room, `history with ${JSON.stringify(history)}`);
          assert.ok(stamp >= last, 'delay stamps go backwards');
          last = stamp;
        }
        await leave(c!, room, nick);
        return j.history.map((el) => Number((el.getChildText('body') ?? '').split(':')[1]));
      };
      assert.deepEqual(await historyWith({ seconds: 2 }), [4, 5], 'seconds=2 (messages 1-3 are 3 s older)');
      assert.deepEqual(await historyWith(), [1, 2, 3, 4, 5], 'no <history/>: the room default (20)');
      assert.deepEqual(await historyWith({ maxstanzas: 2 }), [4, 5], 'maxstanzas=2');
      assert.deepEqual(await historyWith({ maxchars: 0 }), [], 'maxchars=0: no history');
      assert.deepEqual(await historyWith({ since: new Date(t3 + 1_500).toISOString() }), [4, 5], 'since between message 3 and 4');
      assert.deepEqual(await historyWith({ since: '1970-01-01T00:00:00Z', maxstanzas: 1 }), [5], 'since 1970 and maxstanzas=1: the smallest amount');
      const partial = await historyWith({ maxchars: 2_500 });
      // Each stanza is over 600 characters and (with its envelope) under 1100: 2 to 4 complete stanzas fit, the newest ones.
      assert.ok(partial.length >= 2 && partial.length <= 4, `maxchars=2500 gave ${partial.length} stanzas of >600 characters each`);
      assert.deepEqual(partial, [1, 2, 3, 4, 5].slice(5 - partial.length), 'maxchars keeps the newest complete stanzas');
      const hist = historyField(await getConfig(a!, room));
      assert.ok(hist, 'the configuration form has a history length field (muc#maxhistoryfetch or muc#roomconfig_historylength)');
      await configure(a!, room, { [hist]: 3 });
      assert.deepEqual(await historyWith(), [3, 4, 5], `${hist}=3`);
    });

    // --- subject, messages ---------------------------------------------------------------

    test('§8.1/§7.2.15: the subject is broadcast to all and sent last to new occupants; without the right → <forbidden/> auth; muc#roomconfig_changesubject lets participants; an empty subject clears it', 45_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']], { changesubject: false });
      const bc = await setSubject(a!, room, 'Topic one');
      assert.ok(sameJid(bc.attrs.from, room) || sameJid(bc.attrs.from, `${room}/alice`), `the subject comes from the room or the setter's occupant JID: ${bc.toString()}`);
      const atBob = await b!.waitFor((el) => isSubjectMessage(el, room), 10_000, 'the subject change');
      assert.equal(atBob.getChildText('subject'), 'Topic one');
      assert.equal(atBob.getChild('body'), undefined, 'a subject change has no body');
      const info = await roomInfo(c!, room);
      assert.equal(fieldValue(roomInfoForm(info)!, 'muc#roominfo_subject'), 'Topic one', info.stanza.toString());

      const id = await sendSubject(b!, room, 'Hijacked');
      const refused = await b!.waitFor(messageErrorFor(id), 10_000, 'the refusal of a participant’s subject change');
      assertError(refused, 'forbidden', 'auth', 'a participant changing the subject with changesubject=0 (§8.1)');
      await nothingFrom([a!, b!], room, (el) => isSubjectMessage(el, room), 'a subject change by a participant');
      const j = await join(c!, room, 'carol');
      assert.equal(j.subject.getChildText('subject'), 'Topic one', `new occupants get the current subject: ${j.subject.toString()}`);

      await configure(a!, room, { changesubject: true });
      await setSubject(b!, room, 'Topic two');
      for (const s of [a!, c!]) {
        const m = await s.waitFor((el) => isSubjectMessage(el, room) && el.getChildText('subject') === 'Topic two', 10_000, 'the participant’s subject');
        assert.ok(sameJid(m.attrs.from, room) || sameJid(m.attrs.from, `${room}/bob`), m.toString());
      }
      await setSubject(a!, room, '');
      await b!.waitFor((el) => isSubjectMessage(el, room) && (el.getChildText('subject') ?? '') === '', 10_000, 'the empty subject');
      await leave(c!, room, 'carol');
      const k = await join(c!, room, 'carol2');
      assert.equal(k.subject.getChildText('subject') ?? '', '', `after clearing, new occupants get an empty <subject/>: ${k.subject.toString()}`);
    });

    test('§7.4: groupchat is reflected once to every occupant (the sender too) with the same id, from room/nick; a non-occupant → <not-acceptable/> modify; a nonexistent room → <item-not-found/> cancel', 45_000, async () => {
      const [a, b, c, d] = await users(4);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']]);
      const id = await sendGroupchat(b!, room, 'Harpier cries');
      for (const s of [a!, b!, c!]) {
        const m = await s.waitFor(reflectionOf(room, id), 10_000, `the reflection of ${id}`);
        assert.ok(sameJid(m.attrs.from, `${room}/bob`), `from the sender's occupant JID: ${m.toString()}`);
        assert.equal(m.getChildText('body'), 'Harpier cries');
        assert.equal(m.attrs.to, s.jid, `addressed to the occupant's full JID: ${m.toString()}`);
      }
      await Promise.all([a!, b!, c!].map((s) => expectNothing(s, reflectionOf(room, id), `a second copy of ${id}`, quietMs)));

      const outsider = await sendGroupchat(d!, room, 'let me in');
      const refused = await d!.waitFor(messageErrorFor(outsider), 10_000, 'the refusal of a non-occupant’s groupchat');
      assertError(refused, 'not-acceptable', 'modify', 'groupchat from a non-occupant (§7.4)');
      errorFrom(refused, room, 'non-occupant groupchat');
      await nothingFrom([a!], room, (el) => el.attrs.id === outsider, "the non-occupant's message");

      const nowhere = `${uniqueName('nosuch')}@${service()}`;
      const lost = await sendGroupchat(a!, nowhere, 'anyone?');
      assertError(await a!.waitFor(messageErrorFor(lost), 10_000, 'the answer to a groupchat to a nonexistent room'), 'item-not-found', 'cancel', 'groupchat to a nonexistent room (§17.1 rule 3)');
    });

    test('§7.5: private messages via the room from room/sender-nick with muc#user <x/>; unknown nick → <item-not-found/> cancel; type groupchat → <bad-request/> modify; non-occupant → <not-acceptable/> modify; allowpm → <forbidden/> auth', 45_000, async () => {
      const [a, b, d] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']], { allowpm: 'anyone' });
      const pm = (from: Session, nick: string, type: string, body: string): Promise<string> => {
        const id = uniqueName('pm');
        return from.send(xml('message', { to: `${room}/${nick}`, type, id }, xml('body', {}, body))).then(() => id);
      };
      const id = await pm(b!, 'alice', 'chat', 'a word');
      const got = await a!.waitFor((el) => el.name === 'message' && el.attrs.id === id, 10_000, 'the private message');
      assert.equal(got.attrs.type, 'chat', got.toString());
      assert.ok(sameJid(got.attrs.from, `${room}/bob`), `from the sender's occupant JID: ${got.toString()}`);
      assert.equal(got.getChildText('body'), 'a word');
      assert.ok(got.getChild('x', MUC_NS.user), `the room adds <x xmlns='${MUC_NS.user}'/> (§7.5): ${got.toString()}`);

      const unknown = await pm(b!, 'nobody', 'chat', 'hello?');
      const e1 = await b!.waitFor(messageErrorFor(unknown), 10_000, 'the answer to a private message to an unknown nick');
      assertError(e1, 'item-not-found', 'cancel', 'private message to a nick not in the room');
      errorFrom(e1, `${room}/nobody`, 'unknown nick');
      const gc = await pm(b!, 'alice', 'groupchat', 'wrong type');
      assertError(await b!.waitFor(messageErrorFor(gc), 10_000, 'the answer to a groupchat-typed private message'), 'bad-request', 'modify', 'private message of type groupchat');
      const outsider = await pm(d!, 'alice', 'chat', 'psst');
      assertError(await d!.waitFor(messageErrorFor(outsider), 10_000, 'the answer to a non-occupant'), 'not-acceptable', 'modify', 'private message from a non-occupant');
      await expectNothing(a!, (el) => el.name === 'message' && (el.attrs.id === gc || el.attrs.id === outsider), 'a refused private message', quietMs);

      await configure(a!, room, { allowpm: 'none' });
      const none = await pm(b!, 'alice', 'chat', 'not allowed');
      assertError(await b!.waitFor(messageErrorFor(none), 10_000, 'the answer with allowpm=none'), 'forbidden', 'auth', 'private message with muc#roomconfig_allowpm=none');
      await configure(a!, room, { allowpm: 'moderators' });
      const up = await pm(b!, 'alice', 'chat', 'participant to moderator');
      assertError(await b!.waitFor(messageErrorFor(up), 10_000, 'the answer with allowpm=moderators'), 'forbidden', 'auth', 'a participant’s private message with allowpm=moderators');
      const down = await pm(a!, 'bob', 'chat', 'moderator to participant');
      const delivered = await b!.waitFor((el) => el.name === 'message' && el.attrs.id === down, 10_000, "the moderator's private message");
      assert.equal(delivered.attrs.type, 'chat', delivered.toString());
      await expectNothing(a!, (el) => el.attrs.id === none || el.attrs.id === up, 'a private message refused by allowpm', quietMs);
    });

    test('§7.6: nick change: unavailable with 303 and the new nick, then available under it (110 on the self copies); a taken nick → <conflict/> cancel', 45_000, async () => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      const since = [mark(a!), mark(b!)];
      await b!.send(xml('presence', { to: `${room}/bee` }));
      for (const [i, s] of [a!, b!].entries()) {
        const gone = await s.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, 'the unavailable presence of the old nick');
        const back = await s.waitFor(presenceOf(room, 'bee'), 10_000, 'the presence of the new nick');
        const self = s === b!;
        assert.ok(statusCodes(gone).includes(303), `status 303: ${gone.toString()}`);
        assert.equal(itemOf(gone)?.nick, 'bee', `the new nick in the item: ${gone.toString()}`);
        assert.equal(statusCodes(gone).includes(110), self, `110 only on the self copy: ${gone.toString()}`);
        assert.equal(statusCodes(back).includes(110), self, `110 only on the self copy: ${back.toString()}`);
        assert.equal(itemOf(back)?.role, 'participant', back.toString());
        assert.ok(seqOf(s, gone) > since[i]! && seqOf(s, gone) < seqOf(s, back), 'the unavailable presence comes before the new one');
      }
      await b!.send(xml('presence', { to: `${room}/alice` }));
      const conflict = await b!.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error' && fromRoom(el, room), 10_000, 'the refusal of the nick change');
      assertError(conflict, 'conflict', 'cancel', 'changing to the nick of another occupant');
      errorFrom(conflict, `${room}/alice`, 'nick change conflict');
      await nothingFrom([a!], room, (el) => el.name === 'presence', 'a presence caused by a refused nick change');
      const m = await say(b!, room, 'renamed');
      assert.ok(sameJid(m.attrs.from, `${room}/bee`), `groupchat now comes from the new nick: ${m.toString()}`);

    });

    test('§7.7: a status change is broadcast to every occupant with show, status and the room’s own muc#user item (a forged one is not reflected)', 30_000, async () => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      // §17.2 rule 6: muc#user information from an occupant is never reflected (here a forged owner item and 110).
      const forged = xml('x', { xmlns: MUC_NS.user }, xml('item', { affiliation: 'owner', role: 'moderator' }), xml('status', { code: '110' }));
      await b!.send(xml('presence', { to: `${room}/bob` }, xml('show', {}, 'xa'), xml('status', {}, 'gone where the goblins go'), forged));
      for (const s of [a!, b!]) {
        const p = await s.waitFor((el) => presenceOf(room, 'bob')(el) && el.getChildText('show') === 'xa', 10_000, "bob's new status");
        assert.equal(p.getChildText('status'), 'gone where the goblins go', p.toString());
        const it = assertRoleAndAffiliation(p, 'status change');
        assert.equal(`${it.affiliation}/${it.role}`, 'none/participant', `the room's item, not the forged one: ${p.toString()}`);
        assert.equal(statusCodes(p).includes(110), s === b!, `110 only on the self copy: ${p.toString()}`);
      }
    });

    test('§7.14: exiting: unavailable (role none) to all, the self copy with 110; a temporary room disappears with its last occupant', 30_000, async (t) => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']], { persistentroom: false });
      const self = await leave(b!, room, 'bob', 'goodbye');
      assert.equal(itemOf(self)?.role, 'none', `role none on exit: ${self.toString()}`);
      const seen = await a!.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, "bob's exit");
      const it = assertRoleAndAffiliation(seen, 'exit presence');
      assert.equal(it.role, 'none');
      assert.ok(!statusCodes(seen).includes(110), seen.toString());
      // §7.14 / §17.2 rule 7: the service SHOULD let the exit status through.
      t.diagnostic(`exit status passed on to the others: ${seen.getChildText('status') === 'goodbye' ? 'yes' : `no (${seen.toString()})`} (SHOULD)`);
      await leave(a!, room, 'alice');
      await waitUntil(async () => (await discoInfo(c!, room)).attrs.type === 'error', 5_000, `the temporary room ${room} to disappear`);
      assertError(await discoInfo(c!, room), 'item-not-found', 'cancel', 'disco#info of a temporary room after its last occupant left');
    });

    test('§17.2 rule 5: unavailable presence from a non-occupant to an occupant JID is silently ignored (nobody leaves, no error)', 30_000, async () => {
      const [a, b, d] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      await d!.send(xml('presence', { to: `${room}/alice`, type: 'unavailable' }));
      await d!.send(xml('presence', { to: `${room}/bob`, type: 'unavailable' }, xml('status', {}, 'bye')));
      await nothingFrom([a!, b!], room, (el) => el.name === 'presence', 'a presence caused by a non-occupant’s unavailable');
      await expectNothing(d!, (el) => fromRoom(el, room), 'an answer to an ignored unavailable presence', quietMs);
      await say(a!, room, 'alice is still here');
      await say(b!, room, 'bob too');
    });

    test('§7.8.2: mediated invitation from the room (invite from, reason, password); decline forwarded to the inviter; members-only without allowinvites → a member’s invite gets <forbidden/> auth', 45_000, async () => {
      const [a, b, c, d] = await Promise.all([online(nodeA, { presence: true }), online(nodeB, { presence: true }), online(nodeA, { presence: true }), online(nodeB, { presence: true })]);
      const { room } = await setupRoom([a!, 'alice'], [], { passwordprotectedroom: true, roomsecret: 'cauldronburn' });
      const id = uniqueName('inv');
      await a!.send(xml('message', { to: room, id }, xml('x', { xmlns: MUC_NS.user }, xml('invite', { to: b!.bare }, xml('reason', {}, 'Join us')))));
      const inv = await b!.waitFor((el) => el.name === 'message' && sameJid(el.attrs.from, room) && (mucUser(el)?.invites.length ?? 0) > 0, 10_000, 'the invitation');
      const u = mucUser(inv)!;
      const from = u.invites[0]!.from ?? '';
      assert.ok([a!.bare, a!.jid, `${room}/alice`].some((j) => sameJid(j, from)), `invite from must be the inviter's bare, full or occupant JID, got '${from}': ${inv.toString()}`);
      assert.equal(u.invites[0]!.reason, 'Join us', inv.toString());
      assert.equal(u.password, 'cauldronburn', `the room adds the password (§7.8.2 SHOULD): ${inv.toString()}`);
      assert.notEqual(inv.attrs.type, 'error');

      await b!.send(xml('message', { to: room }, xml('x', { xmlns: MUC_NS.user }, xml('decline', { to: a!.bare }, xml('reason', {}, 'Too busy')))));
      const dec = await a!.waitFor((el) => el.name === 'message' && sameJid(el.attrs.from, room) && (mucUser(el)?.declines.length ?? 0) > 0, 10_000, 'the decline');
      const dd = mucUser(dec)!.declines[0]!;
      assert.equal(bareJid(dd.from ?? ''), b!.bare, `decline from the invitee: ${dec.toString()}`);
      assert.equal(dd.reason, 'Too busy', dec.toString());

      const closed = await setupRoom([a!, 'alice'], [], { membersonly: true, allowinvites: false });
      await adminSetOk(a!, closed.room, { jid: c!.bare, affiliation: 'member' });
      await join(c!, closed.room, 'carol');
      const bad = uniqueName('inv');
      await c!.send(xml('message', { to: closed.room, id: bad }, xml('x', { xmlns: MUC_NS.user }, xml('invite', { to: d!.bare }))));
      const refused = await c!.waitFor(messageErrorFor(bad), 10_000, 'the refusal of a member’s invitation');
      assertError(refused, 'forbidden', 'auth', 'a member inviting into a members-only room without allowinvites (§9.5)');
      await expectNothing(d!, (el) => el.name === 'message' && sameJid(el.attrs.from, closed.room), 'an invitation that was refused', quietMs);
    });

    // --- moderation ----------------------------------------------------------------------

    test('§8.2: kick: 307+110 to the kicked, the moderator’s result before 307 to the others; a participant → <forbidden/> auth; a moderator kicking an admin or owner → <not-allowed/> cancel', 60_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']]);
      const res = await kick(a!, room, 'bob', 'Avaunt');
      assertResult(res, 'kick of a participant by the owner');
      const out = await b!.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, 'the kicked occupant’s unavailable presence');
      assert.ok(statusCodes(out).includes(307) && statusCodes(out).includes(110), `the kicked occupant gets 307 and 110: ${out.toString()}`);
      assert.equal(itemOf(out)?.role, 'none', out.toString());
      for (const s of [a!, c!]) {
        const p = await s.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, 'the kick announcement');
        assert.ok(statusCodes(p).includes(307), `307 to the remaining occupants: ${p.toString()}`);
        assert.ok(!statusCodes(p).includes(110), p.toString());
        assert.equal(itemOf(p)?.role, 'none', p.toString());
        if (s === a!) assert.ok(seqOf(a!, res) < seqOf(a!, p), '§8.2: the moderator is informed of success before the remaining occupants are');
      }
      const gone = await sendGroupchat(b!, room, 'am I still here?');
      assertError(await b!.waitFor(messageErrorFor(gone), 10_000, 'the answer to a kicked user’s groupchat'), 'not-acceptable', 'modify', 'groupchat from a kicked (no longer an occupant) user');
      await join(b!, room, 'bob'); // a kick is not a ban
      await a!.waitFor(presenceOf(room, 'bob'), 10_000, "bob's return");
      await c!.waitFor(presenceOf(room, 'bob'), 10_000, "bob's return");

      assertError(await kick(c!, room, 'bob'), 'forbidden', 'auth', 'a participant kicking (§8)');
      await adminSetOk(a!, room, { nick: 'carol', role: 'moderator' });
      const promoted = await a!.waitFor((el) => presenceOf(room, 'carol')(el) && itemOf(el)?.role === 'moderator', 10_000, 'carol as moderator');
      assert.equal(itemOf(promoted)?.affiliation, 'none', promoted.toString());
      assertError(await kick(c!, room, 'alice'), 'not-allowed', 'cancel', 'a moderator without affiliation kicking the owner');
      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'admin' });
      await a!.waitFor((el) => presenceOf(room, 'bob')(el) && itemOf(el)?.affiliation === 'admin', 10_000, 'bob as admin');
      assertError(await kick(c!, room, 'bob'), 'not-allowed', 'cancel', 'a moderator without affiliation kicking an admin');
      assertError(await kick(b!, room, 'alice'), 'not-allowed', 'cancel', 'an admin kicking the owner');
      await nothingFrom([a!, b!, c!], room, (el) => el.name === 'presence' && el.attrs.type === 'unavailable', 'an occupant removed by a refused kick');
    });

    test('§9.1/§9.2: ban: 301 to the banned and to the others; re-entry → <forbidden/> auth; ban list; self-ban → <conflict/> cancel; an admin banning the owner → <not-allowed/> cancel; a participant → <forbidden/> auth', 60_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']]);
      assertError(await adminSet(c!, room, { jid: `${uniqueName('x')}@${srv().domain}`, affiliation: 'outcast' }), 'forbidden', 'auth', 'a participant banning (§9)');
      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'outcast', reason: 'Treason' });
      const out = await b!.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, "the banned occupant's unavailable presence");
      assert.ok(statusCodes(out).includes(301), `status 301: ${out.toString()}`);
      assert.equal(`${itemOf(out)?.affiliation}/${itemOf(out)?.role}`, 'outcast/none', out.toString());
      for (const s of [a!, c!]) {
        const p = await s.waitFor(presenceOf(room, 'bob', 'unavailable'), 10_000, 'the ban announcement');
        assert.ok(statusCodes(p).includes(301), `301 to the remaining occupants: ${p.toString()}`);
        assert.equal(`${itemOf(p)?.affiliation}/${itemOf(p)?.role}`, 'outcast/none', p.toString());
      }
      const again = await joinError(b!, room, 'bob');
      assertError(again, 'forbidden', 'auth', 'a banned user entering (§7.2.8)');
      errorFrom(again, `${room}/bob`, 'banned');
      const list = await adminGet(a!, room, { affiliation: 'outcast' });
      assertResult(list.stanza, 'ban list request');
      const entry = list.items.find((i) => sameJid(i.jid, b!.bare));
      assert.ok(entry, `the banned bare JID is on the ban list: ${list.stanza.toString()}`);
      assert.equal(entry.affiliation, 'outcast');
      assert.equal(entry.role, undefined, `an affiliation list item carries no role (§17.3 rule 6): ${list.stanza.toString()}`);

      assertError(await adminSet(a!, room, { jid: a!.bare, affiliation: 'outcast' }), 'conflict', 'cancel', 'the owner banning itself');
      await adminSetOk(a!, room, { jid: c!.bare, affiliation: 'admin' });
      assertError(await adminSet(c!, room, { jid: a!.bare, affiliation: 'outcast' }), 'not-allowed', 'cancel', 'an admin banning the owner');
      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'none' });
      await join(b!, room, 'bob');
    });

    test('§8.3/§8.4/§8.5: moderated room: a visitor’s groupchat → <forbidden/> auth; voice granted (participant) and revoked (visitor) with presence to all; the voice list; a visitor granting voice → <forbidden/> auth', 45_000, async () => {
      const [a, b] = await users(2);
      const { room, joins } = await setupRoom([a!, 'alice'], [[b!, 'bob']], { moderatedroom: true });
      assert.equal(joins[1]?.item?.role, 'visitor', `a non-affiliated user enters a moderated room as visitor (§5.1.2): ${describePresence(joins[1]!.self)}`);
      const muted = await sendGroupchat(b!, room, 'may I speak?');
      assertError(await b!.waitFor(messageErrorFor(muted), 10_000, 'the refusal of a visitor’s groupchat'), 'forbidden', 'auth', 'groupchat from a visitor (§7.4)');
      await nothingFrom([a!], room, reflectionOf(room, muted), "a visitor's message");
      assertError(await adminSet(b!, room, { nick: 'bob', role: 'participant' }), 'forbidden', 'auth', 'a visitor granting itself voice');

      await adminSetOk(a!, room, { nick: 'bob', role: 'participant' });
      for (const s of [a!, b!]) await s.waitFor((el) => presenceOf(room, 'bob')(el) && itemOf(el)?.role === 'participant', 10_000, 'bob with voice');
      await say(b!, room, 'thank you');
      const voice = await adminGet(a!, room, { role: 'participant' });
      assertResult(voice.stanza, 'voice list request');
      const entry = voice.items.find((i) => i.nick === 'bob');
      assert.ok(entry, `bob is on the voice list: ${voice.stanza.toString()}`);
      assert.equal(entry.role, 'participant');
      assert.ok(entry.affiliation !== undefined, `a role list item has the affiliation (§17.3 rule 5): ${voice.stanza.toString()}`);
      assert.equal(entry.jid, b!.jid, `a role list item has the full JID (§17.3 rule 5): ${voice.stanza.toString()}`);

      await adminSetOk(a!, room, { nick: 'bob', role: 'visitor' });
      for (const s of [a!, b!]) await s.waitFor((el) => presenceOf(room, 'bob')(el) && itemOf(el)?.role === 'visitor', 10_000, 'bob without voice');
      const again = await sendGroupchat(b!, room, 'still there?');
      assertError(await b!.waitFor(messageErrorFor(again), 10_000, 'the refusal after revoking voice'), 'forbidden', 'auth', 'groupchat after voice was revoked');
    });

    test('§9.3/§9.5/§10.3/§10.6: grant member/admin/owner with presence to all; member and owner lists; admin → owner or admin list → <forbidden/> auth; the only owner stepping down → <conflict/> cancel; demoting an owner’s or admin’s role → <not-allowed/> cancel; role+affiliation or neither → <bad-request/> modify', 60_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']]);
      const change = async (nick: string, pred: (it: MucItem) => boolean, what: string): Promise<void> => {
        for (const s of [a!, b!, c!]) {
          const p = await s.waitFor((el) => presenceOf(room, nick)(el) && pred(itemOf(el) ?? {}), 10_000, what);
          assertRoleAndAffiliation(p, what);
        }
      };
      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'member' });
      await change('bob', (it) => it.affiliation === 'member' && it.role === 'participant', 'bob as member');
      const members = await adminGet(a!, room, { affiliation: 'member' });
      assertResult(members.stanza, 'member list request');
      // Items carry the bare JID and the affiliation (§9.5, §17.3 rule 6). (Whether they may carry the role is contradictory:
      // §9.5 says MAY for members in the room, §17.3 rule 6 MUST NOT; not checked.)
      assert.deepEqual(members.items.map((i) => `${i.jid}/${i.affiliation}`), [`${b!.bare}/member`], `member list: ${members.stanza.toString()}`);

      await adminSetOk(a!, room, { jid: c!.bare, affiliation: 'admin' });
      await change('carol', (it) => it.affiliation === 'admin' && it.role === 'moderator', 'carol as admin (moderator)');
      assertError(await adminSet(c!, room, { jid: b!.bare, affiliation: 'owner' }), 'forbidden', 'auth', 'an admin granting owner (§10.3)');
      assertError(await adminSet(c!, room, { jid: b!.bare, affiliation: 'admin' }), 'forbidden', 'auth', 'an admin modifying the admin list (§10.8)');
      assertError(await adminSet(a!, room, { jid: a!.bare, affiliation: 'admin' }), 'conflict', 'cancel', 'the only owner revoking its own ownership (§10.4)');
      assertError(await adminSet(c!, room, { nick: 'alice', role: 'participant' }), 'not-allowed', 'cancel', 'an admin revoking the owner’s moderator status (§9.7)');
      assertError(await adminSet(a!, room, { nick: 'carol', role: 'visitor' }), 'not-allowed', 'cancel', 'revoking the voice of an admin (§8.4: not by anyone)');
      assertError(await adminSet(a!, room, { nick: 'bob', jid: b!.bare, role: 'participant', affiliation: 'member' }), 'bad-request', 'modify', 'an item with both role and affiliation (§17.3 rule 4)');
      assertError(await adminSet(a!, room, { nick: 'bob' }), 'bad-request', 'modify', 'an item with neither role nor affiliation');

      await adminSetOk(a!, room, { jid: b!.bare, affiliation: 'owner' });
      await change('bob', (it) => it.affiliation === 'owner' && it.role === 'moderator', 'bob as owner');
      const owners = await adminGet(a!, room, { affiliation: 'owner' });
      assertResult(owners.stanza, 'owner list request');
      assert.deepEqual(owners.items.map((i) => `${i.jid}/${i.affiliation}`).sort(), [`${a!.bare}/owner`, `${b!.bare}/owner`].sort(), owners.stanza.toString());
      const admins = await adminGet(a!, room, { affiliation: 'admin' });
      assert.deepEqual(admins.items.map((i) => `${i.jid}/${i.affiliation}`), [`${c!.bare}/admin`], admins.stanza.toString());
    });

    test('§10.9: destroy: one unavailable per occupant with <destroy jid><reason/></destroy>, item none/none; the room is gone; a non-owner → <forbidden/> auth', 45_000, async (t) => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']], { persistentroom: true });
      const alt = `${uniqueName('alt')}@${service()}`;
      assertError(await destroyRoom(b!, room, { jid: alt, reason: 'mine now' }), 'forbidden', 'auth', 'a participant destroying the room');
      await nothingFrom([a!, b!, c!], room, (el) => el.name === 'presence', 'a presence after a refused destroy');
      const marks = [mark(a!), mark(b!), mark(c!)];
      assertResult(await destroyRoom(a!, room, { jid: alt, reason: 'Macbeth doth come.' }), 'destroy by the owner');
      for (const [i, [s, nick]] of ([[a!, 'alice'], [b!, 'bob'], [c!, 'carol']] as const).entries()) {
        const p = await s.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && fromRoom(el, room) && mucUser(el)?.destroy !== undefined, 10_000, 'the destroy presence');
        assert.ok(sameJid(p.attrs.from, `${room}/${nick}`), `each occupant is removed from its own occupant JID: ${p.toString()}`);
        const u = mucUser(p)!;
        assert.equal(`${u.items[0]?.affiliation}/${u.items[0]?.role}`, 'none/none', p.toString());
        assert.ok(sameJid(u.destroy?.jid, alt), `the alternate venue: ${p.toString()}`);
        assert.equal(u.destroy?.reason, 'Macbeth doth come.', p.toString());
        await sleep(200);
        const others = receivedSince(s, marks[i]!, (el) => el.name === 'presence' && el.attrs.type === 'unavailable' && fromRoom(el, room) && el !== p);
        if (others.length) t.diagnostic(`${nick} also got ${others.length} unavailable presence(s) of other occupants (§10.9: SHOULD NOT): ${others.map(describePresence).join(' | ')}`);
      }
      assertError(await discoInfo(b!, room), 'item-not-found', 'cancel', 'disco#info of a destroyed room');
    });

    // --- sessions that end ------------------------------------------------------------------

    test('§7.14 + RFC 6121 §4.6: an occupant that logs out, or whose TCP connection breaks, leaves the room (unavailable, role none, to the others)', 45_000, async () => {
      const [a, b, c] = await users(3);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob'], [c!, 'carol']]);
      await b!.stop();
      const p1 = await a!.waitFor(presenceOf(room, 'bob', 'unavailable'), 15_000, 'bob leaving by logging out');
      assert.equal(itemOf(p1)?.role, 'none', p1.toString());
      breakConnection(c!);
      const p2 = await a!.waitFor(presenceOf(room, 'carol', 'unavailable'), 20_000, "carol leaving by a broken connection");
      assert.equal(itemOf(p2)?.role, 'none', p2.toString());
      const j = await join(await online(nodeB), room, 'dave');
      assert.deepEqual(j.others.map(nickOf), ['alice'], 'only alice is left');
    });

    test('cluster: kill -9 of an occupant’s c2s node → the others see it leave after the node TTL', 90_000, async (t) => {
      const a = await online(0);
      const b = await online(1);
      const { room } = await setupRoom([a, 'alice'], [[b, 'bob']]);
      const killedAt = Date.now();
      await cluster().killNode(1);
      try {
        const p = await a.waitFor(presenceOf(room, 'bob', 'unavailable'), NODE_TTL_MS + 20_000, "bob's unavailable presence after his c2s node was killed");
        t.diagnostic(`occupant's c2s node killed: the room announced its exit after ${Date.now() - killedAt} ms (node TTL ${NODE_TTL_MS} ms)`);
        assert.equal(itemOf(p)?.role, 'none', p.toString());
      } finally {
        await cluster().restartNode(1);
      }
    }, mode === 'cluster' ? null : 'cluster only: needs a c2s node to kill');

    // --- persistence (last: restarts the server) ------------------------------------------

    test('restart: a persistent room keeps its configuration, affiliations and subject; a temporary room is gone', 150_000, async (t) => {
      const [a, b] = await users(2);
      const kept = await setupRoom([a!, 'alice'], [[b!, 'bob']], {
        roomname: 'Kept',
        roomdesc: 'Survives restarts',
        persistentroom: true,
        moderatedroom: true,
        whois: 'anyone',
      });
      await adminSetOk(a!, kept.room, { jid: b!.bare, affiliation: 'admin' });
      await setSubject(a!, kept.room, 'Kept subject');
      const temp = await setupRoom([a!, 'alice'], [], { persistentroom: false });
      const infoBefore = await roomInfo(b!, kept.room);
      const started = Date.now();
      await srv().restart();
      t.diagnostic(`${mode} restarted in ${Date.now() - started} ms`);
      await Promise.all(sessions.splice(0).map((s) => s.stop()));

      const c = await online(nodeB);
      const info = await roomInfo(c, kept.room);
      assert.equal(info.identities.find((i) => i.category === 'conference')?.name, 'Kept');
      assert.deepEqual([...info.features].sort(), [...infoBefore.features].sort(), 'disco#info features after the restart');
      assert.equal(fieldValue(roomInfoForm(info)!, 'muc#roominfo_description'), 'Survives restarts');
      assertError(await discoInfo(c, temp.room), 'item-not-found', 'cancel', 'a temporary room after a restart');
      const j = await join(c, kept.room, 'carol');
      assert.equal(j.subject.getChildText('subject'), 'Kept subject', j.subject.toString());
      assert.equal(j.item?.role, 'visitor', 'still moderated: a new user enters as visitor');
      assert.ok(j.codes.includes(100), 'still non-anonymous');
      // The owner and the admin are who they were: asked of the room by a new session of the owner.
      const owner = await loginAs(a!.bare, nodeA);
      const ownerJoin = await join(owner, kept.room, 'alice');
      assert.equal(`${ownerJoin.item?.affiliation}/${ownerJoin.item?.role}`, 'owner/moderator', describePresence(ownerJoin.self));
      const admins = await adminGet(owner, kept.room, { affiliation: 'admin' });
      assert.deepEqual(admins.items.map((i) => i.jid), [b!.bare], admins.stanza.toString());
    }, mode === 'embedded' && externalServer() ? 'HYPHAE_E2E_EXTERNAL: the external server cannot be restarted from here' : null);
  });
}

/** The service limits of the limits suite (`muc` config override). */
const LIMITS = { maxRoomsPerUser: 2, maxMessageBytes: 1024, messagesPerSecond: 2, maxOccupants: 3, defaultMaxUsers: 3 } as const;

function limitsSuite(mode: Mode): void {
  const skip = mucSkipReason(mode) ?? (mode === 'embedded' && externalServer() ? 'HYPHAE_E2E_EXTERNAL: the limits need a server started with a muc config override' : null);
  describe(`XEP-0045 service limits (${mode}; muc ${JSON.stringify(LIMITS)})`, () => {
    const { service, test, users, setupRoom, nothingFrom, errorFrom } = suiteContext(mode, skip, () =>
      mode === 'embedded'
        ? startEmbedded({ config: { muc: LIMITS } })
        : startCluster({ c2sNodes: 2, mucNodes: 2, config: { muc: { ...LIMITS, leaseTtlMs: LEASE_TTL_MS } } }),
    );

    test(`muc.maxRoomsPerUser=${LIMITS.maxRoomsPerUser}: one more room → <not-allowed/> cancel (§10.1.1); other users are not affected; destroying one frees a slot`, 45_000, async () => {
      const [a, b] = await users(2);
      const rooms: string[] = [];
      for (let i = 0; i < LIMITS.maxRoomsPerUser; i++) rooms.push((await setupRoom([a!, 'owner'], [], { persistentroom: true })).room);
      const extra = `${uniqueName('over')}@${service()}`;
      const refused = await joinError(a!, extra, 'owner');
      assertError(refused, 'not-allowed', 'cancel', `creating room ${LIMITS.maxRoomsPerUser + 1} of one user`);
      errorFrom(refused, `${extra}/owner`, 'room creation over the limit');
      assertError(await discoInfo(b!, extra), 'item-not-found', 'cancel', 'the refused room does not exist');
      await setupRoom([b!, 'bob'], []);
      // Entering an existing room is not creating one.
      await join(a!, (await setupRoom([b!, 'bob'], [])).room, 'visitor');
      assertResult(await destroyRoom(a!, rooms[0]!), 'destroying one of the rooms');
      await setupRoom([a!, 'owner'], []);
    });

    test(`muc.maxMessageBytes=${LIMITS.maxMessageBytes}: a larger groupchat or private message → <policy-violation/> modify, not delivered; a small one passes`, 45_000, async () => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      const big = 'x'.repeat(2 * LIMITS.maxMessageBytes);
      const id = await sendGroupchat(b!, room, big);
      assertError(await b!.waitFor(messageErrorFor(id), 10_000, 'the refusal of an oversized groupchat'), 'policy-violation', 'modify', `a groupchat of ${big.length} bytes`);
      const pm = uniqueName('pm');
      await b!.send(xml('message', { to: `${room}/alice`, type: 'chat', id: pm }, xml('body', {}, big)));
      assertError(await b!.waitFor(messageErrorFor(pm), 10_000, 'the refusal of an oversized private message'), 'policy-violation', 'modify', `a private message of ${big.length} bytes`);
      await nothingFrom([a!], room, (el) => el.attrs.id === id || el.attrs.id === pm, 'an oversized message');
      const ok = await sendGroupchat(b!, room, 'small');
      await a!.waitFor(reflectionOf(room, ok), 10_000, 'a small groupchat');
    });

    test(`muc.messagesPerSecond=${LIMITS.messagesPerSecond} (burst ${2 * LIMITS.messagesPerSecond}): a burst of 10 → the first ${2 * LIMITS.messagesPerSecond} reflected, later ones <resource-constraint/> wait, none lost; later the sender may speak again`, 45_000, async (t) => {
      const [a, b] = await users(2);
      const { room } = await setupRoom([a!, 'alice'], [[b!, 'bob']]);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await sendGroupchat(b!, room, `burst ${i}`));
      const outcome = await Promise.all(
        ids.map(async (id) => {
          const el = await b!.waitFor((e) => reflectionOf(room, id)(e) || messageErrorFor(id)(e), 15_000, `the reflection of or an error for ${id}`);
          return el.attrs.type === 'error' ? el : 'ok';
        }),
      );
      t.diagnostic(`burst of 10: ${outcome.map((o) => (o === 'ok' ? 'ok' : describeError(o))).join(', ')}`);
      const burst = 2 * LIMITS.messagesPerSecond;
      assert.deepEqual(outcome.slice(0, burst), Array(burst).fill('ok'), `the first ${burst} messages fit the burst`);
      const errors = outcome.filter((o): o is XmlElement => o !== 'ok');
      assert.ok(errors.length >= 1, 'at least one of 10 back-to-back messages exceeds the rate');
      for (const e of errors) assertError(e, 'resource-constraint', 'wait', 'a groupchat over the rate');
      const passed = ids.filter((_, i) => outcome[i] === 'ok');
      for (const id of passed) await a!.waitFor(reflectionOf(room, id), 10_000, `the reflection of ${id}`);
      const refused = new Set(ids.filter((_, i) => outcome[i] !== 'ok'));
      await nothingFrom([a!], room, (el) => refused.has(el.attrs.id ?? ''), 'a message refused by the rate limit');
      await sleep(2_500);
      await say(b!, room, 'after a pause');
    });

    test(`muc.maxOccupants=${LIMITS.maxOccupants} caps muc#roomconfig_maxusers: a larger value is refused or capped; the next non-affiliated user → <service-unavailable/> wait`, 45_000, async (t) => {
      const [a, b, c, d] = await users(4);
      const room = `${uniqueName('cap')}@${service()}`;
      await join(a!, room, 'alice');
      const res = await submitConfig(a!, room, { maxusers: 10 });
      if (res.attrs.type === 'error') {
        assertError(res, 'not-acceptable', 'modify', `maxusers=10 above muc.maxOccupants=${LIMITS.maxOccupants}`);
        assertResult(await submitInstant(a!, room), 'instant room after the refused configuration');
        t.diagnostic('maxusers above the cap: refused with <not-acceptable/>');
      } else {
        const v = fieldValue(await getConfig(a!, room), 'muc#roomconfig_maxusers');
        t.diagnostic(`maxusers above the cap: accepted, the form now says ${v}`);
        assert.ok(v !== undefined && /^\d+$/.test(v) && Number(v) <= LIMITS.maxOccupants, `maxusers=10 accepted: the form must show at most ${LIMITS.maxOccupants}, shows ${v}`);
      }
      await join(b!, room, 'bob');
      await join(c!, room, 'carol');
      const full = await joinError(d!, room, 'dave');
      assertError(full, 'service-unavailable', 'wait', `a ${LIMITS.maxOccupants + 1}th occupant`);
      errorFrom(full, `${room}/dave`, 'room full');
    });
  });
}

mucSuite('embedded');
limitsSuite('embedded');
mucSuite('cluster');
limitsSuite('cluster');
