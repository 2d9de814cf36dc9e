import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { ActorBusyError } from '@hyphae/actor';
import { StanzaError } from '@hyphae/stanza';
import type { ClientSession, Routing, StanzaOutEvent } from '@hyphae/module-api';
import { rosterInstance } from './index.js';

const calls: Array<{ op: string; user: string; data: string; headers: Readonly<Record<string, string>> }> = [];
const routing = {
  toUserActor: async (user, op, data, headers = {}) => {
    calls.push({ op, user: user.toString(), data: new TextDecoder().decode(data), headers });
    return 'ok';
  },
} as Partial<Routing> as Routing;
const session = { id: 'sid-1' } as Partial<ClientSession> as ClientSession;
const from = parseJid('juliet@example.org/balcony');
const hook = rosterInstance().hooks?.['stanza/out'];
const event = (xml: string): StanzaOutEvent => ({ stanza: parse(xml), from, session, routing });

test('presence goes to the user actor with the session id; the hook stops it', async () => {
  calls.length = 0;
  assert.ok(hook);
  assert.equal(await hook(event("<presence from='juliet@example.org/balcony'><show>away</show></presence>")), 'stop');
  assert.equal(await hook(event("<presence to='romeo@example.net' type='subscribe'/>")), 'stop');
  assert.deepEqual(calls.map((c) => [c.op, c.user, c.headers['hy-sid']]), [
    ['presence-out', 'juliet@example.org/balcony', 'sid-1'],
    ['presence-out', 'juliet@example.org/balcony', 'sid-1'],
  ]);
  assert.match(calls[0]?.data ?? '', /<show>away<\/show>/);
});

test('roster get/set without to or to a bare JID go to the actor; to a full JID, or a result, are routed', async () => {
  calls.length = 0;
  assert.ok(hook);
  assert.equal(await hook(event("<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>")), 'stop');
  assert.equal(await hook(event("<iq type='set' id='2' to='juliet@example.org'><query xmlns='jabber:iq:roster'/></iq>")), 'stop');
  assert.equal(hook(event("<iq type='get' id='3' to='romeo@example.net/orchard'><query xmlns='jabber:iq:roster'/></iq>")), undefined);
  assert.equal(hook(event("<iq type='result' id='4'><query xmlns='jabber:iq:roster'/></iq>")), undefined);
  assert.equal(hook(event("<iq type='get' id='5'><ping xmlns='urn:xmpp:ping'/></iq>")), undefined);
  assert.deepEqual(calls.map((c) => [c.op, c.headers['hy-sid']]), [['roster-iq', undefined], ['roster-iq', undefined]]);
});

test('a message is not its business, and costs no promise', () => {
  assert.ok(hook);
  assert.equal(hook(event("<message to='romeo@example.net' type='chat'><body>hi</body></message>")), undefined);
});

test('roster versioning and pre-approval are offered after authentication', () => {
  const offers = rosterInstance().streamFeatures ?? [];
  assert.deepEqual(offers.map((f) => [f.stage, f.offer({} as never)?.toString()]), [
    ['post-auth', '<ver xmlns="urn:xmpp:features:rosterver"/>'],
    ['post-auth', '<sub xmlns="urn:xmpp:features:pre-approval"/>'],
  ]);
});

test("what the actor could not do comes back as the sender's error, not silence", async () => {
  assert.ok(hook);
  const answering = (answer: () => Promise<string>): StanzaOutEvent => ({
    ...event("<presence from='juliet@example.org/balcony'/>"),
    routing: { toUserActor: answer } as Partial<Routing> as Routing,
  });
  // The operation failed in the actor (its store timed out): internal-server-error, wait.
  await assert.rejects(Promise.resolve(hook(answering(async () => 'error'))), (err: unknown) => err instanceof StanzaError && err.condition === 'internal-server-error' && err.type === 'wait');
  // The actor's owner refused it (mailboxes full) for as long as the sender retried: resource-constraint, wait.
  await assert.rejects(Promise.resolve(hook(answering(async () => Promise.reject(new ActorBusyError('xmpp.user.1.example%2Eorg.juliet'))))), (err: unknown) => err instanceof StanzaError && err.condition === 'resource-constraint' && err.type === 'wait');
  // Anything else goes on as it was (the edge answers it as a routing failure).
  await assert.rejects(Promise.resolve(hook(answering(async () => Promise.reject(new Error('bus closed'))))), /bus closed/);
});
