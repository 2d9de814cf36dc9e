/** fast-check generators shared by the property tests (test-only module). */
import fc from 'fast-check';
import { Element } from 'ltx';

/** XML 1.0 §2.2 Char, minus nothing: every character our serializer must carry. */
function isXmlCodePoint(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** One character of content, biased towards the ones that need escaping or normalising. */
export const contentChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'b', ' ', '\n', '\t', '\r', '&', '<', '>', '"', "'", ']', ';', '#', 'é', '😀', '\uFFFD') },
  { weight: 2, arbitrary: fc.constantFrom(']]>', '\r\n', '&amp;', '&#x41;', '<!--', '<?x?>', '<![CDATA[') },
  {
    weight: 2,
    arbitrary: fc
      .integer({ min: 0x9, max: 0x10ffff })
      .filter(isXmlCodePoint)
      .map((cp) => String.fromCodePoint(cp)),
  },
);

export const text: fc.Arbitrary<string> = fc.string({ unit: contentChar, minLength: 1, maxLength: 12 });
export const attrValue: fc.Arbitrary<string> = fc.string({ unit: contentChar, maxLength: 12 });

const ncName: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,6}$/) },
  { weight: 1, arbitrary: fc.constantFrom('café', 'ñ', '中文', 'x·y', 'Ωmega', 'a\u0301', 'toString', '__proto__') },
);

export const qName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: ncName },
  // Prefixes starting with 'xml' are reserved (Namespaces in XML §3): keep clear of them.
  { weight: 1, arbitrary: fc.tuple(ncName, ncName).map(([p, l]) => `${/^xml/i.test(p) ? `p${p}` : p}:${l}`) },
);

export interface TreeSpec {
  name: string;
  attrs: [string, string][];
  children: (TreeSpec | string)[];
}

const { tree } = fc.letrec<{ tree: TreeSpec }>((tie) => ({
  tree: fc.record({
    name: qName,
    attrs: fc.uniqueArray(fc.tuple(qName, attrValue), { selector: (t) => t[0], maxLength: 5 }),
    children: fc.array(fc.oneof({ depthSize: 'small', withCrossShrink: true }, text, tie('tree')), { maxLength: 4 }),
  }),
}));
export const treeSpec: fc.Arbitrary<TreeSpec> = tree;

/** Builds an ltx element; adjacent text children are merged (the parser reports one text run as one string). */
export function build(spec: TreeSpec): Element {
  const el = new Element(spec.name);
  for (const [k, v] of spec.attrs) {
    Object.defineProperty(el.attrs, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  // Declare every prefix used, so the tree is namespace-well-formed.
  for (const n of [spec.name, ...spec.attrs.map(([k]) => k)]) {
    const c = n.indexOf(':');
    if (c > 0) el.attrs[`xmlns:${n.slice(0, c)}`] ??= `urn:${n.slice(0, c)}`;
  }
  for (const c of spec.children) {
    if (typeof c === 'string') {
      const last = el.children.length - 1;
      const prev = el.children[last];
      if (typeof prev === 'string') el.children[last] = prev + c;
      else el.children.push(c);
    } else el.cnode(build(c));
  }
  return el;
}

export const element: fc.Arbitrary<Element> = treeSpec.map(build);

export function depthOf(el: Element): number {
  let d = 0;
  for (const c of el.children) if (typeof c !== 'string') d = Math.max(d, depthOf(c));
  return d + 1;
}

export function maxAttrsOf(el: Element): number {
  let n = Object.keys(el.attrs).length;
  for (const c of el.children) if (typeof c !== 'string') n = Math.max(n, maxAttrsOf(c));
  return n;
}

/** Cut points for splitting a buffer of the given length into chunks. */
export const cuts: fc.Arbitrary<number[]> = fc.array(fc.nat(), { maxLength: 30 });

export interface Mutation {
  kind: 'flip' | 'set' | 'insert' | 'delete' | 'duplicate' | 'token';
  at: number;
  byte: number;
  len: number;
  token: string;
}

export const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'duplicate', 'token'),
  at: fc.nat(),
  byte: fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom(0x3c, 0x3e, 0x2f, 0x26, 0x27, 0x22, 0x3d, 0x21, 0x3f, 0x5d, 0x80, 0xc3, 0xe4, 0xf0, 0xff, 0x00),
  ),
  len: fc.integer({ min: 1, max: 40 }),
  token: fc.constantFrom(
    '<',
    '>',
    '</a>',
    '<a>',
    '/>',
    '&',
    '&amp;',
    '&nbsp;',
    '&#0;',
    '&#x41;',
    ']]>',
    '<![CDATA[',
    '<!--',
    '-->',
    '<?xml version="1.0"?>',
    '<?pi?>',
    '<!DOCTYPE x>',
    "='x'",
    ' a="1"',
    '</stream:stream>',
    '\u0000',
    '\uFFFE',
    '😀',
  ),
});

export function mutate(buf: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(buf);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < b.length) b[at] = b[at]! ^ (1 << (m.byte & 7));
        break;
      case 'set':
        if (at < b.length) b[at] = m.byte;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at, at + m.len), b.subarray(at + m.len)]);
        break;
      case 'token':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.token), b.subarray(at)]);
        break;
    }
  }
  return b;
}
