/**
 * XMPP XML stream parser (RFC 6120 §4, §11).
 *
 * Why not ltx's own tokenizer (`ltx/src/parsers/ltx.js`)? It silently skips
 * comments and processing instructions (RFC 6120 §11.1 says close the stream
 * with <restricted-xml/>), accepts unknown entities, does no name/attribute
 * syntax checks, re-concatenates the unparsed remainder with every chunk
 * (quadratic on a large text node fed in small chunks), decodes each chunk on
 * its own (a UTF-8 character split between chunks becomes U+FFFD) and knows
 * nothing about byte positions, so it cannot enforce a stanza size limit
 * while reading. ltx's `Parser` builds one document tree, not a stream of
 * depth-1 children. So the tokenizer below is our own, byte-oriented, and the
 * trees it builds are plain ltx `Element`s, which is what the rest of Hyphae
 * consumes.
 *
 * Design:
 * - The scanner works on raw bytes. Every structural character of XML is
 *   ASCII and UTF-8 never uses bytes < 0x80 inside a multi-byte sequence, so
 *   byte scanning is safe, byte counts for the size limit are exact and free,
 *   and a character split between two chunks is never decoded in halves: a
 *   token (tag, text run, CDATA section) is decoded only once it is complete.
 *   That is why no StringDecoder is needed: no partial token is ever decoded.
 * - A token that spans chunks is kept as copied byte slices and joined once
 *   (no per-byte or per-chunk string concatenation).
 * - Invalid UTF-8: Node's decoder turns every invalid sequence into U+FFFD;
 *   only when a decoded token contains U+FFFD do we check the bytes with
 *   `isUtf8` (simdutf), so valid input pays one regex test per token.
 * - Limits are checked against absolute byte offsets before a byte is
 *   consumed, so a stanza is rejected at the first byte past the limit, not
 *   after buffering it.
 */
import { isUtf8 } from 'node:buffer';
import { Element } from 'ltx';
import { defaultLimits, XmlStreamError } from './types.js';
import type { StreamParserHandlers, StreamParserLimits } from './types.js';

/**
 * Buffer#toString(enc, a, b) validates its arguments and looks the encoding
 * up on every call; on the small tokens of a stanza that wrapper costs more
 * than the decoding. Node has exposed the underlying utf8Slice/latin1Slice on
 * Buffer.prototype since its first releases; fall back to toString if not.
 */
interface SliceBuffer {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}
const hasSlices =
  typeof (Buffer.prototype as unknown as Partial<SliceBuffer>).utf8Slice === 'function' &&
  typeof (Buffer.prototype as unknown as Partial<SliceBuffer>).latin1Slice === 'function';
const utf8 = hasSlices
  ? (b: Buffer, s: number, e: number): string => (b as unknown as SliceBuffer).utf8Slice(s, e)
  : (b: Buffer, s: number, e: number): string => utf8(b, s, e);
const latin1 = hasSlices
  ? (b: Buffer, s: number, e: number): string => (b as unknown as SliceBuffer).latin1Slice(s, e)
  : (b: Buffer, s: number, e: number): string => latin1(b, s, e);

/** Raised internally and caught in write(); a handler can never throw one (not exported). */
class Violation extends XmlStreamError {}

// Scanner states.
const S_OUTSIDE = 0; // depth 0: prolog, between stanzas, epilog (whitespace or '<')
const S_TEXT = 1; // character data inside a stanza
const S_LT = 2; // just after '<'
const S_TAG = 3; // inside a start or end tag, looking for its '>'
const S_BANG = 4; // after '<!': comment, CDATA or DTD markup
const S_CDATA = 5; // inside <![CDATA[ … ]]>
const S_DECL = 6; // inside the XML declaration <?xml … ?>
const S_BOM = 7; // inside a UTF-8 byte order mark at the start of a stream
const S_ERROR = 8; // a violation was reported (or a handler threw): ignore input until reset()
const S_CLOSED = 9; // end() was called cleanly: ignore input until reset()

// Where the scanner is in the document.
const C_PROLOG = 0; // before the stream header
const C_STREAM = 1; // inside <stream:stream>, between stanzas
const C_CONTENT = 2; // inside a stanza
const C_EPILOG = 3; // after </stream:stream>

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QMARK = 0x3f;
const EQ = 0x3d;
const QUOT = 0x22;
const APOS = 0x27;
const COLON = 0x3a;
const RSQB = 0x5d;
const AMP = 0x26;

/** ASCII part of XML 1.0 NameStartChar / NameChar (§2.3); bytes >= 0x80 are checked after decoding. */
const NAME_START = new Uint8Array(128);
const NAME_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const start = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === COLON;
  NAME_START[c] = start ? 1 : 0;
  NAME_CHAR[c] = start || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e ? 1 : 0;
}

/**
 * Interned ASCII names: a stanza repeats the same few element and attribute
 * names, and looking them up by the hash computed while scanning avoids
 * allocating a new string for each. Shared by all parsers (strings are immutable).
 */
const NAME_CACHE_BITS = 10;
const NAME_CACHE_MASK = (1 << NAME_CACHE_BITS) - 1;
const NAME_CACHE_MAX_LEN = 40;
const nameCache: (string | undefined)[] = new Array<string | undefined>(1 << NAME_CACHE_BITS).fill(undefined);

/** Full XML 1.0 (5th ed.) Name production, used only for names with non-ASCII characters. */
const NAME_START_RANGES =
  ':A-Z_a-z\\u{C0}-\\u{D6}\\u{D8}-\\u{F6}\\u{F8}-\\u{2FF}\\u{370}-\\u{37D}\\u{37F}-\\u{1FFF}' +
  '\\u{200C}-\\u{200D}\\u{2070}-\\u{218F}\\u{2C00}-\\u{2FEF}\\u{3001}-\\u{D7FF}\\u{F900}-\\u{FDCF}' +
  '\\u{FDF0}-\\u{FFFD}\\u{10000}-\\u{EFFFF}';
const NAME_RE = new RegExp(
  `^[${NAME_START_RANGES}][${NAME_START_RANGES}\\-.0-9\\u{B7}\\u{300}-\\u{36F}\\u{203F}-\\u{2040}]*$`,
  'u',
);

/**
 * Characters that send a decoded token to the slow path: C0 controls (forbidden
 * by XML 1.0 §2.2, except TAB/LF/CR which need normalising), '&' (references),
 * U+FFFD (maybe invalid UTF-8), U+FFFE/U+FFFF (not XML characters) and, in text,
 * "]]>" (forbidden in character data, §2.4).
 */
const TEXT_SPECIAL = /[\x00-\x08\x0B-\x1F&\uFFFD-\uFFFF]|\]\]>/;
const ATTR_SPECIAL = /[\x00-\x1F&\uFFFD-\uFFFF]/;
const CDATA_SPECIAL = /[\x00-\x08\x0B-\x1F\uFFFD-\uFFFF]/;
const WS_ONLY = /^[ \t\r\n]*$/;
const EMPTY = Buffer.alloc(0);

const MODE_TEXT = 0;
const MODE_ATTR = 1;
const MODE_CDATA = 2;

/** XML 1.0 §4.6: the only entities an XMPP peer may reference (RFC 6120 §11.1). */
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Markup after '<!': comments and DTD declarations are restricted XML, CDATA is allowed. */
const RESTRICTED_BANG = new Map<string, string>([
  ['--', 'comment'],
  ['DOCTYPE', 'DTD'],
  ['ENTITY', 'DTD'],
  ['ELEMENT', 'DTD'],
  ['ATTLIST', 'DTD'],
  ['NOTATION', 'DTD'],
]);
const BANG_PREFIXES = new Set<string>();
for (const word of [...RESTRICTED_BANG.keys(), '[CDATA[']) {
  for (let i = 1; i <= word.length; i++) BANG_PREFIXES.add(word.slice(0, i));
}

/** XML 1.0 §2.8 XMLDecl; only version 1.x and UTF-8 (RFC 6120 §11.5, §11.6). */
const XML_DECL_RE =
  /^xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*$/;

/** XML 1.0 §2.2 Char. */
function isXmlChar(cp: number): boolean {
  return (
    (cp >= 0x20 && cp <= 0xd7ff) ||
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function isWs(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function nwf(message: string): Violation {
  return new Violation('not-well-formed', message);
}

function restricted(message: string): Violation {
  return new Violation('restricted-xml', message);
}

function policy(message: string): Violation {
  return new Violation('policy-violation', message);
}

function declaredPrefixes(attrs: Record<string, string>): Set<string> {
  const out = new Set<string>();
  for (const a in attrs) if (a.startsWith('xmlns:')) out.add(a.slice(6));
  return out;
}

export class StreamParser {
  private readonly h: StreamParserHandlers;
  private readonly maxBytes: number;
  private readonly maxDepth: number;
  private readonly maxAttrs: number;

  private state = S_OUTSIDE;
  private ctx = C_PROLOG;
  /** Bumped by reset(); a write loop that sees it change stops (the rest of its input belongs to the old stream). */
  private gen = 0;
  /** Stream offset (bytes since reset) of the first byte of the chunk being scanned. */
  private base = 0;
  /** First stream offset that may not be consumed inside the current bounded unit (stanza or depth-0 markup). */
  private limitAbs = Infinity;
  /** Stream offset of the first byte of the current token ('<' for markup, first byte for text). */
  private tokStart = 0;
  /** Stream offset where an XML declaration may start (0, or 3 after a BOM); -1 once past it. */
  private declAt = 0;
  /** Copied bytes of a token that began in an earlier chunk. */
  private pend: Buffer[] = [];
  private pendLen = 0;
  /** Quote byte we are inside of while scanning a tag, 0 if none. */
  private quote = 0;
  /** Characters seen after '<!' (at most 8). */
  private bang = '';
  /** Last two bytes scanned in a CDATA section / XML declaration (terminator split between chunks). */
  private t1 = 0;
  private t2 = 0;
  private bomIdx = 0;
  private streamName = '';
  private stack: Element[] = [];
  /** Prefixes the stream header declares (in scope for every stanza). */
  private streamPrefixes: ReadonlySet<string> = new Set();
  /** Set by scanName: the name contained bytes >= 0x80, and a hash of its bytes. */
  private nameHi = false;
  private nameHash = 0;
  /** The complete current token: bytes [ta, tz) of tb. */
  private tb: Buffer = EMPTY;
  private ta = 0;
  private tz = 0;
  /** Re-entrancy: input written or end() called from inside a handler is processed after the current chunk. */
  private busy = false;
  private queue: Buffer[] = [];
  private endRequested = false;

  constructor(handlers: StreamParserHandlers, limits?: Partial<StreamParserLimits>) {
    this.h = handlers;
    const l = { ...defaultLimits, ...limits };
    this.maxBytes = l.maxStanzaBytes;
    this.maxDepth = l.maxDepth;
    this.maxAttrs = l.maxAttributes;
  }

  /**
   * Feeds bytes (or a string, encoded as UTF-8). Never throws for bad input:
   * the first violation goes to onError and later input is ignored until
   * reset(). Exceptions thrown by a handler propagate; the parser then also
   * ignores input until reset() (its position in the chunk is lost).
   */
  write(chunk: Buffer | string): void {
    if (this.state >= S_ERROR) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (this.busy) {
      // Called from a handler: copy, since the caller may reuse its buffer.
      this.queue.push(Buffer.from(buf));
      return;
    }
    this.busy = true;
    let violation: Violation | undefined;
    try {
      this.feed(buf);
      while (this.queue.length > 0 && this.state < S_ERROR) this.feed(this.queue.shift()!);
      if (this.endRequested) {
        this.endRequested = false;
        this.finish();
      }
    } catch (e) {
      if (!(e instanceof Violation)) {
        this.clear();
        this.state = S_ERROR;
        this.queue.length = 0;
        throw e;
      }
      violation = e;
    } finally {
      this.busy = false;
    }
    // Reported outside the busy section so that onError may reset() and write() again.
    if (violation !== undefined) this.fail(violation);
  }

  /**
   * Prepares for a new stream header on the same connection (RFC 6120 §4.3.3:
   * after STARTTLS and after SASL success both sides start a fresh stream).
   * Called from inside a handler, the rest of the input of the current
   * write() is discarded: bytes that followed <starttls/> or <auth/> in the
   * same read belong to the old stream and must not be interpreted in the new
   * one (cf. the STARTTLS command injection class of bugs, CVE-2011-0411).
   */
  reset(): void {
    this.gen++;
    this.clear();
    this.state = S_OUTSIDE;
    this.ctx = C_PROLOG;
    this.base = 0;
    this.declAt = 0;
    this.streamName = '';
    this.streamPrefixes = new Set();
    this.queue.length = 0;
    this.endRequested = false;
  }

  /**
   * The peer closed its side. An input that stops inside markup or inside a
   * stanza (or mid UTF-8 sequence, which is always inside a token) is
   * reported as not-well-formed; stopping between stanzas is not an XML error
   * (the connection layer handles the missing </stream:stream>). Later input
   * is ignored until reset().
   */
  end(): void {
    if (this.busy) {
      this.endRequested = true;
      return;
    }
    if (this.state >= S_ERROR) return;
    try {
      this.finish();
    } catch (e) {
      if (e instanceof Violation) this.fail(e);
      else throw e;
    }
  }

  private finish(): void {
    if (this.state >= S_ERROR) return;
    if (this.state !== S_OUTSIDE || this.ctx === C_CONTENT) throw nwf('unexpected end of input');
    this.clear();
    this.state = S_CLOSED;
  }

  private clear(): void {
    this.pend = [];
    this.pendLen = 0;
    this.stack = [];
    this.limitAbs = Infinity;
    this.tb = EMPTY;
    this.quote = 0;
    this.bang = '';
    this.t1 = 0;
    this.t2 = 0;
  }

  private fail(v: Violation): void {
    this.clear();
    this.state = S_ERROR;
    this.queue.length = 0;
    this.h.onError(v);
  }

  private pushPending(buf: Buffer, a: number, z: number): void {
    const copy = Buffer.allocUnsafe(z - a);
    buf.copy(copy, 0, a, z);
    this.pend.push(copy);
    this.pendLen += z - a;
  }

  /** Makes the current token, ending before index z of buf, available as tb[ta, tz). */
  private take(buf: Buffer, z: number): void {
    if (this.pendLen === 0) {
      this.tb = buf;
      this.ta = this.tokStart - this.base;
      this.tz = z;
    } else {
      this.pend.push(buf.subarray(0, z));
      this.tb = Buffer.concat(this.pend, this.pendLen + z);
      this.ta = 0;
      this.tz = this.tb.length;
      this.pend = [];
      this.pendLen = 0;
    }
  }

  private limitExceeded(): never {
    if (this.ctx === C_CONTENT || this.ctx === C_STREAM) {
      // RFC 6120 §13.12 (resource exhaustion): a configured stanza size limit.
      throw policy(`stanza exceeds ${this.maxBytes} bytes`);
    }
    throw policy(`markup at stream level exceeds ${this.maxBytes} bytes`);
  }

  private feed(buf: Buffer): void {
    const len = buf.length;
    const gen = this.gen;
    const base = this.base;
    let pos = 0;
    while (pos < len) {
      // The one limit check: consuming the byte at stream offset base+pos would make the
      // current stanza (or depth-0 markup) longer than maxStanzaBytes. The scanning cases
      // below never look past limitAbs, so this also guarantees each iteration progresses.
      if (base + pos >= this.limitAbs) this.limitExceeded();
      switch (this.state) {
        case S_OUTSIDE: {
          // Depth 0: XML allows only whitespace here (whitespace between stanzas and keepalives, RFC 6120 §11.7).
          for (; pos < len; pos++) {
            const c = buf[pos]!;
            if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
            if (c === LT) break;
            if (c === 0xef && this.ctx === C_PROLOG && base + pos === 0) {
              // A UTF-8 byte order mark may open the document (XML 1.0 §4.3.3).
              this.state = S_BOM;
              this.bomIdx = 1;
              break;
            }
            if (this.ctx === C_EPILOG) throw nwf('content after the end of the stream');
            throw nwf('character data at stream level');
          }
          if (pos === len) break;
          if (this.state === S_BOM) {
            pos++;
            break;
          }
          this.tokStart = base + pos;
          this.limitAbs = base + pos + this.maxBytes;
          this.state = S_LT;
          pos++;
          break;
        }

        case S_BOM: {
          const c = buf[pos++]!;
          if (c !== (this.bomIdx === 1 ? 0xbb : 0xbf)) throw nwf('invalid byte at start of stream');
          if (++this.bomIdx === 3) {
            this.declAt = base + pos;
            this.state = S_OUTSIDE;
          }
          break;
        }

        case S_TEXT: {
          const lim = this.limitAbs - base;
          const end = lim < len ? lim : len;
          const lt = buf.indexOf(LT, pos);
          if (lt === -1 || lt >= end) {
            if (this.pendLen === 0) this.tokStart = base + pos;
            this.pushPending(buf, pos, end);
            pos = end;
            break;
          }
          if (lt > pos || this.pendLen > 0) {
            if (this.pendLen === 0) this.tokStart = base + pos;
            this.take(buf, lt);
            this.text();
          }
          this.tokStart = base + lt;
          this.state = S_LT;
          pos = lt + 1;
          break;
        }

        case S_LT: {
          const c = buf[pos]!;
          if (c === BANG) {
            this.state = S_BANG;
            this.bang = '';
            pos++;
          } else if (c === QMARK) {
            // The XML declaration is not a processing instruction (XML 1.0 §2.8), but it may
            // only open the document; anywhere else '<?' starts a PI (RFC 6120 §11.1).
            if (this.ctx !== C_PROLOG || this.tokStart !== this.declAt) {
              throw restricted('processing instruction');
            }
            this.state = S_DECL;
            this.t1 = 0;
            pos++;
          } else if (c === SLASH || c >= 0x80 || NAME_START[c] === 1) {
            this.state = S_TAG;
            this.quote = 0;
          } else {
            // Fail now rather than buffer up to the limit looking for '>'.
            throw nwf("invalid character after '<'");
          }
          break;
        }

        case S_BANG: {
          this.bang += String.fromCharCode(buf[pos++]!);
          const b = this.bang;
          if (b === '[CDATA[') {
            // CDATA sections are ordinary XML that RFC 6120 §11.1 does not restrict,
            // but they can only occur as element content.
            if (this.ctx === C_PROLOG || this.ctx === C_EPILOG) throw nwf('CDATA section outside the stream');
            this.state = S_CDATA;
            this.t1 = 0;
            this.t2 = 0;
          } else {
            const what = RESTRICTED_BANG.get(b);
            if (what !== undefined) throw restricted(`${what} (RFC 6120 §11.1)`);
            if (!BANG_PREFIXES.has(b)) throw nwf('invalid markup after <!');
          }
          break;
        }

        case S_CDATA: {
          const lim = this.limitAbs - base;
          const end = lim < len ? lim : len;
          let z = -1;
          // Terminator split between this chunk and the previous one.
          if (this.t2 === RSQB && this.t1 === RSQB && buf[pos] === GT) z = pos + 1;
          else if (this.t1 === RSQB && buf[pos] === RSQB && pos + 1 < end && buf[pos + 1] === GT) z = pos + 2;
          else {
            const i = buf.indexOf(']]>', pos, 'latin1');
            if (i !== -1 && i + 3 <= end) z = i + 3;
          }
          if (z === -1) {
            if (end - pos >= 2) {
              this.t2 = buf[end - 2]!;
              this.t1 = buf[end - 1]!;
            } else {
              this.t2 = this.t1;
              this.t1 = buf[pos]!;
            }
            pos = end;
            break;
          }
          this.take(buf, z);
          pos = z;
          this.cdata();
          break;
        }

        case S_DECL: {
          const lim = this.limitAbs - base;
          const end = lim < len ? lim : len;
          let z = -1;
          if (this.t1 === QMARK && buf[pos] === GT) z = pos + 1;
          else {
            const i = buf.indexOf('?>', pos, 'latin1');
            if (i !== -1 && i + 2 <= end) z = i + 2;
          }
          if (z === -1) {
            this.t1 = buf[end - 1]!;
            pos = end;
            break;
          }
          this.take(buf, z);
          pos = z;
          this.xmlDecl();
          break;
        }

        case S_TAG: {
          const lim = this.limitAbs - base;
          const end = lim < len ? lim : len;
          let q = this.quote;
          let i = pos;
          for (; i < end; i++) {
            const c = buf[i]!;
            if (q !== 0) {
              if (c === q) q = 0;
              else if (c === LT) throw nwf("'<' in attribute value");
            } else if (c === GT) break;
            else if (c === QUOT || c === APOS) q = c;
            else if (c === LT) throw nwf("'<' inside a tag");
          }
          if (i === end) {
            this.quote = q;
            pos = end;
            break;
          }
          this.take(buf, i + 1);
          pos = i + 1;
          this.tag();
          if (this.gen !== gen) return;
          break;
        }

        default:
          // S_ERROR / S_CLOSED: a handler called end() or a violation happened.
          return;
      }
    }
    // Keep the part of an unfinished markup token that lies in this chunk.
    const st = this.state;
    if (st === S_LT || st === S_TAG || st === S_BANG || st === S_CDATA || st === S_DECL) {
      const a = this.tokStart - base;
      this.pushPending(buf, a > 0 ? a : 0, len);
    }
    this.base = base + len;
    // Do not keep the caller's chunk alive while the connection is idle.
    this.tb = EMPTY;
  }

  // ---- tokens -------------------------------------------------------------

  /**
   * Scans an XML Name starting at i (before z). Enforces the ASCII part of
   * the Name production and the QName shape of Namespaces in XML §3 (at most
   * one colon, not first or last); non-ASCII names are checked on decoding.
   */
  private scanName(b: Buffer, i: number, z: number): number {
    const s = i;
    let c = b[i]!;
    if (i >= z || (c < 0x80 && NAME_START[c] === 0) || c === COLON) throw nwf('invalid name');
    let hi = c >= 0x80;
    let colon = -1;
    let h = c;
    for (i++; i < z; i++) {
      c = b[i]!;
      if (c < 0x80) {
        if (NAME_CHAR[c] === 0) break;
        if (c === COLON) {
          if (colon !== -1) throw nwf('invalid qualified name');
          colon = i;
        }
      } else hi = true;
      h = (Math.imul(h, 31) + c) | 0;
    }
    if (colon === i - 1) throw nwf('invalid qualified name');
    this.nameHi = hi;
    this.nameHash = h;
    return i;
  }

  private decodeName(b: Buffer, s: number, e: number): string {
    if (!this.nameHi) {
      const n = e - s;
      if (n > NAME_CACHE_MAX_LEN) return latin1(b, s, e);
      const slot = (this.nameHash ^ (this.nameHash >>> NAME_CACHE_BITS) ^ n) & NAME_CACHE_MASK;
      const hit = nameCache[slot];
      if (hit !== undefined && hit.length === n) {
        let k = 0;
        while (k < n && b[s + k] === hit.charCodeAt(k)) k++;
        if (k === n) return hit;
      }
      const name = latin1(b, s, e);
      nameCache[slot] = name;
      return name;
    }
    const name = utf8(b, s, e);
    if (name.includes('\uFFFD') && !isUtf8(b.subarray(s, e))) throw nwf('invalid UTF-8');
    if (!NAME_RE.test(name)) throw nwf('invalid name');
    return name;
  }

  private tag(): void {
    const b = this.tb;
    const z = this.tz - 1; // index of '>'
    let i = this.ta + 1;
    if (b[i] === SLASH) {
      i++;
      const ns = i;
      i = this.scanName(b, i, z);
      const ne = i;
      while (i < z && isWs(b[i])) i++;
      if (i !== z) throw nwf('malformed end tag');
      this.endTag(b, ns, ne);
      return;
    }

    const ns = i;
    i = this.scanName(b, i, z);
    const name = this.decodeName(b, ns, i);
    const attrs: Record<string, string> = {};
    let count = 0;
    let selfClosing = false;
    for (;;) {
      const ws = i;
      while (i < z && isWs(b[i])) i++;
      if (i === z) break;
      if (b[i] === SLASH) {
        if (i + 1 !== z) throw nwf("'/' inside a tag");
        selfClosing = true;
        break;
      }
      if (i === ws) throw nwf('missing whitespace before attribute');
      const an = i;
      i = this.scanName(b, i, z);
      const aname = this.decodeName(b, an, i);
      while (i < z && isWs(b[i])) i++;
      if (b[i] !== EQ) throw nwf('attribute without value');
      i++;
      while (i < z && isWs(b[i])) i++;
      const q = b[i];
      if (q !== QUOT && q !== APOS) throw nwf('unquoted attribute value');
      const vs = i + 1;
      const ve = b.indexOf(q, vs);
      if (ve === -1 || ve >= z) throw nwf('unterminated attribute value');
      if (++count > this.maxAttrs) throw policy(`more than ${this.maxAttrs} attributes on one element`);
      // XML 1.0 §3.1 Unique Att Spec.
      if (Object.hasOwn(attrs, aname)) throw nwf(`duplicate attribute ${aname}`);
      const value = this.decodeValue(b, vs, ve);
      if (aname === '__proto__') {
        Object.defineProperty(attrs, aname, { value, enumerable: true, writable: true, configurable: true });
      } else attrs[aname] = value;
      i = ve + 1;
    }
    this.startTag(name, attrs, selfClosing);
  }

  private startTag(name: string, attrs: Record<string, string>, selfClosing: boolean): void {
    const gen = this.gen;
    switch (this.ctx) {
      case C_PROLOG: {
        // The stream header (RFC 6120 §4.2); the caller validates its name and namespaces.
        this.ctx = C_STREAM;
        this.state = S_OUTSIDE;
        this.limitAbs = Infinity;
        this.declAt = -1;
        this.streamName = name;
        this.streamPrefixes = declaredPrefixes(attrs);
        if (selfClosing) this.ctx = C_EPILOG;
        this.h.onStreamStart(name, attrs);
        if (selfClosing && this.gen === gen && this.state < S_ERROR) this.h.onStreamEnd();
        return;
      }
      case C_EPILOG:
        throw nwf('second root element');
      default: {
        const depth = this.stack.length + 1;
        if (depth > this.maxDepth) throw policy(`element nesting deeper than ${this.maxDepth}`);
        this.checkPrefixes(name, attrs);
        const el = new Element(name);
        el.attrs = attrs;
        if (depth > 1) {
          const parent = this.stack[depth - 2]!;
          parent.children.push(el);
          el.parent = parent;
        }
        if (!selfClosing) {
          this.stack.push(el);
          this.ctx = C_CONTENT;
          this.state = S_TEXT;
        } else if (depth > 1) {
          this.state = S_TEXT;
        } else {
          this.state = S_OUTSIDE;
          this.limitAbs = Infinity;
          this.h.onStanza(el);
        }
      }
    }
  }

  /**
   * Namespaces in XML 1.0 §5: every prefix used on an element or attribute
   * must be declared on it, an ancestor or the stream header; otherwise the
   * stanza is not namespace-well-formed and would reach its recipient broken.
   * Costs nothing for the usual unprefixed stanza.
   */
  private checkPrefixes(name: string, attrs: Record<string, string>): void {
    let c = name.indexOf(':');
    if (c !== -1) this.requirePrefix(name.slice(0, c), attrs);
    for (const a in attrs) {
      c = a.indexOf(':');
      if (c === -1) continue;
      const prefix = a.slice(0, c);
      if (prefix === 'xmlns') {
        if (attrs[a] === '') throw nwf(`empty namespace declaration ${a}`);
        continue;
      }
      this.requirePrefix(prefix, attrs);
    }
  }

  private requirePrefix(prefix: string, attrs: Record<string, string>): void {
    if (prefix === 'xml') return; // bound by definition
    if (prefix === 'xmlns') throw nwf('the xmlns prefix cannot qualify a name');
    const decl = `xmlns:${prefix}`;
    if (Object.hasOwn(attrs, decl) || this.streamPrefixes.has(prefix)) return;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      if (Object.hasOwn(this.stack[i]!.attrs, decl)) return;
    }
    throw nwf(`undeclared namespace prefix '${prefix}'`);
  }

  private endTag(b: Buffer, s: number, e: number): void {
    const ctx = this.ctx;
    if (ctx === C_CONTENT) {
      const top = this.stack[this.stack.length - 1]!;
      if (!this.nameIs(b, s, e, top.name)) {
        throw nwf(`mismatched end tag </${utf8(b, s, e)}>, expected </${top.name}>`);
      }
      this.stack.pop();
      if (this.stack.length > 0) {
        this.state = S_TEXT;
        return;
      }
      this.ctx = C_STREAM;
      this.state = S_OUTSIDE;
      this.limitAbs = Infinity;
      this.h.onStanza(top);
      return;
    }
    if (ctx === C_STREAM) {
      if (!this.nameIs(b, s, e, this.streamName)) {
        throw nwf(`mismatched end tag </${utf8(b, s, e)}>, expected </${this.streamName}>`);
      }
      this.ctx = C_EPILOG;
      this.state = S_OUTSIDE;
      this.limitAbs = Infinity;
      this.h.onStreamEnd();
      return;
    }
    throw nwf('end tag outside the stream');
  }

  /** Compares the name bytes [s, e) with an open element's name without decoding in the common ASCII case. */
  private nameIs(b: Buffer, s: number, e: number, name: string): boolean {
    if (this.nameHi) return utf8(b, s, e) === name;
    if (e - s !== name.length) return false;
    for (let k = 0; k < name.length; k++) if (b[s + k] !== name.charCodeAt(k)) return false;
    return true;
  }

  private text(): void {
    const b = this.tb;
    let str = utf8(b, this.ta, this.tz);
    if (TEXT_SPECIAL.test(str)) str = this.slow(str, b, this.ta, this.tz, MODE_TEXT);
    this.appendText(str);
    this.state = S_TEXT;
  }

  private cdata(): void {
    const b = this.tb;
    const s = this.ta + 9; // after '<![CDATA['
    const e = this.tz - 3; // before ']]>'
    let str = utf8(b, s, e);
    if (CDATA_SPECIAL.test(str)) str = this.slow(str, b, s, e, MODE_CDATA);
    if (this.ctx === C_CONTENT) {
      this.appendText(str);
      this.state = S_TEXT;
    } else {
      // At stream level only whitespace is character data we can accept.
      if (!WS_ONLY.test(str)) throw nwf('character data at stream level');
      this.state = S_OUTSIDE;
      this.limitAbs = Infinity;
    }
  }

  /** Adjacent text runs (text, CDATA, text) become one string child. */
  private appendText(str: string): void {
    if (str.length === 0) return;
    const ch = this.stack[this.stack.length - 1]!.children;
    const last = ch.length - 1;
    const prev = ch[last];
    if (typeof prev === 'string') ch[last] = prev + str;
    else ch.push(str);
  }

  private decodeValue(b: Buffer, s: number, e: number): string {
    if (s === e) return '';
    const str = utf8(b, s, e);
    return ATTR_SPECIAL.test(str) ? this.slow(str, b, s, e, MODE_ATTR) : str;
  }

  private xmlDecl(): void {
    const b = this.tb;
    const s = this.ta + 2;
    const e = this.tz - 2;
    const body = latin1(b, s, e);
    let t = 0;
    while (t < body.length && !isWs(body.charCodeAt(t))) t++;
    const target = body.slice(0, t);
    if (target !== 'xml') {
      // XML 1.0 §2.6 reserves targets matching [Xx][Mm][Ll].
      if (target.toLowerCase() === 'xml') throw nwf('invalid XML declaration');
      throw restricted('processing instruction (RFC 6120 §11.1)');
    }
    const m = XML_DECL_RE.exec(body);
    if (m === null) throw nwf('invalid XML declaration');
    const enc = m[1] ?? m[2];
    // RFC 6120 §11.6: UTF-8 only.
    if (enc !== undefined && enc.toLowerCase() !== 'utf-8') throw nwf(`unsupported encoding ${enc}`);
    this.declAt = -1;
    this.state = S_OUTSIDE;
    this.limitAbs = Infinity;
  }

  /**
   * The slow path for a decoded token that contains something special:
   * verifies UTF-8, rejects characters XML 1.0 §2.2 forbids, normalises line
   * ends (§2.11) and, in attribute values, whitespace (§3.3.3), and resolves
   * references (§4.1). Entity references other than the five predefined ones
   * are restricted XML (RFC 6120 §11.1); a '&' that does not start a
   * reference is not well-formed.
   */
  private slow(str: string, b: Buffer, s: number, e: number, mode: number): string {
    if (str.includes('\uFFFD') && !isUtf8(b.subarray(s, e))) throw nwf('invalid UTF-8');
    let out = '';
    let last = 0;
    const n = str.length;
    for (let i = 0; i < n; i++) {
      const c = str.charCodeAt(i);
      if (c >= 0x20 && c < 0xfffe && c !== AMP && c !== RSQB) continue;
      if (c === RSQB) {
        if (mode === MODE_TEXT && str.startsWith(']]>', i)) throw nwf("']]>' in character data");
        continue;
      }
      if (c === 0x09 || c === 0x0a) {
        if (mode === MODE_ATTR) {
          out += str.slice(last, i) + ' ';
          last = i + 1;
        }
        continue;
      }
      if (c === 0x0d) {
        const skip = str.charCodeAt(i + 1) === 0x0a ? 2 : 1;
        out += str.slice(last, i) + (mode === MODE_ATTR ? ' ' : '\n');
        last = i + skip;
        i += skip - 1;
        continue;
      }
      if (c === AMP && mode !== MODE_CDATA) {
        const semi = str.indexOf(';', i + 1);
        if (semi === -1) throw nwf("'&' not starting a reference");
        out += str.slice(last, i) + this.reference(str.slice(i + 1, semi));
        last = semi + 1;
        i = semi;
        continue;
      }
      if (c === AMP) continue; // '&' inside CDATA is plain text
      throw nwf(`character U+${c.toString(16).toUpperCase().padStart(4, '0')} not allowed in XML`);
    }
    return last === 0 ? str : out + str.slice(last);
  }

  private reference(ref: string): string {
    if (ref.charCodeAt(0) === 0x23 /* # */) {
      // Character references (XML 1.0 §4.1) are not entity references: allowed,
      // but only to characters XML allows.
      let digits: string;
      let radix: number;
      if (ref.charCodeAt(1) === 0x78 /* x */) {
        digits = ref.slice(2);
        radix = 16;
        if (!/^[0-9A-Fa-f]+$/.test(digits)) throw nwf('malformed character reference');
      } else {
        digits = ref.slice(1);
        radix = 10;
        if (!/^[0-9]+$/.test(digits)) throw nwf('malformed character reference');
      }
      digits = digits.replace(/^0+(?=.)/, '');
      const cp = digits.length > 8 ? -1 : parseInt(digits, radix);
      if (!isXmlChar(cp)) throw nwf(`character reference &#${ref.slice(1)}; to a character not allowed in XML`);
      return String.fromCodePoint(cp);
    }
    const pre = PREDEFINED[ref];
    if (pre !== undefined && Object.hasOwn(PREDEFINED, ref)) return pre;
    if (ref.length > 0 && NAME_RE.test(ref)) throw restricted(`entity reference &${ref}; (RFC 6120 §11.1)`);
    throw nwf("'&' not starting a reference");
  }
}

