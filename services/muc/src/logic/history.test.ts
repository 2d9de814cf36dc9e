import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, parse } from 'ltx';
import {
  historyStanza,
  historyStanzaChars,
  parseDateTime,
  parseHistoryRequest,
  selectHistory,
  type HistoryEntry,
} from './history.js';

const ROOM = 'coven@chat.shakespeare.lit';
const T0 = Date.UTC(2002, 9, 13, 23, 58, 0);

/** Entries one minute apart, the last at `now`; message i has a body of `len` 'x's. */
function entries(n: number, now: number, len = 10): HistoryEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    xml: `<message from="${ROOM}/w${i}" id="m${i}" type="groupchat"><body>${'x'.repeat(len)}</body></message>`,
    at: now - (n - 1 - i) * 60_000,
    nick: `w${i}`,
  }));
}

const h = (attrs: Record<string, string>) => new Element('history', attrs);
const ids = (es: HistoryEntry[]) => es.map((e) => e.nick);

test('parseDateTime: XEP-0082 DateTime', () => {
  const ok: Array<[string, number]> = [
    ['1970-01-01T00:00:00Z', 0],
    ['2002-10-13T23:58:37Z', Date.UTC(2002, 9, 13, 23, 58, 37)],
    ['2002-10-13T23:58:37.123Z', Date.UTC(2002, 9, 13, 23, 58, 37, 123)],
    ['2002-10-13T23:58:37.1Z', Date.UTC(2002, 9, 13, 23, 58, 37, 100)],
    ['2002-10-13T23:58:37.123456Z', Date.UTC(2002, 9, 13, 23, 58, 37, 123)],
    ['2002-10-13T23:58:37+02:00', Date.UTC(2002, 9, 13, 21, 58, 37)],
    ['2002-10-13T23:58:37-05:30', Date.UTC(2002, 9, 14, 5, 28, 37)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
  ];
  for (const [s, ms] of ok) assert.equal(parseDateTime(s), ms, s);
  assert.equal(new Date(parseDateTime('0099-01-01T00:00:00Z')!).getUTCFullYear(), 99);
  const bad = [
    '',
    '2002-10-13',
    '2002-10-13T23:58:37', // TZD is required
    '2002-10-13 23:58:37Z',
    '2002-13-01T00:00:00Z',
    '2002-00-01T00:00:00Z',
    '2002-02-30T00:00:00Z',
    '2001-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2002-10-13T24:00:00Z',
    '2002-10-13T23:60:00Z',
    '2002-10-13T23:59:60Z',
    '2002-10-13T23:58:37+2:00',
    '2002-10-13T23:58:37+24:00',
    '2002-10-13T23:58:37.Z',
    '02-10-13T23:58:37Z',
    'yesterday',
  ];
  for (const s of bad) assert.equal(parseDateTime(s), undefined, s);
});

test('parseHistoryRequest: the four attributes; invalid values are ignored', () => {
  const now = T0;
  assert.deepEqual(parseHistoryRequest(undefined, now), {});
  assert.deepEqual(parseHistoryRequest(h({}), now), {});
  assert.deepEqual(parseHistoryRequest(h({ maxchars: '65000' }), now), { maxchars: 65000 });
  assert.deepEqual(parseHistoryRequest(h({ maxstanzas: '20' }), now), { maxstanzas: 20 });
  assert.deepEqual(parseHistoryRequest(h({ seconds: '180' }), now), { notBefore: now - 180_000 });
  assert.deepEqual(parseHistoryRequest(h({ since: '1970-01-01T00:00:00Z' }), now), { notBefore: 0 });
  // the later of seconds / since applies
  assert.deepEqual(parseHistoryRequest(h({ seconds: '60', since: '1970-01-01T00:00:00Z' }), now), { notBefore: now - 60_000 });
  const since = new Date(now - 30_000).toISOString();
  assert.deepEqual(parseHistoryRequest(h({ seconds: '60', since }), now), { notBefore: now - 30_000 });
  for (const v of ['-1', 'ten', '1.5', '', '1e3', '0x10']) {
    assert.deepEqual(parseHistoryRequest(h({ maxchars: v, maxstanzas: v, seconds: v }), now), {}, `'${v}'`);
  }
  assert.deepEqual(parseHistoryRequest(h({ since: 'yesterday' }), now), {});
  // the muc <x/> holding <history/> is accepted too
  const x = parse("<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='2'/></x>");
  assert.deepEqual(parseHistoryRequest(x, now), { maxstanzas: 2 });
  assert.deepEqual(parseHistoryRequest(parse("<x xmlns='http://jabber.org/protocol/muc'/>"), now), {});
});

test('selectHistory: no request → everything the room keeps, oldest first', () => {
  const es = entries(5, T0);
  assert.deepEqual(selectHistory(es, undefined, T0), es);
  assert.deepEqual(selectHistory([], h({ maxstanzas: '3' }), T0), []);
});

test('selectHistory: maxstanzas keeps the newest N', () => {
  const es = entries(5, T0);
  const rows: Array<[string, string[]]> = [
    ['0', []],
    ['1', ['w4']],
    ['3', ['w2', 'w3', 'w4']],
    ['5', ['w0', 'w1', 'w2', 'w3', 'w4']],
    ['99', ['w0', 'w1', 'w2', 'w3', 'w4']],
    ['-1', ['w0', 'w1', 'w2', 'w3', 'w4']], // invalid: ignored
  ];
  for (const [v, expected] of rows) assert.deepEqual(ids(selectHistory(es, h({ maxstanzas: v }), T0)), expected, v);
});

test('selectHistory: maxchars counts complete stanzas as sent (with <delay/>), never a partial one', () => {
  const es = entries(5, T0);
  const size = historyStanzaChars(es[4]!);
  // the five entries differ only in one digit, so they have the same size
  for (const e of es) assert.equal(historyStanzaChars(e), size);
  assert.ok(size > es[4]!.xml.length, 'the delay element is counted');
  const rows: Array<[number, string[]]> = [
    [0, []],
    [size - 1, []],
    [size, ['w4']],
    [2 * size - 1, ['w4']],
    [2 * size, ['w3', 'w4']],
    [5 * size, ['w0', 'w1', 'w2', 'w3', 'w4']],
  ];
  for (const [v, expected] of rows) assert.deepEqual(ids(selectHistory(es, h({ maxchars: String(v) }), T0)), expected, String(v));
  // stops at the first entry that does not fit, even if an older, smaller one would
  const mixed: HistoryEntry[] = [entries(1, T0 - 120_000, 1)[0]!, entries(1, T0 - 60_000, 500)[0]!, entries(1, T0, 10)[0]!];
  mixed.forEach((e, i) => (e.nick = `m${i}`));
  const budget = historyStanzaChars(mixed[2]!) + historyStanzaChars(mixed[0]!);
  assert.deepEqual(ids(selectHistory(mixed, h({ maxchars: String(budget) }), T0)), ['m2']);
});

test('selectHistory: maxchars with a target counts the exact stanza, to included', () => {
  const es = entries(3, T0);
  const target = { to: 'hecate@shakespeare.lit/broom', roomJid: ROOM };
  const exact = historyStanza(es[2]!, target.to, target.roomJid).toString().length;
  assert.equal(historyStanzaChars(es[2]!, target), exact);
  assert.equal(exact, historyStanzaChars(es[2]!) + ` to="${target.to}"`.length);
  assert.deepEqual(ids(selectHistory(es, h({ maxchars: String(exact) }), T0, target)), ['w2']);
  assert.deepEqual(ids(selectHistory(es, h({ maxchars: String(exact - 1) }), T0, target)), []);
  // without the target the same budget fits (the 'to' is not counted)
  assert.deepEqual(ids(selectHistory(es, h({ maxchars: String(exact - 1) }), T0)), ['w2']);
});

test('selectHistory: characters are code points, not UTF-16 units', () => {
  const e: HistoryEntry = { xml: `<message from="${ROOM}/a" type="groupchat"><body>😀😀</body></message>`, at: T0, nick: 'a' };
  const plain: HistoryEntry = { xml: `<message from="${ROOM}/a" type="groupchat"><body>xx</body></message>`, at: T0, nick: 'a' };
  assert.equal(historyStanzaChars(e), historyStanzaChars(plain));
});

test('selectHistory: seconds and since (inclusive bounds)', () => {
  const es = entries(5, T0); // at T0-4min … T0
  const rows: Array<[Record<string, string>, string[]]> = [
    [{ seconds: '0' }, ['w4']], // received "now"
    [{ seconds: '59' }, ['w4']],
    [{ seconds: '60' }, ['w3', 'w4']],
    [{ seconds: '180' }, ['w1', 'w2', 'w3', 'w4']],
    [{ seconds: '100000' }, ['w0', 'w1', 'w2', 'w3', 'w4']],
    [{ since: new Date(T0 - 120_000).toISOString() }, ['w2', 'w3', 'w4']],
    [{ since: new Date(T0 - 119_999).toISOString() }, ['w3', 'w4']],
    [{ since: '1970-01-01T00:00:00Z' }, ['w0', 'w1', 'w2', 'w3', 'w4']],
    [{ since: new Date(T0 + 1).toISOString() }, []], // the future
    [{ since: 'garbage' }, ['w0', 'w1', 'w2', 'w3', 'w4']], // invalid: ignored
    [{ seconds: 'x' }, ['w0', 'w1', 'w2', 'w3', 'w4']],
  ];
  for (const [attrs, expected] of rows) assert.deepEqual(ids(selectHistory(es, h(attrs), T0)), expected, JSON.stringify(attrs));
});

test('selectHistory: combinations satisfy every limit at once', () => {
  const es = entries(6, T0);
  const size = historyStanzaChars(es[5]!);
  const rows: Array<[Record<string, string>, string[]]> = [
    [{ maxstanzas: '4', seconds: '120' }, ['w3', 'w4', 'w5']], // seconds is stricter
    [{ maxstanzas: '2', seconds: '300' }, ['w4', 'w5']], // maxstanzas is stricter
    [{ maxstanzas: '4', maxchars: String(3 * size) }, ['w3', 'w4', 'w5']],
    [{ maxstanzas: '2', maxchars: String(3 * size) }, ['w4', 'w5']],
    [{ maxchars: String(10 * size), since: new Date(T0 - 60_000).toISOString() }, ['w4', 'w5']],
    [{ maxchars: String(size), seconds: '300', maxstanzas: '5' }, ['w5']],
    [{ maxchars: '0', maxstanzas: '5' }, []],
    [{ maxchars: String(10 * size), maxstanzas: '0' }, []],
    [{ maxstanzas: '3', seconds: 'bad', since: 'bad', maxchars: 'bad' }, ['w3', 'w4', 'w5']],
  ];
  for (const [attrs, expected] of rows) assert.deepEqual(ids(selectHistory(es, h(attrs), T0)), expected, JSON.stringify(attrs));
});

test('historyStanza: to set, XEP-0203 delay from the room JID, stored message intact', () => {
  const e: HistoryEntry = {
    xml: `<message from="${ROOM}/firstwitch" id="162BEBB1" type="groupchat"><body>Thrice the brinded cat hath mew&apos;d.</body></message>`,
    at: Date.UTC(2002, 9, 13, 23, 58, 37),
    nick: 'firstwitch',
  };
  const el = historyStanza(e, 'hecate@shakespeare.lit/broom', ROOM);
  assert.equal(el.name, 'message');
  assert.deepEqual(
    { ...el.attrs },
    { from: `${ROOM}/firstwitch`, id: '162BEBB1', type: 'groupchat', to: 'hecate@shakespeare.lit/broom' },
  );
  assert.equal(el.getChildText('body'), "Thrice the brinded cat hath mew'd.");
  const delay = el.getChild('delay', 'urn:xmpp:delay');
  assert.ok(delay);
  assert.equal(delay.attrs.from, ROOM);
  assert.equal(delay.attrs.stamp, '2002-10-13T23:58:37.000Z');
  assert.equal(parseDateTime(String(delay.attrs.stamp)), e.at, 'the stamp is a XEP-0082 DateTime');
  assert.equal(el.getChildElements().at(-1), delay, 'delay appended last');
  // a fresh element every time: the entry is not modified
  assert.equal(historyStanza(e, 'x@y/z', ROOM).attrs.to, 'x@y/z');
  assert.equal(el.attrs.to, 'hecate@shakespeare.lit/broom');
});
