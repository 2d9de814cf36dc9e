import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { validateIq } from './index.js';

function check(xml: string): string | null {
  const err = validateIq(parse(xml));
  if (err === null) return null;
  assert.equal(err.condition, 'bad-request');
  assert.equal(err.type, 'modify');
  assert.ok(err.text && err.text.length > 0, 'a text says what is wrong');
  return err.text!;
}

test('valid IQs pass', () => {
  assert.equal(check("<iq id='1' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"), null);
  assert.equal(check("<iq id='1' type='set'><query xmlns='jabber:iq:roster'/></iq>"), null);
  assert.equal(check("<iq id='1' type='result'/>"), null);
  assert.equal(check("<iq id='1' type='result'><query xmlns='jabber:iq:roster'/></iq>"), null);
  assert.equal(check("<iq id='1' type='error'><error type='cancel'/></iq>"), null);
  assert.equal(check("<iq id='1' type='error'><ping xmlns='urn:xmpp:ping'/><error type='cancel'/></iq>"), null);
  // whitespace text between children does not count as a child element
  assert.equal(check("<iq id='1' type='get'>\n  <ping xmlns='urn:xmpp:ping'/>\n</iq>"), null);
});

test('id is required', () => {
  assert.match(check("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")!, /'id'/);
  assert.match(check("<iq id='' type='get'><ping xmlns='urn:xmpp:ping'/></iq>")!, /'id'/);
});

test('type is required and must be get/set/result/error', () => {
  assert.match(check("<iq id='1'><ping xmlns='urn:xmpp:ping'/></iq>")!, /'type'/);
  assert.match(check("<iq id='1' type='fetch'><ping xmlns='urn:xmpp:ping'/></iq>")!, /fetch/);
});

test('get/set must contain exactly one child element', () => {
  assert.match(check("<iq id='1' type='get'/>")!, /exactly one.*found 0/);
  assert.match(check("<iq id='1' type='set'><a xmlns='x'/><b xmlns='y'/></iq>")!, /exactly one.*found 2/);
});

test('result must contain zero or one child element', () => {
  assert.match(check("<iq id='1' type='result'><a xmlns='x'/><b xmlns='y'/></iq>")!, /zero or one.*found 2/);
});

test('error must contain <error/>', () => {
  assert.match(check("<iq id='1' type='error'/>")!, /<error\/>/);
  assert.match(check("<iq id='1' type='error'><ping xmlns='urn:xmpp:ping'/></iq>")!, /<error\/>/);
});

test('not an iq', () => {
  assert.match(check("<message id='1' type='chat'/>")!, /<iq\/>/);
});
