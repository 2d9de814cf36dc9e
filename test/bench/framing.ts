/**
 * A minimal XMPP stream framer: cuts the server's byte stream into the
 * stream header, top-level elements (stanzas and nonzas, each as its exact
 * XML text) and the stream end, without building a tree.
 *
 * It only tracks what decides where a top-level element ends: tags (with
 * quoted attribute values, which may contain `>`), element depth, self-closing
 * tags, the XML declaration, CDATA sections and comments (which a server must
 * not send, but skipping them costs nothing). Text content is skipped with
 * `indexOf('<')`. Well-formedness is the server's business: this is a load
 * generator's framer, not a validating parser. Elements that need a closer
 * look are parsed with ltx afterwards (see client.ts); the hot path (room
 * messages and presences) reads a few attributes with string searches.
 *
 * Input arrives as strings (the caller decodes UTF-8 with a StringDecoder, so
 * multi-byte characters split across TCP chunks are handled there); an
 * element split across any number of chunks, or several elements in one
 * chunk, come out the same.
 */

export interface FramerEvents {
  /** The opening `<stream:stream …>` tag (its text, attributes not parsed). */
  header(tag: string): void;
  /** One complete top-level element. */
  element(xml: string): void;
  /** `</stream:stream>`. */
  end(): void;
}

const GT = 62; // >
const SLASH = 47; // /
const QUOT = 34; // "
const APOS = 39; // '
const QUESTION = 63; // ?
const BANG = 33; // !

export class Framer {
  private buf = '';
  /** Scan position in `buf`. */
  private pos = 0;
  /** Start of the current top-level element in `buf`, or -1 between elements. */
  private elStart = -1;
  /** Start of the tag being scanned, or -1 when in text. */
  private tagStart = -1;
  /** Quote character of the attribute value being scanned (0: none). */
  private quote = 0;
  private depth = 0;
  /** Bumped by reset(), so a reset from inside a callback stops the scan. */
  private gen = 0;

  constructor(private readonly on: FramerEvents) {}

  /** Forget everything buffered (a stream restart: a new header comes next). */
  reset(): void {
    this.buf = '';
    this.pos = 0;
    this.elStart = -1;
    this.tagStart = -1;
    this.quote = 0;
    this.depth = 0;
    this.gen++;
  }

  /** Bytes buffered (an incomplete element), for diagnostics. */
  get pending(): number {
    return this.buf.length;
  }

  write(chunk: string): void {
    this.buf = this.buf.length === 0 ? chunk : this.buf + chunk;
    const buf = this.buf;
    const len = buf.length;
    const gen = this.gen;
    let pos = this.pos;
    for (;;) {
      if (this.tagStart < 0) {
        const lt = buf.indexOf('<', pos);
        if (lt < 0) {
          pos = len;
          break;
        }
        if (this.depth === 0) this.elStart = lt; // whitespace keepalives between elements are skipped
        this.tagStart = lt;
        pos = lt + 1;
      }
      const ts = this.tagStart;
      if (ts + 1 >= len) break; // need the character after '<'
      const kind = buf.charCodeAt(ts + 1);
      if (kind === QUESTION) {
        // XML declaration (or a processing instruction): up to '?>'.
        const end = buf.indexOf('?>', Math.max(pos, ts + 2));
        if (end < 0) {
          pos = Math.max(ts + 2, len - 1);
          break;
        }
        pos = end + 2;
        this.tagStart = -1;
        if (this.depth === 0) this.elStart = -1;
        continue;
      }
      if (kind === BANG) {
        if (len - ts < 4) break;
        let close: string;
        if (buf.startsWith('<!--', ts)) close = '-->';
        else if (len - ts < 9) break;
        else if (buf.startsWith('<![CDATA[', ts)) close = ']]>';
        else close = '>'; // a DTD, which no server sends
        const end = buf.indexOf(close, Math.max(pos, ts + 2));
        if (end < 0) {
          pos = Math.max(ts + 2, len - close.length + 1);
          break;
        }
        pos = end + close.length;
        this.tagStart = -1;
        if (this.depth === 0) this.elStart = -1;
        continue;
      }
      if (kind === SLASH) {
        // End tag: no attributes, so the first '>' ends it.
        const gt = buf.indexOf('>', Math.max(pos, ts + 2));
        if (gt < 0) {
          pos = len;
          break;
        }
        pos = gt + 1;
        this.tagStart = -1;
        if (this.depth === 0) {
          // </stream:stream>
          this.elStart = -1;
          this.on.end();
          if (this.gen !== gen) return;
          continue;
        }
        this.depth--;
        if (this.depth === 0) {
          const xml = buf.slice(this.elStart, pos);
          this.elStart = -1;
          this.on.element(xml);
          if (this.gen !== gen) return;
        }
        continue;
      }
      // Start tag: up to the first '>' outside a quoted attribute value.
      let i = pos;
      let q = this.quote;
      let gt = -1;
      for (; i < len; i++) {
        const c = buf.charCodeAt(i);
        if (q !== 0) {
          if (c === q) q = 0;
        } else if (c === QUOT || c === APOS) {
          q = c;
        } else if (c === GT) {
          gt = i;
          break;
        }
      }
      if (gt < 0) {
        this.quote = q;
        pos = len;
        break;
      }
      this.quote = 0;
      pos = gt + 1;
      this.tagStart = -1;
      const selfClosing = buf.charCodeAt(gt - 1) === SLASH;
      if (this.depth === 0 && isStreamHeader(buf, ts)) {
        this.elStart = -1;
        this.on.header(buf.slice(ts, pos));
        if (this.gen !== gen) return;
        continue;
      }
      if (selfClosing) {
        if (this.depth === 0) {
          const xml = buf.slice(this.elStart, pos);
          this.elStart = -1;
          this.on.element(xml);
          if (this.gen !== gen) return;
        }
      } else {
        this.depth++;
      }
    }
    // Keep only what is still needed: the current element or tag.
    const keep = this.elStart >= 0 ? this.elStart : this.tagStart >= 0 ? this.tagStart : pos;
    if (keep >= len) {
      this.buf = '';
      this.pos = 0;
    } else if (keep > 0) {
      this.buf = buf.slice(keep);
      this.pos = pos - keep;
      if (this.elStart >= 0) this.elStart -= keep;
      if (this.tagStart >= 0) this.tagStart -= keep;
    } else {
      this.pos = pos;
    }
  }
}

/** Whether the start tag at `at` is a stream header (`<stream:stream`, any prefix). */
function isStreamHeader(buf: string, at: number): boolean {
  // The element's local name is 'stream' and it is prefixed: `<p:stream` + space/'>'.
  let i = at + 1;
  const len = buf.length;
  while (i < len) {
    const c = buf.charCodeAt(i);
    if (c === 58 /* : */) break;
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === GT || c === SLASH) return false;
    i++;
  }
  if (!buf.startsWith(':stream', i)) return false;
  const after = buf.charCodeAt(i + 7);
  return after === 32 || after === 9 || after === 10 || after === 13 || after === GT;
}

/**
 * The value of attribute `name` in the first start tag of `xml` (raw: entity
 * references are left as they are, which suits JIDs, ids and types), or
 * undefined. Quotes inside values are respected.
 */
export function attr(xml: string, name: string): string | undefined {
  const len = xml.length;
  let i = 1;
  // skip the element name
  while (i < len) {
    const c = xml.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === GT || c === SLASH) break;
    i++;
  }
  while (i < len) {
    const c = xml.charCodeAt(i);
    if (c === GT) return undefined;
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === SLASH) {
      i++;
      continue;
    }
    // attribute name
    const nameStart = i;
    while (i < len && xml.charCodeAt(i) !== 61 /* = */ && xml.charCodeAt(i) !== GT) i++;
    const attrName = xml.slice(nameStart, i).trim();
    if (xml.charCodeAt(i) !== 61) return undefined;
    i++;
    while (i < len && (xml.charCodeAt(i) === 32 || xml.charCodeAt(i) === 9 || xml.charCodeAt(i) === 10 || xml.charCodeAt(i) === 13)) i++;
    const q = xml.charCodeAt(i);
    if (q !== QUOT && q !== APOS) return undefined;
    const end = xml.indexOf(q === QUOT ? '"' : "'", i + 1);
    if (end < 0) return undefined;
    if (attrName === name) return xml.slice(i + 1, end);
    i = end + 1;
  }
  return undefined;
}

/** Undo the five predefined entities and character references (for attribute values and text). */
export function unescapeXml(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}
