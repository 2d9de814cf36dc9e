import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { JidError, decodeToken, encodeToken, parseJid } from './index.js';

// A NATS token may not contain '.', '*', '>', whitespace or control
// characters and may not be empty; ours are further limited to [A-Za-z0-9_-].
const TOKEN = /^[A-Za-z0-9_-]+$/;

describe('encodeToken / decodeToken', () => {
  const examples: Array<[string, string]> = [
    ['juliet', 'juliet'],
    ['Juliet-2', 'Juliet-2'],
    ['example.com', 'example_2ecom'],
    ['foo_bar', 'foo_5fbar'],
    ['_', '_5f'],
    ['', '_'],
    ['a b', 'a_20b'],
    ['*', '_2a'],
    ['>', '_3e'],
    ['bücher', 'b_c3_bccher'],
    ['𝄞', '_f0_9d_84_9e'],
    ['[::1]', '_5b_3a_3a1_5d'],
    ['\ud800', '_ed_a0_80'], // lone surrogate, WTF-8
  ];
  for (const [part, token] of examples) {
    it(`${JSON.stringify(part)} <-> ${token}`, () => {
      assert.equal(encodeToken(part), token);
      assert.equal(decodeToken(token), part);
    });
  }

  it('encodes every prepared part of a JID', () => {
    const j = parseJid('Juliet@Bücher.example/Balcony 1');
    assert.deepEqual([encodeToken(j.domain), encodeToken(j.local), encodeToken(j.resource)], [
      'b_c3_bccher_2eexample',
      'juliet',
      'Balcony_201',
    ]);
  });

  it('rejects malformed tokens with JidError part "jid"', () => {
    const bad = [
      '', // empty
      'a.b', // separator
      'a*', // wildcard
      'a>', // wildcard
      'a b', // whitespace
      'a\tb',
      'ü', // raw non-ASCII
      '__', // '_' needs two hex digits
      '_4',
      'a_',
      '_2E', // uppercase hex is not canonical
      '_zz',
      '_41', // needless escape of 'A'
      '_2d', // needless escape of '-'
      '_c3', // truncated UTF-8
      '_c3_41', // bad continuation byte
      '_80', // stray continuation byte
      '_c0_80', // overlong
      '_e0_80_80', // overlong
      '_f4_90_80_80', // above U+10FFFF
      '_ff',
      '_ed_a0_80_ed_b0_80', // surrogate pair written as two halves
      '_5f_', // trailing escape
    ];
    for (const t of bad) {
      assert.throws(
        () => decodeToken(t),
        (e: unknown) => e instanceof JidError && e.part === 'jid',
        JSON.stringify(t),
      );
    }
  });

  it('round-trips arbitrary code point strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const t = encodeToken(s);
        assert.match(t, TOKEN);
        assert.equal(decodeToken(t), s);
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips arbitrary UTF-16 (including lone surrogates)', () => {
    const unit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    fc.assert(
      fc.property(fc.string({ unit }), (s) => {
        const t = encodeToken(s);
        assert.match(t, TOKEN);
        assert.equal(decodeToken(t), s);
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips ASCII-heavy strings and keeps letters readable', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), (s) => {
        const t = encodeToken(s);
        assert.match(t, TOKEN);
        assert.equal(decodeToken(t), s);
        // Letters, digits and '-' appear verbatim, in order.
        assert.equal(t.replace(/_(?:[0-9a-f]{2})?/g, ''), s.replace(/[^A-Za-z0-9-]/g, ''));
      }),
      { numRuns: 2000 },
    );
  });

  it('is injective: decodeToken accepts only canonical tokens', () => {
    // Any token that decodes must be exactly what encodeToken produces.
    const tokenChar = fc.constantFrom(...'ab-_0123456789cdefABZ'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 }), (t) => {
        let s: string;
        try {
          s = decodeToken(t);
        } catch (e) {
          assert.ok(e instanceof JidError);
          return;
        }
        assert.equal(encodeToken(s), t);
      }),
      { numRuns: 5000 },
    );
  });
});
