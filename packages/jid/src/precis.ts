/**
 * PRECIS (RFC 8264) string classes and the two RFC 8265 profiles that
 * RFC 7622 uses for JIDs: UsernameCaseMapped (localpart, RFC 7622 §3.3) and
 * OpaqueString (resourcepart, RFC 7622 §3.4).  Also the IDNA2008 (RFC 5892)
 * derived property, which shares the category machinery and is used to hold
 * domainparts to IDNA2008 after UTS #46 mapping (RFC 7622 §3.2).
 *
 * There is no maintained PRECIS library on npm, so the derived property is
 * computed here from Unicode properties: JavaScript's \p{...} escapes (backed
 * by Node's ICU) for General_Category, Script, Default_Ignorable_Code_Point,
 * Join_Control, ..., String.prototype.normalize for NFC/NFKC and HasCompat,
 * and small generated tables (./unicode-tables.ts) for the properties regular
 * expressions cannot reach (Bidi_Class, Joining_Type, width mappings).
 *
 * Internal module: jid.ts turns PrecisError into JidError.
 */
import {
  BIDI_AN,
  BIDI_EN,
  BIDI_ES_CS_ET_ON_BN,
  BIDI_L,
  BIDI_NSM,
  BIDI_R_AL,
  JT_L_D,
  JT_R_D,
  JT_T,
  WIDTH_MAP_PAIRS,
} from './unicode-tables.js';

/** A string failed a PRECIS / IDNA rule; `message` says which. */
export class PrecisError extends Error {
  override readonly name = 'PrecisError';
}

// Derived property values (RFC 8264 §8).  ID_DIS / FREE_PVAL are folded into
// one value, FREE: PVALID in FreeformClass, DISALLOWED in IdentifierClass.
const PVALID = 0;
const FREE = 1;
const CONTEXTJ = 2;
const CONTEXTO = 3;
const DISALLOWED = 4;
const UNASSIGNED = 5;
type Derived = typeof PVALID | typeof FREE | typeof CONTEXTJ | typeof CONTEXTO | typeof DISALLOWED | typeof UNASSIGNED;

const RE_UNASSIGNED = /\p{Cn}/u;
const RE_NONCHARACTER = /\p{Noncharacter_Code_Point}/u;
const RE_JOIN_CONTROL = /\p{Join_Control}/u;
const RE_DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
const RE_CONTROL = /\p{Cc}/u;
// RFC 5892 §2.1 LetterDigits: Ll, Lu, Lo, Nd, Lm, Mn, Mc.
const RE_LETTER_DIGITS = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u;
// RFC 8264 §9.18 OtherLetterDigits: Lt, Nl, No, Me.
const RE_OTHER_LETTER_DIGITS = /[\p{Lt}\p{Nl}\p{No}\p{Me}]/u;
// RFC 8264 §9.14-9.16 Spaces (Zs), Symbols (Sm Sc Sk So), Punctuation (P*).
const RE_SPACES_SYMBOLS_PUNCT = /[\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{P}]/u;
// RFC 5892 §2.2 Unstable: toNFKC(toCaseFold(toNFKC(cp))) != cp.  The
// Changes_When_NFKC_Casefolded property is exactly that, except that it also
// covers Default_Ignorable_Code_Point, which IDNA2008 disallows anyway.
const RE_UNSTABLE = /\p{Changes_When_NFKC_Casefolded}/u;
// RFC 5892 §2.3 IgnorableProperties: Default_Ignorable, White_Space, Noncharacter.
const RE_WHITE_SPACE = /\p{White_Space}/u;
const RE_GREEK = /\p{Script=Greek}/u;
const RE_HEBREW = /\p{Script=Hebrew}/u;
const RE_HIRA_KATA_HAN = /[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u;

/**
 * RFC 5892 §2.6 Exceptions (shared by IDNA2008 and PRECIS, RFC 8264 §9.6).
 * Returns undefined for code points that are not exceptions.
 */
function exception(cp: number): Derived | undefined {
  switch (cp) {
    case 0x00df: case 0x03c2: case 0x06fd: case 0x06fe: case 0x0f0b: case 0x3007:
      return PVALID;
    case 0x00b7: case 0x0375: case 0x05f3: case 0x05f4: case 0x30fb:
      return CONTEXTO;
    case 0x0640: case 0x07fa: case 0x302e: case 0x302f: case 0x303b:
      return DISALLOWED;
  }
  if ((cp >= 0x0660 && cp <= 0x0669) || (cp >= 0x06f0 && cp <= 0x06f9)) return CONTEXTO;
  if (cp >= 0x3031 && cp <= 0x3035) return DISALLOWED;
  return undefined;
}

/**
 * RFC 5892 §2.9 OldHangulJamo: Hangul_Syllable_Type L, V or T.  JavaScript
 * has no \p{Hangul_Syllable_Type}; these ranges are stable since Unicode 5.2.
 */
function isOldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) ||
    (cp >= 0xd7b0 && cp <= 0xd7c6) || (cp >= 0xd7cb && cp <= 0xd7fb);
}

/** HasCompat (RFC 8264 §9.17): toNFKC(cp) != cp. */
function hasCompat(ch: string): boolean {
  return ch.normalize('NFKC') !== ch;
}

/** PRECIS derived property of one code point (RFC 8264 §8, in that order). */
function precisProperty(cp: number, ch: string): Derived {
  const exc = exception(cp);
  if (exc !== undefined) return exc;
  // BackwardCompatible (RFC 8264 §9.7) is empty.
  if (RE_UNASSIGNED.test(ch) && !RE_NONCHARACTER.test(ch)) return UNASSIGNED;
  if (cp >= 0x21 && cp <= 0x7e) return PVALID; // ASCII7
  if (RE_JOIN_CONTROL.test(ch)) return CONTEXTJ;
  if (isOldHangulJamo(cp)) return DISALLOWED;
  // PrecisIgnorableProperties (RFC 8264 §9.13).
  if (RE_DEFAULT_IGNORABLE.test(ch) || RE_NONCHARACTER.test(ch)) return DISALLOWED;
  if (RE_CONTROL.test(ch)) return DISALLOWED;
  if (hasCompat(ch)) return FREE;
  if (RE_LETTER_DIGITS.test(ch)) return PVALID;
  if (RE_OTHER_LETTER_DIGITS.test(ch)) return FREE;
  if (RE_SPACES_SYMBOLS_PUNCT.test(ch)) return FREE;
  // Everything else (surrogates, private use, unlisted format characters).
  return DISALLOWED;
}

/** IDNA2008 derived property of one code point (RFC 5892 §3, in that order). */
function idnaProperty(cp: number, ch: string): Derived {
  const exc = exception(cp);
  if (exc !== undefined) return exc;
  if (RE_UNASSIGNED.test(ch) && !RE_NONCHARACTER.test(ch)) return UNASSIGNED;
  // LDH (RFC 5892 §2.5): lowercase letters, digits, hyphen.
  if ((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x2d) return PVALID;
  if (RE_JOIN_CONTROL.test(ch)) return CONTEXTJ;
  if (RE_UNSTABLE.test(ch)) return DISALLOWED;
  if (RE_DEFAULT_IGNORABLE.test(ch) || RE_WHITE_SPACE.test(ch) || RE_NONCHARACTER.test(ch)) return DISALLOWED;
  // IgnorableBlocks (RFC 5892 §2.4).
  if ((cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0x1d100 && cp <= 0x1d24f)) return DISALLOWED;
  if (isOldHangulJamo(cp)) return DISALLOWED;
  if (RE_LETTER_DIGITS.test(ch)) return PVALID;
  return DISALLOWED;
}

// ---------------------------------------------------------------------------
// Contextual rules (RFC 5892 Appendix A, referenced by RFC 8264 §9.8/§9.9).

const VIRAMA_PROBE_LOW = '\u3099'; // Canonical_Combining_Class 8
const VIRAMA_PROBE_HIGH = '\u05b0'; // Canonical_Combining_Class 10

/**
 * Canonical_Combining_Class(ch) == Virama (9).  JavaScript exposes no ccc
 * property, but canonical reordering does: NFD sorts adjacent marks by ccc,
 * so a mark sorts after a ccc-8 mark and before a ccc-10 mark exactly when
 * its ccc is 9.  This uses the runtime's own Unicode data, so it never lags.
 */
function isVirama(ch: string | undefined): boolean {
  if (ch === undefined || ch === VIRAMA_PROBE_LOW || ch === VIRAMA_PROBE_HIGH) return false;
  return (ch + VIRAMA_PROBE_LOW).normalize('NFD') === VIRAMA_PROBE_LOW + ch &&
    (VIRAMA_PROBE_HIGH + ch).normalize('NFD') === ch + VIRAMA_PROBE_HIGH;
}

/** Appendix A.1: ZWNJ between (L|D) T* and T* (R|D) joining types. */
function zwnjJoiningContext(cps: readonly string[], i: number): boolean {
  let j = i - 1;
  while (j >= 0 && JT_T.test(cps[j]!)) j--;
  if (j < 0 || !JT_L_D.test(cps[j]!)) return false;
  let k = i + 1;
  while (k < cps.length && JT_T.test(cps[k]!)) k++;
  return k < cps.length && JT_R_D.test(cps[k]!);
}

/** Returns true when the contextual rule for cps[i] is satisfied. */
function contextRuleHolds(cps: readonly string[], i: number): boolean {
  const ch = cps[i]!;
  const cp = ch.codePointAt(0)!;
  const before = cps[i - 1];
  const after = cps[i + 1];
  switch (cp) {
    case 0x200c: // ZERO WIDTH NON-JOINER, A.1
      return isVirama(before) || zwnjJoiningContext(cps, i);
    case 0x200d: // ZERO WIDTH JOINER, A.2
      return isVirama(before);
    case 0x00b7: // MIDDLE DOT, A.3: only between two 'l' (Catalan ela geminada)
      return before === 'l' && after === 'l';
    case 0x0375: // GREEK LOWER NUMERAL SIGN, A.4: followed by Greek
      return after !== undefined && RE_GREEK.test(after);
    case 0x05f3: // HEBREW PUNCTUATION GERESH, A.5
    case 0x05f4: // HEBREW PUNCTUATION GERSHAYIM, A.6: preceded by Hebrew
      return before !== undefined && RE_HEBREW.test(before);
    case 0x30fb: // KATAKANA MIDDLE DOT, A.7: some Hiragana/Katakana/Han present
      return cps.some((c) => c !== '\u30fb' && RE_HIRA_KATA_HAN.test(c));
  }
  if (cp >= 0x0660 && cp <= 0x0669) {
    // ARABIC-INDIC DIGITS, A.8: not mixed with extended Arabic-Indic digits.
    return !cps.some((c) => c >= '\u06f0' && c <= '\u06f9');
  }
  if (cp >= 0x06f0 && cp <= 0x06f9) {
    // EXTENDED ARABIC-INDIC DIGITS, A.9: not mixed with Arabic-Indic digits.
    return !cps.some((c) => c >= '\u0660' && c <= '\u0669');
  }
  return false; // a CONTEXTJ/CONTEXTO code point without a rule is not valid
}

function hex(cp: number): string {
  return 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');
}

type StringClass = 'identifier' | 'freeform' | 'idna';

/**
 * Checks every code point of `s` against a string class (RFC 8264 §4.2.2,
 * §4.3.2) or IDNA2008 (RFC 5891 §5.4), including contextual rules.
 */
function checkClass(s: string, cls: StringClass): void {
  const cps = Array.from(s);
  for (let i = 0; i < cps.length; i++) {
    const ch = cps[i]!;
    const cp = ch.codePointAt(0)!;
    const prop = cls === 'idna' ? idnaProperty(cp, ch) : precisProperty(cp, ch);
    switch (prop) {
      case PVALID:
        continue;
      case FREE:
        if (cls === 'freeform') continue;
        throw new PrecisError(`code point ${hex(cp)} is not allowed in the ${cls === 'idna' ? 'IDNA2008' : 'IdentifierClass'} (RFC 8264 §9)`);
      case CONTEXTJ:
      case CONTEXTO:
        if (contextRuleHolds(cps, i)) continue;
        throw new PrecisError(`code point ${hex(cp)} is not allowed in this context (RFC 5892 Appendix A)`);
      case UNASSIGNED:
        throw new PrecisError(`code point ${hex(cp)} is unassigned`);
      default:
        throw new PrecisError(`code point ${hex(cp)} is disallowed`);
    }
  }
}

// ---------------------------------------------------------------------------
// Bidi Rule (RFC 5893 §2).

const B_L = 0, B_RAL = 1, B_AN = 2, B_EN = 3, B_NEUTRAL = 4, B_NSM = 5, B_OTHER = 6;
type BidiClass = typeof B_L | typeof B_RAL | typeof B_AN | typeof B_EN | typeof B_NEUTRAL | typeof B_NSM | typeof B_OTHER;

function bidiClass(ch: string): BidiClass {
  if (BIDI_L.test(ch)) return B_L;
  if (BIDI_R_AL.test(ch)) return B_RAL;
  if (BIDI_NSM.test(ch)) return B_NSM;
  if (BIDI_EN.test(ch)) return B_EN;
  if (BIDI_AN.test(ch)) return B_AN;
  if (BIDI_ES_CS_ET_ON_BN.test(ch)) return B_NEUTRAL; // ES, CS, ET, ON, BN
  return B_OTHER; // B, S, WS, LRE, LRO, RLE, RLO, PDF, LRI, RLI, FSI, PDI
}

/** True if `s` has a right-to-left code point (Bidi_Class R, AL or AN). */
export function hasRtl(s: string): boolean {
  return BIDI_R_AL.test(s) || BIDI_AN.test(s);
}

/** The six conditions of the Bidi Rule (RFC 5893 §2) for a whole string. */
export function checkBidiRule(s: string): void {
  const classes = Array.from(s, bidiClass);
  const first = classes[0];
  // 1. The first character must be L, R or AL.
  if (first !== B_L && first !== B_RAL) throw new PrecisError('Bidi Rule 1: must start with a strong character');
  const rtl = first === B_RAL;
  let end = classes.length - 1;
  while (end > 0 && classes[end] === B_NSM) end--;
  const last = classes[end];
  let hasEN = false;
  let hasAN = false;
  for (const c of classes) {
    if (rtl) {
      // 2. RTL: only R, AL, AN, EN, ES, CS, ET, ON, BN, NSM.
      if (c === B_L || c === B_OTHER) throw new PrecisError('Bidi Rule 2: character not allowed in an RTL string');
    } else if (c === B_RAL || c === B_AN || c === B_OTHER) {
      // 5. LTR: only L, EN, ES, CS, ET, ON, BN, NSM.
      throw new PrecisError('Bidi Rule 5: character not allowed in an LTR string');
    }
    if (c === B_EN) hasEN = true;
    if (c === B_AN) hasAN = true;
  }
  if (rtl) {
    // 3. RTL must end with R, AL, EN or AN, then any NSM.
    if (last !== B_RAL && last !== B_EN && last !== B_AN) throw new PrecisError('Bidi Rule 3: RTL string must end with R, AL, EN or AN');
    // 4. RTL must not mix EN and AN.
    if (hasEN && hasAN) throw new PrecisError('Bidi Rule 4: RTL string mixes European and Arabic numbers');
  } else if (last !== B_L && last !== B_EN) {
    // 6. LTR must end with L or EN, then any NSM.
    throw new PrecisError('Bidi Rule 6: LTR string must end with L or EN');
  }
}

// ---------------------------------------------------------------------------
// Profiles (RFC 8265).

const WIDTH_MAP: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (let i = 0; i < WIDTH_MAP_PAIRS.length; i += 2) {
    m.set(WIDTH_MAP_PAIRS[i]!, String.fromCodePoint(WIDTH_MAP_PAIRS[i + 1]!));
  }
  return m;
})();
// Every <wide>/<narrow> code point lies in one of these blocks; cheap pre-test.
const RE_MAYBE_WIDE_NARROW = /[\u20a9\u3000\uff01-\uffee]/u;

/** Width mapping rule (RFC 8264 §5.2.1): fullwidth/halfwidth -> decomposition. */
function widthMap(s: string): string {
  if (!RE_MAYBE_WIDE_NARROW.test(s)) return s;
  let out = '';
  for (const ch of s) out += WIDTH_MAP.get(ch.codePointAt(0)!) ?? ch;
  return out;
}

// Every Zs code point except U+0020 (RFC 8265 §4.2.1 step 2).
const RE_NON_ASCII_SPACE = /(?! )\p{Zs}/gu;

/**
 * UsernameCaseMapped profile (RFC 8265 §3.3): width mapping, case mapping
 * with toLowerCase() (§3.3.1 step 3 prefers it to case folding), NFC, the
 * Bidi Rule for strings that contain RTL code points, then the
 * IdentifierClass behavioural rules (RFC 8264 §7 order of operations).
 */
export function enforceUsernameCaseMapped(input: string): string {
  const s = widthMap(input).toLowerCase().normalize('NFC');
  if (s.length === 0) throw new PrecisError('empty string');
  if (hasRtl(s)) checkBidiRule(s);
  checkClass(s, 'identifier');
  return s;
}

/**
 * OpaqueString profile (RFC 8265 §4.2): map non-ASCII spaces to U+0020,
 * NFC, then the FreeformClass behavioural rules; no width or case mapping
 * and no directionality rule.
 */
export function enforceOpaqueString(input: string): string {
  // RFC 8265 §4.2.1 additional mapping: Zs other than U+0020 -> U+0020.
  const s = input.replace(RE_NON_ASCII_SPACE, ' ').normalize('NFC');
  if (s.length === 0) throw new PrecisError('empty string');
  checkClass(s, 'freeform');
  return s;
}

/**
 * Checks one U-label (already UTS #46-mapped and NFC) against the IDNA2008
 * derived property (RFC 5892) including CONTEXTJ/CONTEXTO rules (RFC 5891
 * §5.4).  UTS #46 alone accepts some code points IDNA2008 disallows (e.g.
 * emoji and other symbols); RFC 7622 §3.2.1 requires IDNA2008 labels.
 */
export function checkIdna2008Label(label: string): void {
  checkClass(label, 'idna');
}

/** Test hook: the PRECIS derived property name of a code point. */
export function derivedPropertyName(cp: number): string {
  const names = ['PVALID', 'FREE_PVAL', 'CONTEXTJ', 'CONTEXTO', 'DISALLOWED', 'UNASSIGNED'];
  return names[precisProperty(cp, String.fromCodePoint(cp))]!;
}

/** Test hook: the IDNA2008 derived property name of a code point. */
export function idnaPropertyName(cp: number): string {
  const names = ['PVALID', 'DISALLOWED', 'CONTEXTJ', 'CONTEXTO', 'DISALLOWED', 'UNASSIGNED'];
  return names[idnaProperty(cp, String.fromCodePoint(cp))]!;
}
