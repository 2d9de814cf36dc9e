import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { derivedPropertyName, enforceOpaqueString, enforceUsernameCaseMapped, idnaPropertyName } from './precis.js';
import { UNICODE_TABLES_VERSION, WIDTH_MAP_PAIRS } from './unicode-tables.js';

describe('PRECIS derived property (RFC 8264 §8)', () => {
  // Spot checks against the IANA PRECIS derived property table.
  const expected: Array<[number, string]> = [
    [0x0020, 'FREE_PVAL'], // SPACE: Spaces
    [0x0021, 'PVALID'], // ASCII7
    [0x0041, 'PVALID'],
    [0x007f, 'DISALLOWED'], // control
    [0x00a0, 'FREE_PVAL'], // NBSP: HasCompat
    [0x00ad, 'DISALLOWED'], // SOFT HYPHEN: Default_Ignorable
    [0x00b7, 'CONTEXTO'], // MIDDLE DOT exception
    [0x00df, 'PVALID'], // ß exception
    [0x0378, 'UNASSIGNED'],
    [0x03c2, 'PVALID'], // ς exception
    [0x0640, 'DISALLOWED'], // TATWEEL exception
    [0x0660, 'CONTEXTO'],
    [0x1100, 'DISALLOWED'], // old Hangul jamo
    [0x200c, 'CONTEXTJ'],
    [0x200d, 'CONTEXTJ'],
    [0x2163, 'FREE_PVAL'], // ROMAN NUMERAL FOUR: HasCompat
    [0x265a, 'FREE_PVAL'], // BLACK CHESS KING: Symbols
    [0x3007, 'PVALID'],
    [0xac00, 'PVALID'], // Hangul syllable
    [0xd800, 'DISALLOWED'], // surrogate
    [0xe000, 'DISALLOWED'], // private use
    [0xfdd0, 'DISALLOWED'], // noncharacter
    [0xff21, 'FREE_PVAL'], // FULLWIDTH A: HasCompat
    [0x1f600, 'FREE_PVAL'], // emoji: Symbols
    [0xe0001, 'DISALLOWED'], // LANGUAGE TAG: Default_Ignorable
  ];
  for (const [cp, prop] of expected) {
    it(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} is ${prop}`, () => {
      assert.equal(derivedPropertyName(cp), prop);
    });
  }
});

describe('IDNA2008 derived property (RFC 5892)', () => {
  const expected: Array<[number, string]> = [
    [0x0061, 'PVALID'],
    [0x0041, 'DISALLOWED'], // uppercase is Unstable
    [0x002d, 'PVALID'],
    [0x005f, 'DISALLOWED'],
    [0x00df, 'PVALID'],
    [0x00fc, 'PVALID'],
    [0x00b7, 'CONTEXTO'],
    [0x200d, 'CONTEXTJ'],
    [0x1f4a9, 'DISALLOWED'], // emoji
    [0x2665, 'DISALLOWED'],
    [0x20d0, 'DISALLOWED'], // IgnorableBlocks
    [0x4e00, 'PVALID'],
  ];
  for (const [cp, prop] of expected) {
    it(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} is ${prop}`, () => {
      assert.equal(idnaPropertyName(cp), prop);
    });
  }
});

describe('generated Unicode tables', () => {
  it('match the Unicode version of the runtime', (t) => {
    const runtime = process.versions.unicode ?? '';
    if (!UNICODE_TABLES_VERSION.startsWith(runtime)) {
      // Not fatal (the tables change rarely) but worth regenerating.
      t.diagnostic(`tables are Unicode ${UNICODE_TABLES_VERSION}, runtime is ${runtime}: run scripts/gen-unicode-tables.mjs`);
    }
  });
  it('width mapping keys are all <wide>/<narrow> compatibility characters', () => {
    for (let i = 0; i < WIDTH_MAP_PAIRS.length; i += 2) {
      const from = String.fromCodePoint(WIDTH_MAP_PAIRS[i]!);
      const to = String.fromCodePoint(WIDTH_MAP_PAIRS[i + 1]!);
      assert.equal(from.normalize('NFKC'), to.normalize('NFKC'), from);
    }
  });
});

describe('profiles are idempotent (RFC 8264 §7)', () => {
  it('UsernameCaseMapped and OpaqueString', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        for (const enforce of [enforceUsernameCaseMapped, enforceOpaqueString]) {
          let once: string;
          try {
            once = enforce(s);
          } catch {
            continue;
          }
          assert.equal(enforce(once), once, JSON.stringify(s));
        }
      }),
      { numRuns: 5000 },
    );
  });
});
