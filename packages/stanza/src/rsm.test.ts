import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { NS, StanzaError, parseRsm, rsmSet } from './index.js';

const q = (set: string) => parse(`<query xmlns='http://jabber.org/protocol/disco#items'>${set}</query>`);
const rsm = (inner: string) => q(`<set xmlns='${NS.rsm}'>${inner}</set>`);

test('parseRsm: no <set/> (or a <set/> in another namespace) is undefined', () => {
  assert.equal(parseRsm(q('')), undefined);
  assert.equal(parseRsm(q("<set xmlns='urn:other'><max>5</max></set>")), undefined);
});

test('parseRsm: the XEP-0059 request forms', () => {
  const cases: Array<[string, string, object]> = [
    ['§2.1 limit', '<max>10</max>', { max: 10 }],
    ['§2.2 next page', '<max>10</max><after>peterpan@neverland.lit</after>', { max: 10, after: 'peterpan@neverland.lit' }],
    ['§2.3 previous page', '<max>10</max><before>peter@pixyland.org</before>', { max: 10, before: 'peter@pixyland.org' }],
    ['§2.4 last page: empty <before/>', '<max>10</max><before/>', { max: 10, before: '' }],
    ['§2.5 page by index', '<max>10</max><index>371</index>', { max: 10, index: 371 }],
    ['§2.6 count only', '<max>0</max>', { max: 0 }],
    ['empty set', '', {}],
    ['xs:int whitespace and plus sign', '<max> +7 </max>', { max: 7 }],
    ['UIDs are opaque: not trimmed', '<after> a b </after>', { after: ' a b ' }],
    ['response-only children are ignored', '<count>3</count><first>x</first><max>1</max>', { max: 1 }],
  ];
  for (const [name, inner, expected] of cases) {
    assert.deepEqual(parseRsm(rsm(inner)), expected, name);
  }
});

test('parseRsm: malformed numbers and repeated children are bad-request', () => {
  const bad = [
    '<max>-1</max>',
    '<max>ten</max>',
    '<max>1.5</max>',
    '<max></max>',
    '<max>1e3</max>',
    '<max>2147483648</max>',
    '<index>-3</index>',
    '<index>x</index>',
    '<index/>',
    '<max>1</max><max>2</max>',
    '<after>a</after><after>b</after>',
    '<before/><before/>',
  ];
  for (const inner of bad) {
    assert.throws(
      () => parseRsm(rsm(inner)),
      (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request' && e.type === 'modify',
      inner,
    );
  }
  // the largest xs:int is fine
  assert.deepEqual(parseRsm(rsm('<max>2147483647</max>')), { max: 2147483647 });
});

test('rsmSet: a page has <first index/>, <last/>, <count/> in the order of the examples', () => {
  const el = rsmSet({ first: 'stpeter@jabber.org', firstIndex: 0, last: 'peterpan@neverland.lit', count: 800 });
  assert.equal(
    el.toString(),
    `<set xmlns="${NS.rsm}"><first index="0">stpeter@jabber.org</first><last>peterpan@neverland.lit</last><count>800</count></set>`,
  );
});

test('rsmSet: one-item page repeats first as last; index and count are optional', () => {
  assert.equal(rsmSet({ first: 'a' }).toString(), `<set xmlns="${NS.rsm}"><first>a</first><last>a</last></set>`);
});

test('rsmSet: empty page / count only carries no <first/> nor <last/>', () => {
  assert.equal(rsmSet({ count: 790 }).toString(), `<set xmlns="${NS.rsm}"><count>790</count></set>`);
  // last without first is still an empty page
  assert.equal(rsmSet({ last: 'x', count: 0 }).toString(), `<set xmlns="${NS.rsm}"><count>0</count></set>`);
});

test('rsmSet: round trip through parse and escaping of UIDs', () => {
  const el = parse(rsmSet({ first: 'a<&>b', last: 'z', firstIndex: 5, count: 9 }).toString());
  assert.equal(el.getChildText('first'), 'a<&>b');
  assert.equal(el.getChild('first')?.attrs.index, '5');
  assert.equal(el.getChildText('count'), '9');
});

test('rsmSet: programmer errors are RangeErrors', () => {
  assert.throws(() => rsmSet({ count: -1 }), RangeError);
  assert.throws(() => rsmSet({ first: 'a', firstIndex: 1.5 }), RangeError);
});
