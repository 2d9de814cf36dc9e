import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, parse } from 'ltx';
import {
  DEFAULT_ERROR_TYPE,
  NS,
  STANZA_ERROR_CONDITIONS,
  STREAM_ERROR_CONDITIONS,
  StanzaError,
  StreamError,
  parseStanzaError,
} from './index.js';

test('RFC 6120 §4.9.3 defines 25 stream error conditions, §8.3.3 defines 22 stanza error conditions', () => {
  assert.equal(STREAM_ERROR_CONDITIONS.length, 25);
  assert.equal(new Set(STREAM_ERROR_CONDITIONS).size, 25);
  assert.equal(STANZA_ERROR_CONDITIONS.length, 22);
  assert.deepEqual(Object.keys(DEFAULT_ERROR_TYPE).sort(), [...STANZA_ERROR_CONDITIONS].sort());
});

test('every stream error condition serializes to namespaced XML that parses back', () => {
  for (const cond of STREAM_ERROR_CONDITIONS) {
    const err =
      cond === 'see-other-host'
        ? new StreamError(cond, 'moving', { seeOtherHost: 'other.example:5222' })
        : new StreamError(cond, 'because');
    assert.equal(err.condition, cond);
    assert.ok(err instanceof Error);
    const xml = err.toElement().toString();
    const el = parse(xml);
    assert.equal(el.name, 'stream:error');
    assert.equal(el.getNS(), NS.stream);
    const children = el.getChildElements();
    assert.equal(children.length, 2, xml);
    assert.equal(children[0]!.name, cond);
    assert.equal(children[0]!.attrs.xmlns, NS.streams);
    assert.equal(children[1]!.name, 'text');
    assert.equal(children[1]!.attrs.xmlns, NS.streams);
    assert.equal(children[1]!.attrs['xml:lang'], 'en');
  }
});

test('stream error without text has only the condition', () => {
  const el = new StreamError('not-well-formed').toElement();
  assert.equal(el.getChildElements().length, 1);
  assert.equal(el.toString(), `<stream:error xmlns:stream="${NS.stream}"><not-well-formed xmlns="${NS.streams}"/></stream:error>`);
});

test('see-other-host carries the host as character data (§4.9.3.19) and is required', () => {
  const el = new StreamError('see-other-host', undefined, { seeOtherHost: '[2001:db8::1]:5222' }).toElement();
  assert.equal(el.getChildText('see-other-host', NS.streams), '[2001:db8::1]:5222');
  assert.throws(() => new StreamError('see-other-host'), TypeError);
});

test('text is escaped', () => {
  const xml = new StreamError('policy-violation', "a<b & 'c'").toElement().toString();
  assert.equal(parse(xml).getChildText('text', NS.streams), "a<b & 'c'");
});

test('unknown conditions are rejected at construction', () => {
  assert.throws(() => new StreamError('nope' as never), TypeError);
  assert.throws(() => new StanzaError('nope' as never), TypeError);
  assert.throws(() => new StanzaError('conflict', undefined, { type: 'bogus' as never }), TypeError);
});

test('every stanza error condition builds <error/> with its default type and namespaced condition', () => {
  for (const cond of STANZA_ERROR_CONDITIONS) {
    const err = new StanzaError(cond, 'why');
    assert.equal(err.type, DEFAULT_ERROR_TYPE[cond]);
    const el = parse(err.toElement().toString());
    assert.equal(el.name, 'error');
    assert.equal(el.attrs.xmlns, undefined, 'the <error/> element inherits the content namespace');
    assert.equal(el.attrs.type, DEFAULT_ERROR_TYPE[cond]);
    const [c, t] = el.getChildElements();
    assert.equal(c!.name, cond);
    assert.equal(c!.attrs.xmlns, NS.stanzas);
    assert.equal(t!.name, 'text');
    assert.equal(t!.attrs.xmlns, NS.stanzas);
    assert.equal(t!.getText(), 'why');
    // And it round-trips.
    const parsed = parseStanzaError(el);
    assert.equal(parsed?.condition, cond);
    assert.equal(parsed?.type, DEFAULT_ERROR_TYPE[cond]);
    assert.equal(parsed?.text, 'why');
  }
});

test('RFC 6120 §8.3.3 types for a sample of conditions', () => {
  assert.equal(DEFAULT_ERROR_TYPE['bad-request'], 'modify');
  assert.equal(DEFAULT_ERROR_TYPE['forbidden'], 'auth');
  assert.equal(DEFAULT_ERROR_TYPE['not-authorized'], 'auth');
  assert.equal(DEFAULT_ERROR_TYPE['service-unavailable'], 'cancel');
  assert.equal(DEFAULT_ERROR_TYPE['recipient-unavailable'], 'wait');
  assert.equal(DEFAULT_ERROR_TYPE['resource-constraint'], 'wait');
  assert.equal(DEFAULT_ERROR_TYPE['redirect'], 'modify');
  assert.equal(DEFAULT_ERROR_TYPE['gone'], 'cancel');
});

test('stanza error options: type, by, uri, app condition, order of children', () => {
  const app = new Element('too-many-stanzas', { xmlns: 'urn:xmpp:errors' });
  const err = new StanzaError('redirect', 'moved', {
    type: 'cancel',
    by: 'example.org',
    uri: 'xmpp:room@conference.example.org?join',
    appCondition: app,
  });
  const el = err.toElement();
  assert.equal(el.attrs.type, 'cancel');
  assert.equal(el.attrs.by, 'example.org');
  assert.deepEqual(
    el.getChildElements().map((c) => c.name),
    ['redirect', 'text', 'too-many-stanzas'],
  );
  assert.equal(el.getChildText('redirect', NS.stanzas), 'xmpp:room@conference.example.org?join');
  // toElement can be called twice (the app condition is copied, not moved).
  assert.equal(err.toElement().getChildElements().length, 3);
  assert.equal(app.parent, null);
  const parsed = parseStanzaError(el);
  assert.equal(parsed?.uri, 'xmpp:room@conference.example.org?join');
  assert.equal(parsed?.by, 'example.org');
  assert.equal(parsed?.appCondition?.name, 'too-many-stanzas');
});

test('uri is ignored for conditions other than gone/redirect', () => {
  const el = new StanzaError('conflict', undefined, { uri: 'xmpp:x' }).toElement();
  assert.equal(el.getChildText('conflict', NS.stanzas), '');
});

test('parseStanzaError reads an error stanza and tolerates unknown content', () => {
  const stanza = parse(
    `<iq type='error' id='1'><query xmlns='jabber:iq:roster'/><error type='wait'>` +
      `<text xmlns='${NS.stanzas}'>slow down</text><resource-constraint xmlns='${NS.stanzas}'/></error></iq>`,
  );
  assert.deepEqual(parseStanzaError(stanza), { condition: 'resource-constraint', type: 'wait', text: 'slow down' });

  const weird = parse(`<message type='error'><error type='strange'><made-up xmlns='${NS.stanzas}'/></error></message>`);
  assert.deepEqual(parseStanzaError(weird), { condition: 'undefined-condition', type: null });

  assert.equal(parseStanzaError(parse(`<message type='error'><body>x</body></message>`)), null);
});
