import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { JID, JidError, makeJid, parseJid, prepDomain, prepLocal, prepResource, tryParseJid } from './index.js';
import type { JidPart } from './index.js';

function parts(s: string): [string, string, string] {
  const j = parseJid(s);
  return [j.local, j.domain, j.resource];
}

function assertInvalid(s: string, part: JidPart): void {
  assert.throws(
    () => parseJid(s),
    (e: unknown) => {
      assert.ok(e instanceof JidError, `expected JidError for ${JSON.stringify(s)}, got ${String(e)}`);
      assert.equal(e.part, part, `wrong part for ${JSON.stringify(s)}: ${e.message}`);
      return true;
    },
  );
  assert.equal(tryParseJid(s), null);
}

describe('RFC 7622 §3.5 Table 1: valid JIDs', () => {
  const table: Array<[string, [string, string, string]]> = [
    ['juliet@example.com', ['juliet', 'example.com', '']], // a bare JID
    ['juliet@example.com/foo', ['juliet', 'example.com', 'foo']], // a full JID
    ['juliet@example.com/foo bar', ['juliet', 'example.com', 'foo bar']], // space in resourcepart
    ['juliet@example.com/foo@bar', ['juliet', 'example.com', 'foo@bar']], // '@' in resourcepart
    ['foo\\20bar@example.com', ['foo\\20bar', 'example.com', '']], // XEP-0106 escaped space
    ['fussball@example.com', ['fussball', 'example.com', '']],
    ['fußball@example.com', ['fußball', 'example.com', '']], // U+00DF stays (PVALID exception)
    ['π@example.com', ['π', 'example.com', '']],
    ['Σ@example.com/foo', ['σ', 'example.com', 'foo']], // capital sigma lowercased
    ['σ@example.com/foo', ['σ', 'example.com', 'foo']],
    ['ς@example.com/foo', ['ς', 'example.com', 'foo']], // final sigma: toLowerCase keeps it
    ['king@example.com/♚', ['king', 'example.com', '♚']], // symbol fine in resourcepart
    ['example.com', ['', 'example.com', '']],
    ['example.com/foobar', ['', 'example.com', 'foobar']],
    ['a.example.com/b@example.net', ['', 'a.example.com', 'b@example.net']],
  ];
  for (const [input, expected] of table) {
    it(JSON.stringify(input), () => {
      assert.deepEqual(parts(input), expected);
    });
  }

  it('leading space in resourcepart is valid (RFC 7622 erratum 4560)', () => {
    assert.deepEqual(parts('juliet@example.com/ foo'), ['juliet', 'example.com', ' foo']);
  });
});

describe('RFC 7622 §3.5 Table 2: invalid JIDs', () => {
  const table: Array<[string, JidPart]> = [
    ['"juliet"@example.com', 'local'], // quotation marks, §3.3.1
    ['foo bar@example.com', 'local'], // space in localpart
    ['@example.com/', 'local'], // zero-length localpart (and resourcepart)
    ['henryⅣ@example.com', 'local'], // ROMAN NUMERAL FOUR has a compatibility decomposition
    ['♚@example.com', 'local'], // symbol in localpart
    ['juliet@', 'domain'], // no domainpart
    ['/foobar', 'domain'], // resourcepart without domainpart
  ];
  for (const [input, part] of table) {
    it(JSON.stringify(input), () => assertInvalid(input, part));
  }
});

describe('splitting (RFC 7622 §3.1-§3.4)', () => {
  it('the first "/" starts the resourcepart, even before an "@"', () => {
    assert.deepEqual(parts('a/b@c'), ['', 'a', 'b@c']);
    assert.deepEqual(parts('server/resource@foo/bar'), ['', 'server', 'resource@foo/bar']);
  });
  it('a second "@" before the resource makes the domainpart invalid', () => {
    assertInvalid('a@b@c', 'domain');
    assertInvalid('user@@host', 'domain');
    assertInvalid('user@@host/resource', 'domain');
  });
  it('empty parts next to a separator are errors', () => {
    assertInvalid('@example.com', 'local');
    assertInvalid('a@b/', 'resource');
    assertInvalid('@/', 'local');
    assertInvalid('@', 'local');
    assertInvalid('/', 'domain');
    assertInvalid('node@/server', 'domain');
    assertInvalid('@/resource', 'local');
    assertInvalid('', 'jid');
  });
  it('separators produced by mapping do not split (fullwidth @ and /)', () => {
    // U+FF20 maps to '@' only after splitting, so it lands in the domain.
    assertInvalid('ｊ＠example.com', 'domain');
    // U+FF0F FULLWIDTH SOLIDUS in a resourcepart is just a character.
    assert.deepEqual(parts('a@b/x／y'), ['a', 'b', 'x／y']);
    // ...and in a localpart it width-maps to '/', which §3.3.1 forbids.
    assertInvalid('x／y@b', 'local');
  });
});

describe('localpart: UsernameCaseMapped (RFC 8265 §3.3)', () => {
  it('maps case to lower', () => {
    assert.equal(prepLocal('JuLiEt'), 'juliet');
    assert.equal(prepLocal('ÉLODIE'), 'élodie');
    assert.equal(prepLocal('ΟΔΟΣ'), 'οδος'); // toLowerCase final-sigma context
  });
  it('maps fullwidth letters to ASCII (width mapping)', () => {
    assert.equal(prepLocal('ＪＵＬＩＥＴ'), 'juliet');
    assert.equal(parseJid('ｊｕｌｉｅｔ@example.com').toString(), 'juliet@example.com');
  });
  it('maps halfwidth katakana to their normal forms', () => {
    // U+FF76 U+FF9E (halfwidth KA + voiced mark) -> U+30AB U+3099 -> NFC U+30AC.
    assert.equal(prepLocal('\uff76\uff9e'), '\u30ac');
  });
  it('normalizes to NFC', () => {
    assert.equal(prepLocal('e\u0301'), '\u00e9');
    assert.ok(parseJid('cafe\u0301@example.com').equals(parseJid('café@example.com')));
  });
  it('rejects the §3.3.1 characters', () => {
    for (const c of ['"', '&', "'", '/', ':', '<', '>', '@']) {
      assert.throws(() => prepLocal(`a${c}b`), JidError, c);
    }
  });
  it('rejects spaces, controls, symbols, compatibility characters', () => {
    for (const s of ['a b', 'a\u00a0b', 'a\tb', 'a\u0000', 'I♥U', 'ǅ', 'ﬁ', '①']) {
      assert.throws(() => prepLocal(s), JidError, JSON.stringify(s));
    }
  });
  it('accepts punctuation allowed by ASCII7 and letters of many scripts', () => {
    for (const s of ['a.b', 'a_b', 'a-b', 'a+tag', 'x!#$%', 'юлия', '朱丽叶', 'ジュリエット', '줄리엣', 'ज्योति']) {
      assert.doesNotThrow(() => prepLocal(s), JSON.stringify(s));
    }
  });
  it('applies the Bidi Rule to strings with RTL characters', () => {
    assert.equal(prepLocal('שלום'), 'שלום');
    assert.equal(prepLocal('سلام'), 'سلام');
    assert.equal(prepLocal('ש1'), 'ש1'); // RTL ending in EN
    assert.equal(prepLocal('a1'), 'a1'); // no RTL: rule not applied
    const failures = [
      '1ש', // rule 1: starts with EN
      'שa', // rule 2: L in an RTL string
      'aש', // rule 5: R in an LTR string
      'ש!', // rule 3: RTL ends with ON
      'ש1\u0661', // rule 4: EN and AN mixed
      'a\u0661', // rule 5: AN in an LTR string
    ];
    for (const s of failures) assert.throws(() => prepLocal(s), JidError, JSON.stringify(s));
  });
  it('checks contextual rules (RFC 5892 Appendix A)', () => {
    assert.equal(prepLocal('l·l'), 'l·l'); // MIDDLE DOT between two l
    assert.throws(() => prepLocal('a·b'), JidError);
    assert.equal(prepLocal('\u0915\u094d\u200d\u0937'), '\u0915\u094d\u200d\u0937'); // ZWJ after virama
    assert.throws(() => prepLocal('a\u200db'), JidError); // ZWJ elsewhere
    assert.equal(prepLocal('\u0628\u200c\u0628'), '\u0628\u200c\u0628'); // ZWNJ between dual-joining letters
    assert.throws(() => prepLocal('a\u200cb'), JidError);
    assert.equal(prepLocal('\u0375\u03b1'), '\u0375\u03b1'); // keraia before Greek
    assert.throws(() => prepLocal('\u0375a'), JidError);
    assert.equal(prepLocal('\u05d0\u05f3'), '\u05d0\u05f3'); // geresh after Hebrew
    assert.throws(() => prepLocal('a\u05f3'), JidError);
    assert.equal(prepLocal('ア・イ'), 'ア・イ'); // katakana middle dot with katakana
    assert.throws(() => prepLocal('a・b'), JidError);
    assert.throws(() => prepLocal('\u0660\u06f0'), JidError); // mixed Arabic-Indic digit sets
  });
});

describe('resourcepart: OpaqueString (RFC 8265 §4.2)', () => {
  it('preserves case and width', () => {
    assert.equal(prepResource('Balcony'), 'Balcony');
    assert.equal(prepResource('ＦＵＬＬ'), 'ＦＵＬＬ');
  });
  it('maps non-ASCII spaces to U+0020 and normalizes to NFC', () => {
    assert.equal(prepResource('a\u00a0b\u3000c'), 'a b c');
    assert.equal(prepResource('e\u0301'), '\u00e9');
  });
  it('allows symbols, punctuation, "@", "/" and RTL text', () => {
    for (const s of ['♚', 'a/b/c', 'x@y', 'שלום a', '😀 phone', ' lead', 'trail ']) {
      assert.equal(prepResource(s), s);
    }
  });
  it('rejects controls, default-ignorables, private use, unassigned, surrogates', () => {
    for (const s of ['a\nb', 'a\u0000', 'a\u007f', 'a\u200bb', 'a\u202eb', 'a\ue000', 'a\u0378', 'a\ud800', 'a\udc00b', 'a\ufffe']) {
      assert.throws(() => prepResource(s), JidError, JSON.stringify(s));
    }
  });
});

describe('domainpart (RFC 7622 §3.2)', () => {
  it('compares case-insensitively by storing lowercase', () => {
    assert.equal(prepDomain('EXAMPLE.com'), 'example.com');
    assert.ok(parseJid('juliet@EXAMPLE.COM').equals(parseJid('juliet@example.com')));
  });
  it('strips one trailing dot before anything else', () => {
    assert.equal(prepDomain('example.com.'), 'example.com');
    assert.throws(() => prepDomain('example.com..'), JidError);
    assert.throws(() => prepDomain('.'), JidError);
  });
  it('turns IDNs into U-labels; A-labels and U-labels give the same JID', () => {
    assert.equal(prepDomain('bücher.example'), 'bücher.example');
    assert.equal(prepDomain('xn--bcher-kva.example'), 'bücher.example');
    assert.equal(prepDomain('XN--BCHER-KVA.EXAMPLE.'), 'bücher.example');
    assert.equal(prepDomain('BÜCHER.example'), 'bücher.example');
    assert.ok(parseJid('a@xn--bcher-kva.example').equals(parseJid('a@bücher.example')));
    assert.equal(prepDomain('ｅｘａｍｐｌｅ．ｃｏｍ'), 'example.com'); // width + ideographic full stop
    assert.equal(prepDomain('faß.de'), 'faß.de'); // non-transitional
  });
  it('rejects what IDNA2008 rejects', () => {
    const bad = [
      'ex_ample.com', // not LDH (STD3)
      'a b.com',
      '-abc.com', // leading hyphen
      'abc-.com',
      'ab--cd.com', // reserved label
      'xn--zz.com', // bad punycode
      'a..b', // empty label
      '.a',
      '💩.la', // UTS #46 allows emoji; IDNA2008 does not
      'xn--ls8h.la',
      '1ا.com', // Bidi Rule
      'a\u200db.com', // ZWJ without virama
      'a@b',
      'a*b.com',
      'a\u0000b',
    ];
    for (const d of bad) assert.throws(() => prepDomain(d), JidError, JSON.stringify(d));
  });
  it('accepts IP literals', () => {
    assert.equal(prepDomain('192.0.2.1'), '192.0.2.1');
    assert.equal(prepDomain('[::1]'), '[::1]');
    assert.equal(prepDomain('[2001:DB8::1]'), '[2001:db8::1]');
    assert.equal(prepDomain('[::ffff:192.0.2.1]'), '[::ffff:192.0.2.1]');
    assert.deepEqual(parts('juliet@[::1]/r'), ['juliet', '[::1]', 'r']);
    for (const d of ['[1.2.3.4]', '[::1', '[fe80::1%eth0]', '[v1.x]', '[]', '[::g]']) {
      assert.throws(() => prepDomain(d), JidError, d);
    }
  });
  it('accepts hostnames without dots', () => {
    assert.equal(prepDomain('localhost'), 'localhost');
  });
});

describe('length limits (RFC 7622 §3: 1023 octets per part)', () => {
  it('localpart', () => {
    assert.equal(prepLocal('a'.repeat(1023)).length, 1023);
    assert.throws(() => prepLocal('a'.repeat(1024)), JidError);
    assert.doesNotThrow(() => prepLocal('ü'.repeat(511))); // 1022 octets
    assert.throws(() => prepLocal('ü'.repeat(512)), JidError); // 1024 octets
    assert.throws(() => prepLocal('€'.repeat(342)), JidError); // 1026 octets
  });
  it('resourcepart', () => {
    assert.equal(prepResource('r'.repeat(1023)).length, 1023);
    assert.throws(() => prepResource('r'.repeat(1024)), JidError);
    assert.throws(() => prepResource('😀'.repeat(256)), JidError); // 1024 octets
  });
  it('domainpart and its labels', () => {
    const label = 'a'.repeat(63);
    assert.equal(prepDomain(label + '.com'), label + '.com');
    assert.throws(() => prepDomain('a'.repeat(64) + '.com'), JidError);
    const d1023 = Array(16).fill(label).join('.'); // 16 × 63 + 15 = 1023
    assert.equal(d1023.length, 1023);
    assert.equal(prepDomain(d1023), d1023);
    assert.equal(prepDomain(d1023 + '.'), d1023); // trailing dot does not count
    assert.throws(() => prepDomain('b.' + d1023), JidError);
  });
  it('labels are limited to 63 octets in A-label form', () => {
    const cjk = (n: number): string => String.fromCodePoint(...Array.from({ length: n }, (_, i) => 0x4e00 + i * 997));
    assert.doesNotThrow(() => prepDomain(cjk(19) + '.example')); // xn-- form is 61 octets
    assert.throws(() => prepDomain(cjk(20) + '.example'), JidError); // 60 octets of UTF-8, 64 as A-label
  });
});

describe('nasty inputs', () => {
  it('10,000-character strings are rejected quickly', () => {
    const big = 'a'.repeat(10_000);
    const start = process.hrtime.bigint();
    assertInvalid(big, 'jid');
    assertInvalid(`${big}@example.com`, 'jid');
    assertInvalid(`juliet@example.com/${'ü'.repeat(5000)}`, 'resource');
    assert.throws(() => prepLocal(big), JidError);
    assert.throws(() => prepDomain(big), JidError);
    assert.throws(() => prepResource(big), JidError);
    assert.throws(() => prepDomain('ü'.repeat(2000)), JidError);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    assert.ok(ms < 200, `took ${ms} ms`);
  });
  it('control characters anywhere', () => {
    assertInvalid('jul\u0000iet@example.com', 'local');
    assertInvalid('juliet@exa\u0001mple.com', 'domain');
    assertInvalid('juliet@example.com/ba\u001bl', 'resource');
    assertInvalid('juliet@example.com/line\r\nbreak', 'resource');
  });
  it('zero-width and invisible characters', () => {
    assertInvalid('jul\u200diet@example.com', 'local'); // ZWJ, no virama
    assertInvalid('jul\u200biet@example.com', 'local'); // ZERO WIDTH SPACE
    assertInvalid('juliet@example.com/a\u2060b', 'resource'); // WORD JOINER
    assertInvalid('\ufeffjuliet@example.com', 'local'); // BOM
    assertInvalid('juliet@example.com/\u202egnp.exe', 'resource'); // RTL override
  });
  it('unpaired surrogates', () => {
    assertInvalid('\ud800@example.com', 'local');
    assertInvalid('juliet@\udfff.com', 'domain');
    assertInvalid('juliet@example.com/\ud83d', 'resource');
    assert.doesNotThrow(() => parseJid('juliet@example.com/\ud83d\ude00')); // a proper pair is fine
  });
  it('non-string input to tryParseJid does not throw', () => {
    assert.equal(tryParseJid(undefined as unknown as string), null);
  });
  it('never throws anything but JidError, and accepted JIDs are stable', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), (a, b) => {
        for (const s of [a, b, `${a}@${b}`, `${b}@example.com/${a}`, `${a}@example.com`]) {
          let j: JID;
          try {
            j = parseJid(s);
          } catch (e) {
            assert.ok(e instanceof JidError, String(e));
            continue;
          }
          // Idempotence: the string form of a prepared JID parses to itself.
          const again = parseJid(j.toString());
          assert.ok(again.equals(j), `${JSON.stringify(s)} -> ${j.toString()} -> ${again.toString()}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('JID class', () => {
  it('toString, toBareString, bare, isBare', () => {
    const full = parseJid('Juliet@Example.com/Balcony');
    assert.equal(full.toString(), 'juliet@example.com/Balcony');
    assert.equal(String(full), 'juliet@example.com/Balcony');
    assert.equal(`${full}`, 'juliet@example.com/Balcony');
    assert.equal(JSON.stringify({ to: full }), '{"to":"juliet@example.com/Balcony"}');
    assert.equal(full.toBareString(), 'juliet@example.com');
    assert.equal(full.isBare(), false);
    const bare = full.bare();
    assert.equal(bare.isBare(), true);
    assert.equal(bare.toString(), 'juliet@example.com');
    assert.equal(full.bare(), bare, 'bare() is cached');
    assert.equal(bare.bare(), bare, 'bare() of a bare JID is itself');
    const domain = parseJid('example.com/x');
    assert.equal(domain.toBareString(), 'example.com');
    assert.equal(domain.local, '');
  });
  it('equals compares prepared parts', () => {
    const a = parseJid('juliet@example.com/Balcony');
    assert.ok(a.equals(parseJid('JULIET@EXAMPLE.COM./Balcony')));
    assert.ok(!a.equals(parseJid('juliet@example.com/balcony')), 'resourcepart is case-sensitive');
    assert.ok(!a.equals(a.bare()));
    assert.ok(!parseJid('example.com').equals(parseJid('a@example.com')));
  });
  it('withResource prepares the new resource', () => {
    const a = parseJid('juliet@example.com');
    const b = a.withResource('Phone\u00a01');
    assert.equal(b.toString(), 'juliet@example.com/Phone 1');
    assert.equal(b.withResource(''), b.bare());
    assert.throws(() => a.withResource('\u0000'), JidError);
  });
  it('makeJid prepares parts; empty local/resource mean absent', () => {
    assert.equal(makeJid('Juliet', 'EXAMPLE.com', 'r').toString(), 'juliet@example.com/r');
    assert.equal(makeJid('', 'example.com').toString(), 'example.com');
    assert.equal(makeJid('a', 'example.com', '').toString(), 'a@example.com');
    assert.throws(() => makeJid('a b', 'example.com'), (e: unknown) => e instanceof JidError && e.part === 'local');
    assert.throws(() => makeJid('a', ''), (e: unknown) => e instanceof JidError && e.part === 'domain');
    assert.throws(() => makeJid('a', 'b', '\n'), (e: unknown) => e instanceof JidError && e.part === 'resource');
  });
  it('JidError carries the part and is an Error', () => {
    try {
      parseJid('a@b/\u0000');
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof Error);
      assert.ok(e instanceof JidError);
      assert.equal(e.name, 'JidError');
      assert.equal(e.part, 'resource');
    }
  });
});
