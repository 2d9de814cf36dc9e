/** XEP-0280 against its examples: enabling at the edge, the iq errors, §6 eligibility, <received/> and <sent/> copies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import type { SessionEntry, SessionPatch } from '@hyphae/store';
import { ModuleRegistry, type ClientSession, type HookResult, type Routing, type SessionKey } from '@hyphae/module-api';
import { carbonsInstance, notCopied, CARBONS_FLAG, NS_CARBONS, NS_CARBONS_RULES, type CarbonsInstance, type Direction } from './index.js';

const ROMEO = 'romeo@montague.example';
const JULIET = 'juliet@capulet.example';
const el = (xml: string): Element => parse(xml) as Element;

function entry(resource: string, opts: { priority?: number; available?: boolean; carbons?: boolean } = {}): SessionEntry {
  const e: SessionEntry = { resource, sessionId: `s-${resource}`, node: 'n1', priority: opts.priority ?? 0, available: opts.available ?? true, boundAt: 1 };
  if (opts.carbons) e.flags = ['blocking', CARBONS_FLAG];
  return e;
}

/** Sessions by bare JID (the registry), and every copy handed to deliverToSession, in order. */
class World {
  readonly registry = new Map<string, SessionEntry[]>();
  readonly delivered: string[] = [];
  readonly copied: Direction[] = [];
  readonly warnings: string[] = [];
  /** Delays deliverToSession for a resource (ms), to check that copies keep their order. */
  readonly slow = new Map<string, number>();
  readonly routing = {
    sessions: async (bare: string) => this.registry.get(bare) ?? [],
    deliverToSession: async (stanza: Element, bare: string, resource: string) => {
      const ms = this.slow.get(resource);
      if (ms !== undefined) await new Promise((r) => setTimeout(r, ms));
      if (!(this.registry.get(bare) ?? []).some((s) => s.resource === resource)) return false;
      this.delivered.push(stanza.toString());
      return true;
    },
  } as Partial<Routing> as Routing;
  readonly updates: Array<[string, string, SessionPatch]> = [];
  readonly module: CarbonsInstance;
  readonly reg: ModuleRegistry;
  constructor() {
    this.module = carbonsInstance({
      sessions: {
        get: async (bare, resource) => (this.registry.get(bare) ?? []).find((s) => s.resource === resource) ?? null,
        update: async (bare, resource, _sid, patch) => {
          this.updates.push([bare, resource, patch]);
          return true;
        },
      },
      copied: (d) => void this.copied.push(d),
      warn: (_err, msg) => void this.warnings.push(msg),
    });
    this.reg = ModuleRegistry.of({ carbons: this.module });
  }

  out(session: ClientSession, xml: string): HookResult | Promise<HookResult> {
    const stanza = el(xml);
    stanza.attrs.from = session.jid.toString();
    return this.reg.runSync('stanza/out', { stanza, from: session.jid, session, routing: this.routing });
  }

  /** message/deliver as the router runs it: `to` the recipient's bare JID, `targets` among its sessions. */
  deliver(stanza: Element, from: string, to: string, targets: string[]): HookResult | Promise<HookResult> {
    const sessions = this.registry.get(to) ?? [];
    return this.reg.runSync('message/deliver', {
      stanza, from: parseJid(from), to: parseJid(to), routing: this.routing,
      sessions, targets: sessions.filter((s) => targets.includes(s.resource)),
    });
  }

  async iq(from: string, type: 'get' | 'set', name: string, to: string): Promise<string> {
    const iq = el(`<iq type='${type}' id='c1'><${name} xmlns='${NS_CARBONS}'/></iq>`);
    const route = this.reg.findIq('account', type, NS_CARBONS, name);
    if (!route) return 'no route';
    try {
      return String(await route.handle({ iq, payload: iq.getChildElements()[0] as Element, from: parseJid(from), to: parseJid(to), routing: this.routing }));
    } catch (err) {
      const e = err as { condition?: string; type?: string };
      return `<${e.condition}/> ${e.type}`;
    }
  }
}

interface FakeSession extends ClientSession {
  written: string[];
  flags: Set<string>;
  failFlags: boolean;
}

function session(full: string): FakeSession {
  const state = new Map<SessionKey<unknown>, unknown>();
  const s: FakeSession = {
    id: full, jid: parseJid(full), remoteAddress: '127.0.0.1', lastReceivedAt: 0, written: [], flags: new Set(), failFlags: false,
    get: <T>(k: SessionKey<T>) => state.get(k) as T | undefined,
    set: <T>(k: SessionKey<T>, v: T | undefined) => void (v === undefined ? state.delete(k) : state.set(k, v)),
    write: (data) => void s.written.push(String(data)),
    setFlag: async (flag, on) => {
      if (s.failFlags) throw new Error('registry down');
      if (on) s.flags.add(flag);
      else s.flags.delete(flag);
    },
    close: () => undefined,
  };
  return s;
}

test('§3: the server advertises carbons and the §6 rules; accounts advertise nothing', () => {
  const w = new World();
  assert.deepEqual(w.reg.features('server'), [NS_CARBONS, NS_CARBONS_RULES]);
  assert.deepEqual(w.reg.features('account'), []);
});

test('§4/§5 at the edge: enable and disable set the session flag and answer a result; repeated requests are results too (§10.1)', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  assert.equal(await w.out(garden, `<iq type='set' id='enable1'><enable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
  assert.deepEqual([...garden.flags], [CARBONS_FLAG]);
  assert.deepEqual(garden.written, [`<iq to="${ROMEO}/garden" id="enable1" type="result"/>`]);
  assert.equal(await w.out(garden, `<iq type='set' id='enable2' to='${ROMEO}'><enable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
  assert.equal(garden.written[1], `<iq to="${ROMEO}/garden" from="${ROMEO}" id="enable2" type="result"/>`);
  for (const id of ['disable1', 'disable2']) {
    assert.equal(await w.out(garden, `<iq type='set' id='${id}'><disable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
    assert.equal(garden.written.at(-1), `<iq to="${ROMEO}/garden" id="${id}" type="result"/>`);
  }
  assert.deepEqual([...garden.flags], []);
});

test('the edge leaves to the router: another JID, a get, other payloads; a stanza it does not take costs no promise', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  for (const xml of [
    `<iq type='set' id='x' to='${JULIET}'><enable xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='set' id='x' to='${ROMEO}/home'><enable xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='get' id='x'><enable xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='set' id='x'><private xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='set' id='x'><query xmlns='jabber:iq:private'/></iq>`,
    `<presence/>`,
  ]) {
    assert.equal(w.out(garden, xml), undefined, xml);
  }
  assert.deepEqual(garden.written, []);
  assert.deepEqual([...garden.flags], []);
});

test('a registry failure while enabling is answered <internal-server-error/> of type wait', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  garden.failFlags = true;
  assert.equal(await w.out(garden, `<iq type='set' id='e'><enable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
  const answer = el(garden.written[0] ?? '');
  assert.equal(answer.attrs.type, 'error');
  assert.equal(answer.getChild('error')?.attrs.type, 'wait');
  assert.ok(answer.getChild('error')?.getChild('internal-server-error'), answer.toString());
  assert.deepEqual(w.warnings, ['could not record the carbons flag']);
});

test('§4.1/§5.1 iq routes: another account or a remote client <not-allowed/>; a get <bad-request/>', async () => {
  const w = new World();
  assert.equal(await w.iq(`${ROMEO}/garden`, 'set', 'enable', JULIET), '<not-allowed/> cancel');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'set', 'disable', JULIET), '<not-allowed/> cancel');
  assert.equal(await w.iq('iago@remote.example/x', 'set', 'enable', ROMEO), '<not-allowed/> cancel');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'get', 'enable', ROMEO), '<bad-request/> modify');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'get', 'disable', ROMEO), '<bad-request/> modify');
  assert.deepEqual(w.updates, []);
});

test('an own request that reaches the router updates the registry entry, keeping the other flags', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home')]);
  assert.equal(await w.iq(`${ROMEO}/home`, 'set', 'enable', ROMEO), 'null');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'set', 'disable', ROMEO), 'null');
  assert.deepEqual(w.updates, [[ROMEO, 'home', { flags: [CARBONS_FLAG] }], [ROMEO, 'garden', { flags: ['blocking'] }]]);
  assert.equal(await w.iq(`${ROMEO}/gone`, 'set', 'enable', ROMEO), '<item-not-found/> cancel');
});

test('§6 eligibility', () => {
  const cases: Array<[string, Direction, boolean, string | null]> = [
    ["<message type='chat'><body>hi</body></message>", 'received', true, null],
    ["<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>", 'received', true, null],
    ['<message><body>hi</body></message>', 'received', true, null],
    ["<message type='normal'><body>hi</body></message>", 'sent', true, null],
    ["<message><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", 'received', true, null],
    ["<message><received xmlns='urn:xmpp:receipts' id='m1'/></message>", 'received', true, null],
    ["<message><displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>", 'sent', true, null],
    ["<message><x xmlns='jabber:x:conference' jid='room@muc.example'/></message>", 'received', true, null],
    ["<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b.c'/></x></message>", 'received', false, null],
    ["<message><x xmlns='urn:xmpp:other'/></message>", 'received', true, 'not-im'],
    ["<message type='groupchat'><body>hi</body></message>", 'received', true, 'type'],
    ["<message type='headline'><body>hi</body></message>", 'received', true, 'type'],
    ["<message type='error'><body>hi</body></message>", 'received', false, 'type'],
    [`<message type='chat'><body>hi</body><private xmlns='${NS_CARBONS}'/></message>`, 'sent', true, 'private'],
    ["<message type='chat'><body>hi</body><no-copy xmlns='urn:xmpp:hints'/></message>", 'received', true, 'no-copy'],
    [`<message type='chat'><sent xmlns='${NS_CARBONS}'/></message>`, 'received', false, 'carbon'],
    [`<message><received xmlns='${NS_CARBONS}'/></message>`, 'received', false, 'carbon'],
    // A private message from an occupant is not copied as it comes in; the user's own to an occupant is (§6).
    ["<message type='chat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", 'received', true, 'muc-pm'],
    ["<message type='chat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", 'sent', true, null],
    ["<message type='chat'><body>hi</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>", 'received', false, null],
  ];
  for (const [xml, direction, full, why] of cases) assert.equal(notCopied(el(xml), direction, full), why, `${direction} ${xml}`);
});

test('§7: a recipient with one session costs the hook a length check; so does one whose every session gets the message', () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true })]);
  const untouchable = new Proxy({}, { get: () => assert.fail('the hook looked at the stanza') }) as Element;
  assert.equal(w.deliver(untouchable, `${JULIET}/balcony`, ROMEO, ['garden']), undefined);
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]);
  assert.equal(w.deliver(untouchable, `${JULIET}/balcony`, ROMEO, ['garden', 'home']), undefined);
});

test('§7: flagged resources that did not get the message get a <received/> copy — once, whatever the priorities', async () => {
  const w = new World();
  w.registry.set(ROMEO, [
    entry('garden', { priority: 5, carbons: true }), entry('home', { priority: 5 }),
    entry('phone', { priority: 1, carbons: true }), entry('tablet', { available: false, carbons: true }), entry('old', { priority: 1 }),
  ]);
  const m = el(`<message from='${JULIET}/balcony' to='${ROMEO}' type='chat'><body>What man art thou</body><thread>0e31</thread></message>`);
  assert.equal(w.deliver(m, `${JULIET}/balcony`, ROMEO, ['garden', 'home']), undefined);
  m.getChild('body')?.children.splice(0, 1, 'changed later'); // the copy was taken when the hook ran
  await w.module.settled();
  const inner = `<forwarded xmlns="urn:xmpp:forward:0"><message from="${JULIET}/balcony" to="${ROMEO}" type="chat" xmlns="jabber:client"><body>What man art thou</body><thread>0e31</thread></message></forwarded>`;
  assert.deepEqual(w.delivered, ['phone', 'tablet'].map((r) =>
    `<message from="${ROMEO}" to="${ROMEO}/${r}" type="chat"><received xmlns="${NS_CARBONS}">${inner}</received></message>`));
  assert.deepEqual(w.copied, ['received', 'received']);
});

test('§7 to a full JID: the other flagged resources get the copy, the addressed one the message only', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]);
  w.deliver(el(`<message from='${JULIET}/balcony' to='${ROMEO}/garden'><body>hi</body></message>`), `${JULIET}/balcony`, ROMEO, ['garden']);
  await w.module.settled();
  assert.equal(w.delivered.length, 1);
  assert.match(w.delivered[0] ?? '', new RegExp(`^<message from="${ROMEO}" to="${ROMEO}/home"><received `));
});

test('§9: a <private/> message is not copied and loses its <private/>; groupchat and MUC private messages are not copied', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]);
  const m = el(`<message to='${ROMEO}/garden' type='chat'><body>psst</body><private xmlns='${NS_CARBONS}'/></message>`);
  w.deliver(m, `${JULIET}/balcony`, ROMEO, ['garden']);
  assert.equal(m.toString(), `<message to="${ROMEO}/garden" type="chat"><body>psst</body></message>`);
  w.deliver(el(`<message type='groupchat'><body>all</body></message>`), 'room@muc.example/nick', ROMEO, ['garden']);
  w.deliver(el(`<message type='chat'><body>pm</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`), 'room@muc.example/nick', ROMEO, ['garden']);
  await w.module.settled();
  assert.deepEqual(w.delivered, []);
});

test('§8: the sender\'s other flagged resources get a <sent/> copy, whether or not the sender has carbons on', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('home'), entry('garden', { carbons: true }), entry('phone', { carbons: true })]);
  const home = session(`${ROMEO}/home`);
  // Synchronous: the copies leave off the message's path.
  assert.equal(w.out(home, `<message to='${JULIET}/balcony' type='chat'><body>Neither, fair saint</body></message>`), undefined);
  await w.module.settled();
  const inner = `<forwarded xmlns="urn:xmpp:forward:0"><message to="${JULIET}/balcony" type="chat" from="${ROMEO}/home" xmlns="jabber:client"><body>Neither, fair saint</body></message></forwarded>`;
  assert.deepEqual(w.delivered, ['garden', 'phone'].map((r) =>
    `<message from="${ROMEO}" to="${ROMEO}/${r}" type="chat"><sent xmlns="${NS_CARBONS}">${inner}</sent></message>`));
  // The sending resource itself never gets its own copy (§8), even with carbons on.
  w.delivered.length = 0;
  w.out(session(`${ROMEO}/garden`), `<message to='${JULIET}'><body>x</body></message>`);
  await w.module.settled();
  assert.deepEqual(w.delivered.map((x) => el(x).attrs.to), [`${ROMEO}/phone`]);
  assert.deepEqual(w.copied, ['sent', 'sent', 'sent']);
});

test('§8: no <sent/> copy at the edge for ineligible messages or messages to the own JID; message/deliver copies those once', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('home', { carbons: true }), entry('garden', { carbons: true }), entry('phone', { carbons: true })]);
  const home = session(`${ROMEO}/home`);
  for (const xml of [
    `<message to='${JULIET}' type='groupchat'><body>x</body></message>`,
    `<message to='${JULIET}'><body>x</body><private xmlns='${NS_CARBONS}'/></message>`,
    `<message to='${ROMEO}/garden' type='chat'><body>note to self</body></message>`,
    `<message type='chat'><body>no to</body></message>`,
    `<message to='not a jid@@' type='chat'><body>x</body></message>`,
  ]) w.out(home, xml);
  await w.module.settled();
  assert.deepEqual(w.delivered, []);
  // The router delivers the note to self to garden: phone gets one <sent/> copy, home (the sender) none.
  w.deliver(el(`<message from='${ROMEO}/home' to='${ROMEO}/garden' type='chat'><body>note to self</body></message>`), `${ROMEO}/home`, ROMEO, ['garden']);
  await w.module.settled();
  assert.equal(w.delivered.length, 1);
  assert.match(w.delivered[0] ?? '', new RegExp(`^<message from="${ROMEO}" to="${ROMEO}/phone" type="chat"><sent `));
});

test('copies to one user leave in the order made, even when a lookup is slow; a resource gone meanwhile is not counted', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true }), entry('phone', { carbons: true })]);
  w.slow.set('home', 30);
  for (let i = 1; i <= 3; i++) w.deliver(el(`<message type='chat'><body>${i}</body></message>`), `${JULIET}/b`, ROMEO, ['garden']);
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home', { carbons: true })]); // phone went away
  await w.module.settled();
  const order = w.delivered.map((x) => `${el(x).attrs.to?.toString().split('/')[1]}:${el(x).getChild('received')?.getChild('forwarded')?.getChild('message')?.getChildText('body')}`);
  assert.deepEqual(order, ['home:1', 'home:2', 'home:3']);
  assert.equal(w.copied.length, 3);
});
