/**
 * Modules at the edge: a hand-made module in a ModuleRegistry contributes
 * stream features, a pre-auth iq and nonzas, and its stanza/out and
 * session/bound/unbound hooks run where the stream says they do.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Element } from 'ltx';
import { iqResult, StanzaError } from '@hyphae/stanza';
import { rosterInstance } from '@hyphae/modules';
import { SessionKey, type ClientSession, type ModuleInstance, type SessionLifecycleEvent, type StreamContext } from '@hyphae/module-api';
import { addAccount, authenticate, createWorld, registryOf, settle, type World } from './test-world.js';

const SM = 'urn:xmpp:sm:3';
const REGISTER = 'jabber:iq:register';
let w: World | null = null;
afterEach(async () => {
  await w?.close();
  w = null;
});

function streamError(el: Element): string | undefined {
  return el.name === 'stream:error' ? el.getChildElements()[0]?.name : undefined;
}

const COUNT = new SessionKey<number>('test-count');

/** A module like XEP-0077's and XEP-0198's: features, a pre-auth iq, nonzas. */
function streamModule(seen: { iqs: Array<{ iq: string; domain: string; ip: string }> }): ModuleInstance {
  return {
    streamFeatures: [
      { stage: 'pre-auth', offer: () => new Element('register', { xmlns: 'http://jabber.org/features/iq-register' }) },
      { stage: 'post-auth', offer: () => new Element('sm', { xmlns: SM }) },
      { stage: 'post-auth', offer: () => null },
    ],
    preAuthIq: [{
      xmlns: REGISTER,
      name: 'query',
      async handle(iq: Element, stream: StreamContext) {
        seen.iqs.push({ iq: iq.toString(), domain: stream.domain, ip: stream.remoteAddress });
        if (iq.attrs.id === 'boom') throw new Error('accounts store down');
        return iqResult(iq, new Element('query', { xmlns: REGISTER }).c('username').up() as Element);
      },
    }],
    nonzas: [
      {
        stage: 'bound', name: 'enable', xmlns: SM,
        handle(_el, stream) {
          stream.session?.set(COUNT, 0);
          stream.write(new Element('enabled', { xmlns: SM }));
        },
      },
      {
        stage: 'bound', name: 'r', xmlns: SM,
        handle(_el, stream) {
          const n = (stream.session?.get(COUNT) ?? 0) + 1;
          stream.session?.set(COUNT, n);
          stream.write(new Element('a', { xmlns: SM, h: String(n) }));
        },
      },
      { stage: 'post-auth', name: 'hello', xmlns: 'urn:test', handle: (_el, stream) => stream.write('<hi xmlns="urn:test"/>') },
    ],
  };
}

test('a module offers stream features, answers a pre-auth iq and takes nonzas in their stage', async () => {
  const seen = { iqs: [] as Array<{ iq: string; domain: string; ip: string }> };
  w = await createWorld(registryOf(streamModule(seen)));
  await addAccount(w.stores, 'ivy');
  const { t } = w.connect();
  t.open();
  await t.next();
  const pre = await t.next();
  assert.deepEqual(pre.getChildElements().map((c) => c.name), ['mechanisms', 'register'], 'built-in first, then the modules');
  t.receive(`<iq type='get' id='r1' to='example.org' from='evil@x'><query xmlns='${REGISTER}'/></iq>`);
  const answer = await t.next();
  assert.deepEqual([answer.attrs.type, answer.attrs.id, answer.attrs.to], ['result', 'r1', undefined]);
  assert.equal(seen.iqs.length, 1);
  assert.doesNotMatch(seen.iqs[0]?.iq ?? '', /evil/, 'a client-supplied from is removed');
  assert.deepEqual([seen.iqs[0]?.domain, seen.iqs[0]?.ip], ['example.org', '192.0.2.7']);
  t.receive(`<iq type='get' to='example.org'><query xmlns='${REGISTER}'/></iq>`);
  assert.ok((await t.next()).getChild('error')?.getChild('bad-request'), 'validateIq first: no id');
  t.receive(`<iq type='set' id='boom'><query xmlns='${REGISTER}'/></iq>`);
  const failed = await t.next();
  assert.ok(failed.getChild('error')?.getChild('internal-server-error'));
  assert.equal(failed.getChild('error')?.attrs.type, 'wait');
  const metric = await w.metrics.registrations.get();
  assert.deepEqual(metric.values.map((v) => [v.labels.result, v.value]), [['ok', 1]]);
  // On to authentication: the post-auth feature comes with bind.
  t.receive(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0ivy\0pencil').toString('base64')}</auth>`);
  assert.equal((await t.next()).name, 'success');
  t.open();
  await t.next();
  const post = await t.next();
  assert.deepEqual(post.getChildElements().map((c) => c.name), ['bind', 'session', 'sm']);
  t.receive(`<enable xmlns='${SM}'/>`);
  assert.equal(streamError(await t.next()), 'not-authorized', 'a bound-stage nonza before bind is not taken');

  const b = w.connect();
  await authenticate(b.t, 'ivy', 'PLAIN');
  b.t.open();
  b.t.drain();
  await settle();
  b.t.receive(`<hello xmlns='urn:test'/>`);
  assert.equal((await b.t.next()).name, 'hi', 'a post-auth nonza');
  b.t.receive(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
  assert.equal((await b.t.next()).attrs.type, 'result');
  b.t.receive(`<enable xmlns='${SM}'/>`);
  b.t.receive(`<r xmlns='${SM}'/>`);
  b.t.receive(`<r xmlns='${SM}'/>`);
  assert.equal((await b.t.next()).name, 'enabled');
  assert.equal((await b.t.next()).attrs.h, '1');
  assert.equal((await b.t.next()).attrs.h, '2', 'per-session state kept by SessionKey');
  b.t.receive(`<a xmlns='${SM}' h='0'/>`);
  assert.equal(streamError(await b.t.next()), 'unsupported-stanza-type', 'a nonza no module takes');
});

test('before TLS where TLS is required, module features are not offered and pre-auth iqs are refused', async () => {
  const seen = { iqs: [] as Array<{ iq: string; domain: string; ip: string }> };
  w = await createWorld(registryOf(streamModule(seen)));
  const { t } = w.connect({ secure: false, startTls: true });
  t.open();
  await t.next();
  assert.deepEqual((await t.next()).getChildElements().map((c) => c.name), ['starttls']);
  t.receive(`<iq type='get' id='r1'><query xmlns='${REGISTER}'/></iq>`);
  assert.equal(streamError(await t.next()), 'not-authorized');
  assert.equal(seen.iqs.length, 0);
});

test('stanza/out sees the stamped stanza and can stop it; a failing hook answers internal-server-error; order is kept', async () => {
  const sessions: ClientSession[] = [];
  w = await createWorld(registryOf({
    hooks: {
      'stanza/out': async ({ stanza, from, session }) => {
        sessions.push(session);
        assert.equal(stanza.attrs.from, from.toString());
        const body = stanza.getChildText('body');
        if (body === 'slow') await new Promise((r) => setTimeout(r, 30));
        if (body === 'boom') throw new Error('hook bug');
        if (body === 'private') {
          session.write(new Element('message', { id: 'handled' }));
          return 'stop';
        }
        return undefined;
      },
    },
  }));
  const { t, stream } = await w.login('jack', 'pc');
  for (const body of ['slow', 'private', 'boom', 'plain']) t.receive(`<message to='kim@example.org' id='${body}' from='x@y'><body>${body}</body></message>`);
  const first = await t.next();
  assert.equal(first.attrs.id, 'handled');
  const error = await t.next();
  assert.equal(error.attrs.id, 'boom');
  assert.ok(error.getChild('error')?.getChild('internal-server-error'));
  await settle();
  assert.deepEqual(w.router.routed.map((r) => r.stanza.attrs.id), ['slow', 'plain'], 'stopped and failed ones are not routed; order kept');
  assert.equal(w.router.routed[0]?.stanza.attrs.from, 'jack@example.org/pc');
  assert.equal(sessions[0]?.id, stream.sessionId);
  assert.equal(sessions[0]?.jid.toString(), 'jack@example.org/pc');
  assert.equal(stream.isBound, true);
});

test('session/bound runs after the bind result, session/unbound when the session ends; failing hooks are only logged', async () => {
  const events: Array<[string, SessionLifecycleEvent]> = [];
  w = await createWorld(registryOf(
    {
      hooks: {
        'session/bound': (e) => { events.push(['bound', e]); throw new Error('first module broken'); },
        'session/unbound': (e) => { events.push(['unbound', e]); },
      },
    },
    { hooks: { 'session/bound': (e) => { events.push(['bound-2', e]); } } },
  ));
  const { t, stream } = await w.login('lea', 'tab');
  const sid = stream.sessionId;
  assert.deepEqual(events.map(([n]) => n), ['bound', 'bound-2'], 'one failing hook does not keep the next from running');
  assert.equal(events[0]?.[1].session.id, sid);
  assert.equal(events[0]?.[1].routing, w.router);
  t.receive(`<message to='kim@example.org' id='after'/>`);
  await settle();
  assert.equal(w.router.routed.length, 1, 'the stream goes on');
  t.drop();
  await settle();
  assert.deepEqual(events.map(([n]) => n), ['bound', 'bound-2', 'unbound']);
  assert.equal(events[2]?.[1].session.id, sid);
  assert.equal(events[2]?.[1].reason, 'closed');
});

test("a presence or roster query the user's actor could not handle is answered with an error, never left unanswered", async () => {
  w = await createWorld(registryOf(rosterInstance()));
  const world = w;
  const { t } = await world.login('lena', 'tab');
  // The actor's operation failed (a store timing out there): it answers 'error'.
  world.router.actorAnswer = async () => 'error';
  t.receive("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
  const iqErr = await t.next();
  assert.equal(iqErr.attrs.id, 'r1');
  assert.equal(iqErr.attrs.type, 'error');
  assert.equal(iqErr.getChild('error')?.attrs.type, 'wait');
  assert.ok(iqErr.getChild('error')?.getChild('internal-server-error'));
  t.receive('<presence/>');
  const presErr = await t.next();
  assert.equal(presErr.name, 'presence');
  assert.equal(presErr.attrs.type, 'error');
  assert.ok(presErr.getChild('error')?.getChild('internal-server-error'));
  // Overloaded: the module's own condition (resource-constraint, wait) reaches the client as it is.
  world.router.actorAnswer = async () => Promise.reject(new StanzaError('resource-constraint', 'The server is overloaded; try again later', { type: 'wait' }));
  t.receive("<presence><show>away</show></presence>");
  const busy = await t.next();
  assert.equal(busy.attrs.type, 'error');
  assert.equal(busy.getChild('error')?.attrs.type, 'wait');
  assert.ok(busy.getChild('error')?.getChild('resource-constraint'));
  assert.deepEqual(world.router.actorCalls.map((c) => c.op), ['roster-iq', 'presence-out', 'presence-out']);
});
