/**
 * The parser must give identical results however the bytes are split across
 * write() calls: byte by byte, at every single cut point, and in random
 * chunks, including multi-byte characters, entities, CDATA terminators and
 * tags split anywhere.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DECL, HEADER, bytewise, errorOf, parse, parseChunks, randomSplit, rng, splitAt, stanzas } from './testutil.js';
import type { StreamParserLimits, XmlViolation } from './types.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const valid: [string, Buffer][] = [
  ['chat message', Buffer.from(`${DECL}${HEADER}<message to='a@b' type='chat'><body>hi</body></message></stream:stream>`)],
  [
    'multi-byte text, attributes and names',
    Buffer.from(`${HEADER}<message to='jülïet@éxample.com'><body>中文 😀 é\u00a0ß 𝄞</body><ñ:x xmlns:ñ='u' ñ:a='ä'/></message>`),
  ],
  [
    'entities and character references everywhere',
    Buffer.from(
      `${HEADER}<m a='&lt;&amp;&gt;&quot;&apos;&#x1F600;&#233;' b="&apos;">x&amp;y&lt;z&gt;&#x10FFFF;&#9;&#xD;</m>`,
    ),
  ],
  [
    'CDATA with brackets near the terminator',
    Buffer.from(`${HEADER}<m><![CDATA[]]><![CDATA[]]]><![CDATA[a]]]]>b<![CDATA[<&>]]]]><![CDATA[ ]]></m>`),
  ],
  [
    'whitespace keepalives, nesting, self-closing, stream end',
    Buffer.from(
      `${DECL}\n${HEADER}\n \t<iq type='get' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'><group>g</group></item></query></iq>\r\n <presence/> </stream:stream> \n`,
    ),
  ],
  ['BOM and declaration', Buffer.concat([BOM, Buffer.from(`${DECL}${HEADER}<a/>`)])],
  [
    'line ends and attribute whitespace',
    Buffer.from(`${HEADER}<m a='1\r\n2\t3\n4\r5'>x\r\ny\rz\n</m>`),
  ],
  [
    'quotes and > inside attribute values, spaces in tags',
    Buffer.from(`${HEADER}<m a = "it's > x" b='say "hi"' ><n\n/></m >`),
  ],
  ['self-closed stream', Buffer.from("<stream:stream xmlns:stream='x' />")],
];

const invalid: [string, Buffer, XmlViolation][] = [
  ['comment in a stanza', Buffer.from(`${HEADER}<a>x<!-- c --></a>`), 'restricted-xml'],
  ['DOCTYPE', Buffer.from(`${DECL}<!DOCTYPE x>${HEADER}`), 'restricted-xml'],
  ['PI', Buffer.from(`${HEADER}<a/><?pi x?>`), 'restricted-xml'],
  ['unknown entity', Buffer.from(`${HEADER}<a>&ouml;</a>`), 'restricted-xml'],
  ['mismatched tag', Buffer.from(`${HEADER}<a><b>中</a>`), 'not-well-formed'],
  ['invalid UTF-8 after a valid multi-byte char', Buffer.from([...Buffer.from(`${HEADER}<a>é`), 0xe4, 0x41, ...Buffer.from('</a>')]), 'not-well-formed'],
  ['bad char reference', Buffer.from(`${HEADER}<a b='&#x1;'/>`), 'not-well-formed'],
  ['text at depth 0', Buffer.from(`${HEADER}<a/>x`), 'not-well-formed'],
  ['too big', Buffer.from(`${HEADER}<a>${'é'.repeat(200)}</a>`), 'policy-violation'],
  ['too deep', Buffer.from(`${HEADER}${'<a>'.repeat(9)}`), 'policy-violation'],
];

const LIMITS: Partial<StreamParserLimits> = { maxStanzaBytes: 300, maxDepth: 8 };

function checkAllSplits(doc: Buffer): void {
  const expected = parse(doc, LIMITS);
  assert.deepEqual(parseChunks(bytewise(doc), LIMITS), expected, 'byte by byte');
  for (let cut = 1; cut < doc.length; cut++) {
    assert.deepEqual(parseChunks(splitAt(doc, [cut]), LIMITS), expected, `cut at ${cut}`);
  }
  const random = rng(doc.length);
  for (let i = 0; i < 50; i++) {
    const chunks = randomSplit(doc, random, 1 + (i % 12));
    assert.deepEqual(parseChunks(chunks, LIMITS), expected, `random split #${i}`);
  }
}

describe('chunking: valid documents', () => {
  for (const [name, doc] of valid) {
    it(name, () => {
      const events = parse(doc, LIMITS);
      assert.equal(errorOf(events), undefined, JSON.stringify(events));
      assert.ok(events.length >= 2);
      checkAllSplits(doc);
    });
  }

  it('the corpus decodes to the expected content', () => {
    const doc = valid[1]![1];
    assert.deepEqual(stanzas(parse(doc)), [
      {
        name: 'message',
        attrs: { to: 'jülïet@éxample.com' },
        children: [
          { name: 'body', attrs: {}, children: ['中文 😀 é\u00a0ß 𝄞'] },
          { name: 'ñ:x', attrs: { 'xmlns:ñ': 'u', 'ñ:a': 'ä' }, children: [] },
        ],
      },
    ]);
    assert.deepEqual(stanzas(parse(valid[3]![1])), [{ name: 'm', attrs: {}, children: [']a]]b<&>]] '] }]);
    assert.deepEqual(stanzas(parse(valid[6]![1])), [{ name: 'm', attrs: { a: '1 2 3 4 5' }, children: ['x\ny\nz\n'] }]);
  });
});

describe('chunking: invalid documents give the same error however split', () => {
  for (const [name, doc, condition] of invalid) {
    it(name, () => {
      assert.equal(errorOf(parse(doc, LIMITS)), condition);
      checkAllSplits(doc);
    });
  }
});
