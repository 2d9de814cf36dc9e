import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { NS, StanzaError, canReplyWithError, errorReply, iqResult, stanzaKind, parseStanzaError } from './index.js';

test('stanzaKind', () => {
  assert.equal(stanzaKind(parse('<message/>')), 'message');
  assert.equal(stanzaKind(parse('<presence/>')), 'presence');
  assert.equal(stanzaKind(parse("<iq xmlns='jabber:server'/>")), 'iq');
  assert.equal(stanzaKind(parse("<iq xmlns='jabber:component:accept'/>")), 'iq');
  assert.equal(stanzaKind(parse("<message xmlns='urn:example'/>")), null);
  assert.equal(stanzaKind(parse(`<starttls xmlns='${NS.tls}'/>`)), null);
  assert.equal(stanzaKind(parse(`<stream:features xmlns:stream='${NS.stream}'/>`)), null);
});

test('errorReply swaps addresses, keeps the id and appends <error/>', () => {
  const msg = parse(
    "<message from='a@x/r' to='b@y' id='m1' type='chat'><body>hi</body><thread>t</thread></message>",
  );
  const reply = errorReply(msg, new StanzaError('service-unavailable'));
  assert.equal(reply.name, 'message');
  assert.deepEqual(reply.attrs, { to: 'a@x/r', from: 'b@y', id: 'm1', type: 'error' });
  // message payload included by default, <error/> last
  assert.deepEqual(
    reply.getChildElements().map((c) => c.name),
    ['body', 'thread', 'error'],
  );
  assert.equal(parseStanzaError(reply)?.condition, 'service-unavailable');
  // the original is untouched
  assert.equal(msg.getChildElements().length, 2);
  assert.equal(msg.attrs.type, 'chat');
});

test('errorReply on iq omits the payload by default; includeOriginal overrides both ways', () => {
  const iq = parse("<iq from='a@x/r' to='x' id='q1' type='set'><query xmlns='jabber:iq:register'><password>s</password></query></iq>");
  const r1 = errorReply(iq, new StanzaError('not-allowed'));
  assert.deepEqual(r1.getChildElements().map((c) => c.name), ['error']);
  const r2 = errorReply(iq, new StanzaError('not-allowed'), { includeOriginal: true });
  assert.deepEqual(r2.getChildElements().map((c) => c.name), ['query', 'error']);
  const pres = parse("<presence from='a@x/r' to='b@y'><status>s</status></presence>");
  const r3 = errorReply(pres, new StanzaError('forbidden'), { includeOriginal: false });
  assert.deepEqual(r3.getChildElements().map((c) => c.name), ['error']);
});

test('errorReply omits attributes absent from the original', () => {
  const reply = errorReply(parse("<presence to='b@y'/>"), new StanzaError('forbidden'));
  assert.deepEqual(reply.attrs, { from: 'b@y', type: 'error' });
  const reply2 = errorReply(parse("<message from='a@x'/>"), new StanzaError('forbidden'));
  assert.deepEqual(reply2.attrs, { to: 'a@x', type: 'error' });
});

test('errorReply keeps an explicit content namespace', () => {
  const reply = errorReply(parse("<message xmlns='jabber:client' from='a@x' id='1'/>"), new StanzaError('gone'));
  assert.equal(reply.attrs.xmlns, 'jabber:client');
});

test('never reply to an error with an error (§8.3.1), nor to an iq result (§8.2.3)', () => {
  for (const xml of [
    "<message type='error' from='a@x'/>",
    "<presence type='error' from='a@x'/>",
    "<iq type='error' id='1' from='a@x'><error type='cancel'/></iq>",
    "<iq type='result' id='1' from='a@x'/>",
    '<r xmlns="urn:xmpp:sm:3"/>',
  ]) {
    const el = parse(xml);
    assert.equal(canReplyWithError(el), false, xml);
    assert.throws(() => errorReply(el, new StanzaError('bad-request')), TypeError);
  }
  assert.equal(canReplyWithError(parse("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>")), true);
  assert.equal(canReplyWithError(parse("<iq type='bogus' id='1'/>")), true, 'bad-request for unknown type');
  assert.equal(canReplyWithError(parse("<message type='chat'/>")), true);
});

test('the original <error/> child is not copied into a reply', () => {
  const msg = parse(`<message from='a@x' id='1'><body>b</body><error type='cancel'/></message>`);
  const reply = errorReply(msg, new StanzaError('not-acceptable'));
  assert.equal(reply.getChildren('error').length, 1);
  assert.equal(reply.getChild('error')!.attrs.type, 'modify');
});

test('iqResult swaps addresses, keeps the id, optional payload', () => {
  const iq = parse("<iq from='a@x/r' to='x' id='q9' type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
  const r = iqResult(iq);
  assert.equal(r.toString(), '<iq to="a@x/r" from="x" id="q9" type="result"/>');
  const payload = parse(`<query xmlns='${NS.version}'><name>Hyphae</name></query>`);
  const r2 = iqResult(iq, payload);
  assert.equal(r2.getChild('query', NS.version)?.getChildText('name'), 'Hyphae');
});
