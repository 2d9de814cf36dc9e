/**
 * The stream layer without sockets: an in-memory transport with RFC 7395
 * framing carries header → features → SASL → bind → stanzas, against the
 * real runtime, SASL mechanisms and embedded store, and a fake router.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import { addAccount, authenticate, createWorld, settle, PASSWORD, type World } from './test-world.js';
import { NS_FRAMING } from './memory-transport.js';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

function childNames(el: Element): string[] {
  return el.getChildElements().map((c) => `${c.name} ${String(c.attrs.xmlns)}`);
}

function streamError(el: Element): string | undefined {
  return el.name === 'stream:error' ? el.getChildElements()[0]?.name : undefined;
}

test('header, features, PLAIN, bind, then stanzas reach the router stamped with the full JID, in order', async () => {
  w = await createWorld();
  await addAccount(w.stores, 'alice');
  const { t, stream } = w.connect();
  t.open();
  const open = await t.next();
  assert.equal(open.name, 'open');
  assert.equal(open.attrs.xmlns, NS_FRAMING, 'the transport frames our header');
  assert.equal(open.attrs.from, 'example.org');
  assert.equal(open.attrs.version, '1.0');
  const features = await t.next();
  assert.deepEqual(childNames(features), [`mechanisms ${SASL}`], 'no STARTTLS on a transport that cannot');
  assert.deepEqual(features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText()), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
  t.receive(`<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')}</auth>`);
  assert.equal((await t.next()).name, 'success');
  assert.deepEqual(t.calls, ['restart'], 'the client opens a new stream after SASL (RFC 6120 §6.4.6)');
  t.open();
  assert.equal((await t.next()).name, 'open');
  const post = await t.next();
  assert.deepEqual(childNames(post), [
    'bind urn:ietf:params:xml:ns:xmpp-bind', 'session urn:ietf:params:xml:ns:xmpp-session',
  ]);
  t.receive(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>phone</resource></bind></iq>`);
  const bound = await t.next();
  assert.equal(bound.attrs.type, 'result');
  assert.equal(bound.getChild('bind')?.getChildText('jid'), 'alice@example.org/phone');
  assert.equal(stream.isBound, true);
  const entry = await w.stores.sessions.get('alice@example.org', 'phone');
  assert.equal(entry?.sessionId, stream.sessionId, 'the session is in the registry');
  for (let i = 0; i < 5; i++) {
    t.receive(`<message xmlns='jabber:client' to='bob@example.org' from='mallory@evil.example/x' id='m${i}'><body>${i}</body></message>`);
  }
  await settle();
  assert.deepEqual(w.router.routed.map((r) => r.stanza.attrs.id), ['m0', 'm1', 'm2', 'm3', 'm4']);
  for (const r of w.router.routed) {
    assert.equal(r.stanza.attrs.from, 'alice@example.org/phone', 'RFC 6120 §8.1.2.1: from is stamped');
    assert.equal(r.from, 'alice@example.org/phone');
    assert.equal(r.stanza.attrs.xmlns, undefined, 'the stream namespace is stripped');
  }
});

for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-1'] as const) {
  test(`${mechanism} login and a server-generated resource`, async () => {
    w = await createWorld();
    await addAccount(w.stores, 'carol');
    const { t } = w.connect();
    await authenticate(t, 'carol', mechanism);
    t.open();
    await t.next();
    await t.next();
    t.receive(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    const jid = (await t.next()).getChild('bind')?.getChildText('jid') ?? '';
    assert.match(jid, /^carol@example\.org\/hyphae-[0-9a-f]{12}$/);
  });
}

test('STARTTLS: required and alone before TLS, SASL refused, then proceed, upgrade and a new stream with PLAIN', async () => {
  w = await createWorld();
  const { t } = w.connect({ secure: false, startTls: true });
  t.open();
  await t.next();
  const features = await t.next();
  assert.deepEqual(childNames(features), ['starttls urn:ietf:params:xml:ns:xmpp-tls']);
  assert.ok(features.getChild('starttls')?.getChild('required'));
  t.receive(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>biwsbj1hLHI9eA==</auth>`);
  const refused = await t.next();
  assert.equal(refused.name, 'failure');
  assert.ok(refused.getChild('encryption-required'));
  t.receive(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
  assert.equal((await t.next()).name, 'proceed');
  assert.deepEqual(t.calls, ['startTls', 'restart']);
  t.open();
  await t.next();
  const after = await t.next();
  assert.deepEqual(childNames(after), [`mechanisms ${SASL}`]);
  assert.ok(after.getChild('mechanisms')?.getChildren('mechanism').some((m) => m.getText() === 'PLAIN'), 'PLAIN once encrypted');
  t.receive(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
  assert.equal(streamError(await t.next()), 'policy-violation', 'TLS is already in place');
});

test('stream header errors: framing, addressing, host, restart to another domain, version', async () => {
  w = await createWorld();
  const cases: Array<[string[], string]> = [
    [[`<open xmlns='jabber:client' to='example.org' version='1.0'/>`], 'invalid-namespace'],
    [[`<open xmlns='${NS_FRAMING}' version='1.0'/>`], 'improper-addressing'],
    [[`<open xmlns='${NS_FRAMING}' to='elsewhere.example' version='1.0'/>`], 'host-unknown'],
    [[`<open xmlns='${NS_FRAMING}' to='example.org'/>`], 'unsupported-version'],
    [[`<open xmlns='${NS_FRAMING}' to='example.org' version='2.0'/>`], 'unsupported-version'],
  ];
  for (const [input, condition] of cases) {
    const { t } = w.connect();
    for (const x of input) t.receive(x);
    const header = await t.next();
    assert.equal(header.name, 'open', 'a header precedes the error (RFC 6120 §4.9.1.2)');
    assert.equal(streamError(await t.next()), condition, input.join(''));
    assert.equal((await t.next()).name, 'close');
    assert.ok(t.closed);
  }
  await addAccount(w.stores, 'dave');
  const { t } = w.connect();
  await authenticate(t, 'dave', 'PLAIN');
  (w.rt.domains as Set<string>).add('other.example');
  t.open('other.example');
  assert.equal((await t.next()).attrs.from, 'example.org');
  assert.equal(streamError(await t.next()), 'not-authorized', "the 'to' must stay the same across restarts");
});

test('three failed authentications end the stream with policy-violation', async () => {
  w = await createWorld();
  await addAccount(w.stores, 'erin');
  const { t } = w.connect();
  t.open();
  await t.next();
  await t.next();
  for (let i = 0; i < 3; i++) {
    t.receive(`<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from('\0erin\0wrong').toString('base64')}</auth>`);
    const f = await t.next();
    assert.equal(f.name, 'failure');
    assert.ok(f.getChild('not-authorized'));
  }
  assert.equal(streamError(await t.next()), 'policy-violation');
});

test('a stanza before authentication and before bind ends the stream with not-authorized', async () => {
  w = await createWorld();
  const first = w.connect();
  first.t.open();
  first.t.drain();
  await settle();
  first.t.receive(`<message to='bob@example.org'><body>hi</body></message>`);
  assert.equal(streamError(await first.t.next()), 'not-authorized');
  await addAccount(w.stores, 'frank');
  const second = w.connect();
  await authenticate(second.t, 'frank', 'PLAIN');
  second.t.open();
  second.t.drain();
  await settle();
  second.t.receive(`<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
  const early = await second.t.next();
  assert.equal(early.attrs.type, 'error', 'legacy session before bind is out of order');
  assert.ok(early.getChild('error')?.getChild('not-allowed'));
  second.t.receive(`<presence/>`);
  assert.equal(streamError(await second.t.next()), 'not-authorized');
});

test('once bound: legacy session, a second bind, a bad namespace, an unknown nonza, a routing failure', async () => {
  w = await createWorld();
  const { t, stream } = await w.login('gina', 'desk');
  t.receive(`<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
  const session = await t.next();
  assert.deepEqual([session.attrs.type, session.attrs.id, session.attrs.from], ['result', 's', undefined]);
  t.receive(`<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
  assert.ok((await t.next()).getChild('error')?.getChild('not-allowed'));
  t.receive(`<iq type='get' id='q'/>`);
  assert.ok((await t.next()).getChild('error')?.getChild('bad-request'), 'validateIq: no payload');
  w.router.fail = true;
  t.receive(`<message to='bob@example.org' id='lost'><body>x</body></message>`);
  const err = await t.next();
  assert.equal(err.attrs.type, 'error');
  assert.equal(err.getChild('error')?.attrs.type, 'wait');
  assert.ok(err.getChild('error')?.getChild('internal-server-error'));
  assert.equal(stream.isBound, true, 'a backend failure fails the stanza, not the stream');
  t.receive(`<enable xmlns='urn:xmpp:sm:3'/>`);
  assert.equal(streamError(await t.next()), 'unsupported-stanza-type', 'no module takes it');
  const other = await w.login('gina', 'laptop');
  other.t.receive(`<message xmlns='jabber:server' to='bob@example.org'/>`);
  assert.equal(streamError(await other.t.next()), 'invalid-namespace');
});

test('the registry entry is removed when the connection drops', async () => {
  w = await createWorld();
  const { t } = await w.login('hank', 'r1');
  assert.ok(await w.stores.sessions.get('hank@example.org', 'r1'));
  t.drop();
  await settle();
  assert.equal(await w.stores.sessions.get('hank@example.org', 'r1'), null);
  assert.deepEqual(t.calls.slice(-1), ['destroy']);
  assert.equal(w.rt.sessions.size, 0);
  assert.equal(w.rt.connections.size, 0);
});
