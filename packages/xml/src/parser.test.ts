import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Element } from 'ltx';
import { StreamParser, XmlStreamError, defaultLimits } from './index.js';
import type { XmlViolation } from './index.js';
import { DECL, HEADER, bytewise, errorOf, parse, parseChunks, recorder, stanzas } from './testutil.js';
import type { Event } from './testutil.js';

const STREAM_ATTRS = {
  xmlns: 'jabber:client',
  'xmlns:stream': 'http://etherx.jabber.org/streams',
  to: 'example.com',
  version: '1.0',
};

/** Parses HEADER + body (+ optional trailer) and returns the events after the stream start. */
function inStream(body: string | Buffer, limits?: Parameters<typeof parse>[1]): Event[] {
  const input = Buffer.concat([Buffer.from(HEADER), typeof body === 'string' ? Buffer.from(body) : body]);
  const events = parse(input, limits);
  assert.deepEqual(events[0], { type: 'start', name: 'stream:stream', attrs: STREAM_ATTRS });
  return events.slice(1);
}

function expectError(events: Event[], condition: XmlViolation): void {
  assert.equal(errorOf(events), condition, JSON.stringify(events));
  assert.deepEqual(events[events.length - 1], { type: 'error', condition });
}

function bodyError(body: string | Buffer, condition: XmlViolation): void {
  expectError(inStream(body), condition);
}

describe('stream framing', () => {
  it('emits the stream header, stanzas and the stream end', () => {
    const events = parse(
      `${DECL}${HEADER}<message to='a@b' type='chat'><body>hi</body></message><iq type='get' id='1'/></stream:stream>`,
    );
    assert.deepEqual(events, [
      { type: 'start', name: 'stream:stream', attrs: STREAM_ATTRS },
      {
        type: 'stanza',
        el: {
          name: 'message',
          attrs: { to: 'a@b', type: 'chat' },
          children: [{ name: 'body', attrs: {}, children: ['hi'] }],
        },
      },
      { type: 'stanza', el: { name: 'iq', attrs: { type: 'get', id: '1' }, children: [] } },
      { type: 'end' },
    ]);
  });

  it('passes any prefix and name of the root through as written', () => {
    const events = parse("<s:stream xmlns:s='x' xml:lang='en'><a/></s:stream>");
    assert.deepEqual(events, [
      { type: 'start', name: 's:stream', attrs: { 'xmlns:s': 'x', 'xml:lang': 'en' } },
      { type: 'stanza', el: { name: 'a', attrs: {}, children: [] } },
      { type: 'end' },
    ]);
  });

  it('treats a self-closed stream header as start and end', () => {
    assert.deepEqual(parse("<stream:stream xmlns:stream='x'/>"), [
      { type: 'start', name: 'stream:stream', attrs: { 'xmlns:stream': 'x' } },
      { type: 'end' },
    ]);
  });

  it('ignores whitespace keepalives between stanzas and around the header', () => {
    const events = inStream(' \n\t\r\n <a/>  \n <b/> \n</stream:stream>\n  ');
    assert.deepEqual(events, [
      { type: 'stanza', el: { name: 'a', attrs: {}, children: [] } },
      { type: 'stanza', el: { name: 'b', attrs: {}, children: [] } },
      { type: 'end' },
    ]);
    assert.equal(errorOf(parse(`  \n${HEADER}`)), undefined);
  });

  it('keeps text children, whitespace inside stanzas, and namespace declarations as written', () => {
    const [ev] = inStream("<message xmlns:x='urn:x'>\n  <body>a b</body>\n  <x:y/>\n</message>");
    assert.deepEqual(ev, {
      type: 'stanza',
      el: {
        name: 'message',
        attrs: { 'xmlns:x': 'urn:x' },
        children: [
          '\n  ',
          { name: 'body', attrs: {}, children: ['a b'] },
          '\n  ',
          { name: 'x:y', attrs: {}, children: [] },
          '\n',
        ],
      },
    });
  });

  it("does not inherit the stream's default namespace into stanzas; parents are linked", () => {
    const r = recorder();
    r.parser.write(`${HEADER}<message><body>x</body></message><iq xmlns='jabber:client'/>`);
    const [msg, iq] = r.elements as [Element, Element];
    assert.equal(msg.attrs.xmlns, undefined);
    assert.equal(msg.getNS(), undefined);
    assert.equal(msg.parent, null);
    const body = msg.getChild('body')!;
    assert.equal(body.parent, msg);
    assert.equal(msg.getChildText('body'), 'x');
    assert.equal(iq.getNS(), 'jabber:client');
  });

  it('decodes the five predefined entities and character references in text and attributes', () => {
    const [ev] = inStream(
      "<m a='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;' b=\"it's\" c='say \"hi\"'>&lt;&gt;&amp;&quot;&apos;&#97;&#x62;&#128512; &#xA;</m>",
    );
    assert.deepEqual(ev, {
      type: 'stanza',
      el: {
        name: 'm',
        attrs: { a: `<>&"'AB😀`, b: "it's", c: 'say "hi"' },
        children: [`<>&"'ab😀 \n`],
      },
    });
  });

  it('accepts leading zeros in character references', () => {
    const [ev] = inStream('<m>&#x0000041;&#00066;</m>');
    assert.deepEqual(ev, { type: 'stanza', el: { name: 'm', attrs: {}, children: ['AB'] } });
  });

  it('decodes UTF-8 text, attributes and element names', () => {
    const [ev] = inStream("<café ñ='中文'>😀 é ß \uFFFD</café>");
    assert.deepEqual(ev, {
      type: 'stanza',
      el: { name: 'café', attrs: { ñ: '中文' }, children: ['😀 é ß \uFFFD'] },
    });
  });

  it('decodes CDATA sections as text and merges them with adjacent text', () => {
    const [ev] = inStream('<m>a<![CDATA[<b>&amp;]]]]>c<![CDATA[]]></m>');
    assert.deepEqual(ev, { type: 'stanza', el: { name: 'm', attrs: {}, children: ['a<b>&amp;]]c'] } });
    const [ev2] = inStream('<m><![CDATA[x]]><n/><![CDATA[y]]></m>');
    assert.deepEqual(ev2, {
      type: 'stanza',
      el: { name: 'm', attrs: {}, children: ['x', { name: 'n', attrs: {}, children: [] }, 'y'] },
    });
  });

  it('accepts a whitespace-only CDATA section between stanzas', () => {
    assert.deepEqual(inStream('<![CDATA[ \n ]]><a/>'), [
      { type: 'stanza', el: { name: 'a', attrs: {}, children: [] } },
    ]);
  });

  it('normalises line ends in text (XML §2.11) and whitespace in attribute values (§3.3.3)', () => {
    const [ev] = inStream("<m a='x\ty\nz\r\nw\rv' b='&#x9;&#xA;&#xD;'>a\r\nb\rc\n&#xD;</m>");
    assert.deepEqual(ev, {
      type: 'stanza',
      el: { name: 'm', attrs: { a: 'x y z w v', b: '\t\n\r' }, children: ['a\nb\nc\n\r'] },
    });
  });

  it('accepts attributes with either quote, whitespace around = and in end tags', () => {
    const [ev] = inStream(`<m a = "1"\n\tb\t=\t'2' ></m \n>`);
    assert.deepEqual(ev, { type: 'stanza', el: { name: 'm', attrs: { a: '1', b: '2' }, children: [] } });
  });

  it('keeps attributes named like Object.prototype members as plain data', () => {
    const r = recorder();
    r.parser.write(`${HEADER}<m toString='1' __proto__='2' constructor='3' hasOwnProperty='4'/>`);
    const [el] = r.elements as [Element];
    assert.equal(errorOf(r.events), undefined);
    assert.equal(el.attrs.toString, '1');
    assert.equal(el.attrs.constructor, '3');
    assert.ok(Object.hasOwn(el.attrs, '__proto__'));
    assert.equal(Object.getOwnPropertyDescriptor(el.attrs, '__proto__')?.value, '2');
    assert.equal(Object.getPrototypeOf(el.attrs), Object.prototype);
    assert.deepEqual(Object.keys(el.attrs), ['toString', '__proto__', 'constructor', 'hasOwnProperty']);
  });

  it('accepts a Buffer or a string', () => {
    const a = parse(Buffer.from(`${HEADER}<a>é</a>`));
    const b = parse(`${HEADER}<a>é</a>`);
    assert.deepEqual(a, b);
    assert.equal(stanzas(a)[0]?.children[0], 'é');
  });
});

describe('XML declaration and processing instructions', () => {
  it('allows the XML declaration at the very start, in its variants', () => {
    for (const decl of [
      "<?xml version='1.0'?>",
      '<?xml version="1.0"?>',
      "<?xml version='1.0' encoding='UTF-8'?>",
      "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>",
      "<?xml  version = '1.1'\n?>",
    ]) {
      const events = parse(`${decl}${HEADER}<a/>`);
      assert.equal(errorOf(events), undefined, decl);
      assert.equal(events.length, 2, decl);
    }
  });

  it('allows a UTF-8 byte order mark before the declaration or header', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    assert.equal(errorOf(parse(Buffer.concat([bom, Buffer.from(DECL + HEADER)]))), undefined);
    assert.equal(errorOf(parse(Buffer.concat([bom, Buffer.from(HEADER)]))), undefined);
    assert.equal(errorOf(parse(Buffer.concat([Buffer.from(' '), bom, Buffer.from(HEADER)]))), 'not-well-formed');
    assert.equal(errorOf(parse(Buffer.from([0xef, 0xbb, 0x41]))), 'not-well-formed');
  });

  it('rejects a malformed declaration or a non-UTF-8 encoding as not-well-formed', () => {
    for (const decl of [
      '<?xml?>',
      "<?xml version='2.0'?>",
      "<?xml encoding='UTF-8'?>",
      "<?xml version='1.0' encoding='ISO-8859-1'?>",
      "<?xml version='1.0' standalone='maybe'?>",
      "<?xml version='1.0' foo='bar'?>",
      "<?XML version='1.0'?>",
    ]) {
      assert.equal(errorOf(parse(`${decl}${HEADER}`)), 'not-well-formed', decl);
    }
  });

  it('rejects every other processing instruction as restricted-xml (RFC 6120 §11.1)', () => {
    for (const input of [
      `<?xml-stylesheet href='a'?>${HEADER}`,
      `<?foo bar?>${HEADER}`,
      `${DECL}<?foo?>${HEADER}`,
      `${DECL}${DECL}${HEADER}`,
      ` ${DECL}${HEADER}`,
      `${HEADER}${DECL}`,
      `${HEADER}<?foo?>`,
      `${HEADER}<a><?foo?></a>`,
      `${HEADER}</stream:stream><?foo?>`,
    ]) {
      assert.equal(errorOf(parse(input)), 'restricted-xml', input);
    }
  });

  it('allows the declaration again after reset()', () => {
    const r = recorder();
    r.parser.write(`${DECL}${HEADER}<a/>`);
    r.parser.reset();
    r.parser.write(`${DECL}${HEADER}<b/>`);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['start', 'stanza', 'start', 'stanza'],
    );
  });
});

describe('restricted XML (RFC 6120 §11.1)', () => {
  const cases: [string, string][] = [
    ['DOCTYPE before the header', `<!DOCTYPE stream:stream>${HEADER}`],
    ['DOCTYPE with internal subset', `${DECL}<!DOCTYPE a [<!ENTITY x 'y'>]>${HEADER}`],
    ['ENTITY declaration in a stanza', `${HEADER}<a><!ENTITY x 'y'></a>`],
    ['comment before the header', `<!-- hi -->${HEADER}`],
    ['comment between stanzas', `${HEADER}<a/><!-- hi --><b/>`],
    ['comment inside a stanza', `${HEADER}<a><!-- hi --></a>`],
    ['comment after the stream', `${HEADER}</stream:stream><!---->`],
    ['external entity reference in text', `${HEADER}<a>&nbsp;</a>`],
    ['entity reference in an attribute', `${HEADER}<a b='&foo;'/>`],
    ['entity reference in the header', `<stream:stream a='&x;'>`],
    ['entity named like an Object member', `${HEADER}<a>&constructor;</a>`],
  ];
  for (const [name, input] of cases) {
    it(name, () => {
      const events = parse(input);
      expectError(events, 'restricted-xml');
      assert.equal(stanzas(events).length, name === 'comment between stanzas' ? 1 : 0);
    });
  }
});

describe('not-well-formed input', () => {
  const body: [string, string | Buffer][] = [
    ['mismatched end tag', '<a><b></a></b>'],
    ['end tag of another name', '<a></b>'],
    ['mismatched stream end tag', '</stream:streams>'],
    ['attribute without quotes', '<a b=c/>'],
    ['attribute without value', '<a b/>'],
    ['attribute without =', "<a b 'c'/>"],
    ['attributes not separated by whitespace', "<a b='1'c='2'/>"],
    ['unterminated quote swallowing the tag end', "<a b='1></a>"],
    ['duplicate attribute', "<a b='1' b='2'/>"],
    ['duplicate namespace declaration', "<a xmlns='x' xmlns='y'/>"],
    ["'<' in an attribute value", "<a b='<'/>"],
    ["'<' inside a tag", '<a <b/>'],
    ['stray & in text', '<a>fish & chips</a>'],
    ['& without ; in text', '<a>&amp</a>'],
    ['empty reference', '<a>&;</a>'],
    ['stray & in an attribute', "<a b='x & y'/>"],
    ['text at stream level', 'hello<a/>'],
    ['non-whitespace CDATA at stream level', '<![CDATA[x]]>'],
    ["']]>' in text", '<a>x]]>y</a>'],
    ['second root element', '</stream:stream><stream:stream>'],
    ['text after the stream', '</stream:stream>x'],
    ['end tag after the stream', '</stream:stream></stream:stream>'],
    ['control character in text', '<a>\x01</a>'],
    ['NUL in text', '<a>\x00</a>'],
    ['form feed in text', '<a>\x0C</a>'],
    ['control character in an attribute', "<a b='\x1F'/>"],
    ['control character at stream level', '\x07'],
    ['U+FFFE in text', '<a>\uFFFE</a>'],
    ['U+FFFF in an attribute', "<a b='\uFFFF'/>"],
    ['&#0;', '<a>&#0;</a>'],
    ['&#x1;', '<a>&#x1;</a>'],
    ['&#x1F; in an attribute', "<a b='&#x1F;'/>"],
    ['&#xFFFE;', '<a>&#xFFFE;</a>'],
    ['&#xD800; (surrogate)', '<a>&#xD800;</a>'],
    ['&#x110000;', '<a>&#x110000;</a>'],
    ['&#99999999999;', '<a>&#99999999999;</a>'],
    ['&#x; (no digits)', '<a>&#x;</a>'],
    ['&#12a;', '<a>&#12a;</a>'],
    ['&#xG;', '<a>&#xG;</a>'],
    ['name starting with a digit', '<1a/>'],
    ['space after <', '< a/>'],
    ['two colons in a name', '<a:b:c/>'],
    ['leading colon', '<:a/>'],
    ['trailing colon', '<a:/>'],
    ['invalid non-ASCII name character', '<a×b/>'],
    ['space between / and >', '<a/ >'],
    ['slash in the middle of a tag', "<a / b='1'>"],
    ['bad markup after <!', '<a><!foo></a>'],
    ['lowercase doctype', '<a><!doctype></a>'],
    ['<!- not a comment', '<a><!-x></a>'],
    ['end tag with attributes', "<a></a b='1'>"],
    ['empty end tag', '<a></>'],
    ['lone continuation byte in text', Buffer.from([0x3c, 0x61, 0x3e, 0x80, 0x3c, 0x2f, 0x61, 0x3e])],
    ['overlong encoding', Buffer.from([0x3c, 0x61, 0x3e, 0xc0, 0x80, 0x3c, 0x2f, 0x61, 0x3e])],
    ['encoded surrogate', Buffer.from([0x3c, 0x61, 0x3e, 0xed, 0xa0, 0x80, 0x3c, 0x2f, 0x61, 0x3e])],
    ['truncated sequence before <', Buffer.from([0x3c, 0x61, 0x3e, 0xe4, 0xb8, 0x3c, 0x2f, 0x61, 0x3e])],
    ['byte 0xFF', Buffer.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e])],
    ['invalid UTF-8 in an attribute', Buffer.from([0x3c, 0x61, 0x20, 0x62, 0x3d, 0x27, 0xc3, 0x27, 0x2f, 0x3e])],
    ['invalid UTF-8 in a name', Buffer.from([0x3c, 0x61, 0xc3, 0x2f, 0x3e])],
    ['invalid UTF-8 in CDATA', Buffer.concat([Buffer.from('<a><![CDATA['), Buffer.from([0xf8]), Buffer.from(']]></a>')])],
    ['non-ASCII byte at stream level', Buffer.from([0xc3, 0xa9])],
  ];
  for (const [name, input] of body) {
    it(name, () => bodyError(input, 'not-well-formed'));
  }

  it("fails at an invalid character after '<' without waiting for '>'", () => {
    const r = recorder();
    r.parser.write(`${HEADER}<a>< `);
    expectError(r.events.slice(1), 'not-well-formed');
  });

  it('rejects malformed input before the header', () => {
    for (const input of ['hello', '</stream:stream>', '<![CDATA[x]]>', "<stream:stream a='1' a='2'>", '<stream:stream a=1>']) {
      assert.equal(errorOf(parse(input)), 'not-well-formed', input);
    }
  });
});

describe('limits', () => {
  const stanzaOf = (n: number): string => {
    // <a>…</a> of exactly n bytes
    const s = '<a>' + 'x'.repeat(n - 7) + '</a>';
    assert.equal(Buffer.byteLength(s), n);
    return s;
  };

  it('accepts a stanza of exactly maxStanzaBytes and rejects one byte more', () => {
    const limits = { maxStanzaBytes: 1000 };
    assert.equal(stanzas(inStream(stanzaOf(1000), limits)).length, 1);
    expectError(inStream(stanzaOf(1001), limits), 'policy-violation');
  });

  it('counts bytes, not characters', () => {
    const limits = { maxStanzaBytes: 200 };
    const ok = '<a>' + 'é'.repeat(96) + '</a>'; // 7 + 192 = 199 bytes, 103 characters
    const tooBig = '<a>' + 'é'.repeat(97) + '</a>'; // 201 bytes
    assert.equal(stanzas(inStream(ok, limits)).length, 1);
    expectError(inStream(tooBig, limits), 'policy-violation');
  });

  it('applies per stanza, not per stream', () => {
    const limits = { maxStanzaBytes: 300 };
    const events = inStream(stanzaOf(300).repeat(50) + ' '.repeat(1000) + stanzaOf(300), limits);
    assert.equal(errorOf(events), undefined);
    assert.equal(stanzas(events).length, 51);
  });

  it('decides at the first byte past the limit, without waiting for the stanza to end', () => {
    const limit = 500;
    const r = recorder({ maxStanzaBytes: limit });
    r.parser.write(HEADER + '<a/>');
    const start = Buffer.byteLength(HEADER) + 4;
    let fed = 0;
    const open = Buffer.from("<message to='x'><body>");
    r.parser.write(open);
    fed += open.length;
    const one = Buffer.from('y');
    while (r.events.length < 3 && fed < 10 * limit) {
      r.parser.write(one);
      fed++;
    }
    expectError(r.events, 'policy-violation');
    // The error fires on byte number limit+1 of the stanza.
    assert.equal(fed, limit + 1);
    assert.equal(Buffer.byteLength(HEADER) + 4, start);
  });

  it('rejects a stanza that exceeds the limit inside one big chunk, and ignores the rest', () => {
    const r = recorder({ maxStanzaBytes: 1024 });
    r.parser.write(HEADER + '<a>' + 'z'.repeat(100_000) + '</a><b/>');
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['start', 'error'],
    );
    assert.equal(errorOf(r.events), 'policy-violation');
  });

  it('rejects an endless attribute value inside a stanza', () => {
    const r = recorder({ maxStanzaBytes: 2048 });
    r.parser.write(HEADER + "<a b='");
    for (let i = 0; i < 100 && r.events.length < 2; i++) r.parser.write('v'.repeat(100));
    expectError(r.events, 'policy-violation');
  });

  it('caps a huge stream header (endless attribute) at maxStanzaBytes', () => {
    const r = recorder({ maxStanzaBytes: 4096 });
    r.parser.write("<stream:stream xmlns='jabber:client' to='");
    let fed = 41;
    while (r.events.length === 0 && fed < 100_000) {
      r.parser.write('a'.repeat(100));
      fed += 100;
    }
    expectError(r.events, 'policy-violation');
    assert.ok(fed <= 4096 + 100, `fed ${fed}`);
  });

  it('caps an endless XML declaration and stream end tag', () => {
    const limits = { maxStanzaBytes: 1000 };
    expectError(parse("<?xml version='1.0'" + ' '.repeat(2000), limits), 'policy-violation');
    expectError(parse(HEADER + '</stream:stream' + ' '.repeat(2000), limits), 'policy-violation');
    expectError(parse(HEADER + '<![CDATA[' + ' '.repeat(2000), limits), 'policy-violation');
  });

  it('counts the whole text of a stanza split over many chunks', () => {
    const chunks = [HEADER, '<a>'];
    for (let i = 0; i < 30; i++) chunks.push('0123456789');
    chunks.push('</a>');
    expectError(parseChunks(chunks, { maxStanzaBytes: 300 }).slice(1), 'policy-violation');
    assert.equal(stanzas(parseChunks(chunks, { maxStanzaBytes: 307 })).length, 1);
    expectError(parseChunks(chunks, { maxStanzaBytes: 306 }).slice(1), 'policy-violation');
  });

  it('enforces maxDepth (the stanza is depth 1)', () => {
    const nest = (d: number): string => '<e>'.repeat(d) + '</e>'.repeat(d);
    assert.equal(stanzas(inStream(nest(5), { maxDepth: 5 })).length, 1);
    expectError(inStream(nest(6), { maxDepth: 5 }), 'policy-violation');
    expectError(inStream('<a><b><c/></b></a>', { maxDepth: 2 }), 'policy-violation');
    assert.equal(stanzas(inStream(nest(defaultLimits.maxDepth))).length, 1);
    expectError(inStream(nest(defaultLimits.maxDepth + 1)), 'policy-violation');
  });

  it('rejects excessive depth before the deep subtree is complete', () => {
    const r = recorder({ maxDepth: 3 });
    r.parser.write(HEADER + '<a><b><c><d>');
    expectError(r.events, 'policy-violation');
  });

  it('enforces maxAttributes, namespace declarations included', () => {
    const attrs = (n: number): string => Array.from({ length: n }, (_, i) => ` a${i}='${i}'`).join('');
    assert.equal(stanzas(inStream(`<m${attrs(4)}/>`, { maxAttributes: 4 })).length, 1);
    expectError(inStream(`<m${attrs(5)}/>`, { maxAttributes: 4 }), 'policy-violation');
    expectError(inStream(`<m xmlns='a' xmlns:b='c'${attrs(3)}/>`, { maxAttributes: 4 }), 'policy-violation');
    expectError(inStream(`<m><n${attrs(5)}/></m>`, { maxAttributes: 4 }), 'policy-violation');
    expectError(parse(`<stream:stream${attrs(5)}>`, { maxAttributes: 4 }), 'policy-violation');
  });
});

describe('error handling and lifecycle', () => {
  it('reports only the first error and ignores further input until reset()', () => {
    const r = recorder();
    r.parser.write(`${HEADER}<a/><b></c>`);
    r.parser.write('<d/><!-- x -->');
    r.parser.write('&&&');
    r.parser.end();
    assert.deepEqual(
      r.events.map((e) => (e.type === 'error' ? e.condition : e.type)),
      ['start', 'stanza', 'not-well-formed'],
    );
    assert.match(r.messages[0]!, /mismatched end tag <\/c>, expected <\/b>/);
    r.parser.reset();
    r.parser.write(`${HEADER}<e/>`);
    assert.deepEqual(
      r.events.map((e) => (e.type === 'error' ? e.condition : e.type)),
      ['start', 'stanza', 'not-well-formed', 'start', 'stanza'],
    );
  });

  it('passes an XmlStreamError to onError', () => {
    let got: unknown;
    const p = new StreamParser({
      onStreamStart() {},
      onStanza() {},
      onStreamEnd() {},
      onError(err) {
        got = err;
      },
    });
    p.write('<!-- -->');
    assert.ok(got instanceof XmlStreamError);
    assert.equal((got as XmlStreamError).condition, 'restricted-xml');
    assert.equal((got as XmlStreamError).name, 'XmlStreamError');
  });

  it('reset() from a handler (STARTTLS, SASL success) discards the rest of that input', () => {
    const events: string[] = [];
    const p: StreamParser = new StreamParser({
      onStreamStart(name) {
        events.push(`start ${name}`);
      },
      onStanza(el) {
        events.push(`stanza ${el.name}`);
        if (el.name === 'starttls') p.reset();
      },
      onStreamEnd() {
        events.push('end');
      },
      onError(err) {
        events.push(`error ${err.condition}`);
      },
    });
    // Plaintext injected after <starttls/> in the same read must not be parsed
    // as part of the new (encrypted) stream.
    p.write(`${HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='set' id='evil'/>`);
    p.write(`${DECL}<stream:stream xmlns='jabber:client'><iq type='get' id='ok'/>`);
    assert.deepEqual(events, ['start stream:stream', 'stanza starttls', 'start stream:stream', 'stanza iq']);
  });

  it('reset() between writes restarts in the prolog', () => {
    const r = recorder();
    r.parser.write(`${HEADER}<a>partial`);
    r.parser.reset();
    r.parser.write(`${HEADER}<b/>`);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['start', 'start', 'stanza'],
    );
    assert.equal(stanzas(r.events)[0]?.name, 'b');
  });

  it('end() inside a stanza or a tag is not-well-formed; between stanzas it is not an error', () => {
    for (const tail of ['<a>text', '<a', "<a b='", '<![CDATA[', '<', '<a><b/>']) {
      const r = recorder();
      r.parser.write(HEADER + tail);
      r.parser.end();
      assert.equal(errorOf(r.events), 'not-well-formed', tail);
    }
    for (const input of [HEADER, `${HEADER}<a/>  `, `${HEADER}</stream:stream>`, '', '  ']) {
      const r = recorder();
      r.parser.write(input);
      r.parser.end();
      r.parser.write('garbage');
      assert.equal(errorOf(r.events), undefined, input);
    }
  });

  it('end() in the middle of a UTF-8 sequence is not-well-formed', () => {
    const r = recorder();
    r.parser.write(Buffer.concat([Buffer.from(HEADER + '<a>'), Buffer.from([0xe4, 0xb8])]));
    r.parser.end();
    assert.equal(errorOf(r.events), 'not-well-formed');
  });

  it('queues input written from inside a handler and processes it in order', () => {
    const names: string[] = [];
    const p: StreamParser = new StreamParser({
      onStreamStart() {},
      onStanza(el) {
        names.push(el.name);
        if (el.name === 'a') p.write('<c/>');
      },
      onStreamEnd() {},
      onError() {
        names.push('error');
      },
    });
    p.write(`${HEADER}<a/><b/>`);
    assert.deepEqual(names, ['a', 'b', 'c']);
  });

  it('lets onError reset() and write() again', () => {
    const events: string[] = [];
    const p: StreamParser = new StreamParser({
      onStreamStart() {
        events.push('start');
      },
      onStanza(el) {
        events.push(el.name);
      },
      onStreamEnd() {},
      onError(err) {
        events.push(err.condition);
        p.reset();
        p.write(`${HEADER}<ok/>`);
      },
    });
    p.write(`${HEADER}<!-- x -->`);
    assert.deepEqual(events, ['start', 'restricted-xml', 'start', 'ok']);
  });

  it('propagates a handler exception and then ignores input until reset()', () => {
    let n = 0;
    const p = new StreamParser({
      onStreamStart() {},
      onStanza() {
        n++;
        throw new Error('boom');
      },
      onStreamEnd() {},
      onError() {
        assert.fail('no parse error expected');
      },
    });
    assert.throws(() => p.write(`${HEADER}<a/><b/>`), /boom/);
    p.write('<c/>');
    assert.equal(n, 1);
    p.reset();
    assert.throws(() => p.write(`${HEADER}<d/>`), /boom/);
    assert.equal(n, 2);
  });

  it('never throws for bad input', () => {
    const r = recorder();
    assert.doesNotThrow(() => {
      r.parser.write(Buffer.from([0, 1, 2, 0xff, 0xfe]));
      r.parser.write('<<<>>>');
      r.parser.end();
    });
    assert.equal(errorOf(r.events), 'not-well-formed');
  });
});

describe('chunk boundaries (spot checks; see chunking.test.ts for exhaustive splits)', () => {
  it('handles a multi-byte character split between writes', () => {
    const all = Buffer.from(`${HEADER}<a b='中'>😀</a>`);
    const events = parseChunks(bytewise(all));
    assert.deepEqual(stanzas(events), [{ name: 'a', attrs: { b: '中' }, children: ['😀'] }]);
  });

  it('handles ]]> and ?> split between writes', () => {
    const events = parseChunks([DECL.slice(0, -2), '?', '>' + HEADER + '<a><![CDATA[x]', ']', '>y</a>']);
    assert.equal(errorOf(events), undefined, JSON.stringify(events));
    assert.deepEqual(stanzas(events), [{ name: 'a', attrs: {}, children: ['xy'] }]);
    const e2 = parseChunks([HEADER + '<a><![CDATA[x]]', ']]', '>y</a>']);
    assert.deepEqual(stanzas(e2), [{ name: 'a', attrs: {}, children: ['x]]y'] }]);
  });
});

describe('namespace prefixes (Namespaces in XML 1.0 §5)', () => {
  const bad: [string, string][] = [
    ['undeclared element prefix', '<message><foo:body>x</foo:body></message>'],
    ['undeclared prefix on the stanza itself', '<foo:message/>'],
    ['undeclared attribute prefix', "<message><body foo:lang='x'>x</body></message>"],
    ['prefix declared on a sibling only', "<m><a xmlns:p='urn:p'/><p:b/></m>"],
    ['empty prefixed declaration', "<m xmlns:p=''/>"],
    ['the xmlns prefix on an element', '<xmlns:m/>'],
  ];
  for (const [what, body] of bad) {
    it(`${what} → not-well-formed`, () => bodyError(body, 'not-well-formed'));
  }

  it('declared prefixes, xml:lang and the stream header prefix are fine', () => {
    const events = inStream("<m xml:lang='en'><p:a xmlns:p='urn:p'><p:b p:c='1'/></p:a><q:d xmlns:q='urn:q'/><stream:error/></m>");
    assert.equal(errorOf(events), undefined, JSON.stringify(events));
    assert.equal(stanzas(events).length, 1);
  });

  it('declarations do not leak from one stanza to the next', () => {
    bodyError("<a xmlns:p='urn:p'><p:b/></a><p:c/>", 'not-well-formed');
  });
});
