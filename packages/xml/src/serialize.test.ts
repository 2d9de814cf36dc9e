import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Element, escapeAttr, escapeText, serialize, streamFooter, streamHeader } from './index.js';
import { parse, stanzas, toPlain } from './testutil.js';

describe('escapeText', () => {
  it('escapes markup characters and CR, and leaves other text alone', () => {
    assert.equal(escapeText('a & b < c > d ]]> e'), 'a &amp; b &lt; c &gt; d ]]&gt; e');
    assert.equal(escapeText('x\r\ny'), 'x&#xD;\ny');
    assert.equal(escapeText('"quotes" and \'apostrophes\'\ttab\nnl'), '"quotes" and \'apostrophes\'\ttab\nnl');
    const plain = 'plain text é 😀';
    assert.equal(escapeText(plain), plain);
  });

  it('replaces characters XML cannot carry with U+FFFD', () => {
    assert.equal(escapeText('a\x00b\x01c\x1Fd\uFFFEe\uFFFF'), 'a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFD');
    assert.equal(escapeText('lone \uD800 high, lone \uDC00 low, pair \uD83D\uDE00'), 'lone \uFFFD high, lone \uFFFD low, pair 😀');
  });
});

describe('escapeAttr', () => {
  it('escapes both quote kinds, markup characters and whitespace that normalisation would change', () => {
    assert.equal(escapeAttr(`it's "x" & <y>`), 'it&apos;s &quot;x&quot; &amp; &lt;y&gt;');
    assert.equal(escapeAttr('a\tb\nc\rd'), 'a&#x9;b&#xA;c&#xD;d');
    assert.equal(escapeAttr('a\x02b'), 'a\uFFFDb');
    assert.equal(escapeAttr('simple@example.com/rés'), 'simple@example.com/rés');
  });
});

describe('serialize', () => {
  it('writes elements, attributes and text with escaping', () => {
    const el = new Element('message', { to: 'a@b', type: 'chat' });
    el.c('body').t('1 < 2 & "3"');
    el.c('x', { xmlns: 'urn:x', v: `'"` });
    assert.equal(
      serialize(el),
      `<message to='a@b' type='chat'><body>1 &lt; 2 &amp; "3"</body><x xmlns='urn:x' v='&apos;&quot;'/></message>`,
    );
  });

  it('escapes a lone text child (ltx stringify does not)', () => {
    const el = new Element('b');
    el.t('<script>');
    assert.equal(serialize(el), '<b>&lt;script&gt;</b>');
  });

  it('self-closes empty elements, skips null/undefined attributes, stringifies numbers', () => {
    const el = new Element('iq', { id: 7, a: null, b: undefined, type: 'get' });
    assert.equal(serialize(el), "<iq id='7' type='get'/>");
  });

  it('keeps namespace declarations exactly as set, adding none', () => {
    const el = new Element('stream:features');
    el.c('bind', { xmlns: 'urn:ietf:params:xml:ns:xmpp-bind' });
    assert.equal(serialize(el), "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
  });

  it('round-trips through the parser, including whitespace and CR in attributes and text', () => {
    const el = new Element('m', { a: ' x\ty\nz\r ', b: `'"&<>` });
    el.t('line1\r\nline2\r').c('c').t(']]>').up().t('&amp;');
    const events = parse(
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + serialize(el),
    );
    assert.deepEqual(stanzas(events), [toPlain(el)]);
  });
});

describe('stream framing', () => {
  it('streamHeader writes the declaration and the opening tag with escaped attributes', () => {
    assert.equal(
      streamHeader({
        from: 'example.com',
        to: "o'neil@example.com",
        id: 'abc&1',
        version: '1.0',
        'xml:lang': 'en',
        xmlns: 'jabber:client',
        'xmlns:stream': 'http://etherx.jabber.org/streams',
      }),
      "<?xml version='1.0'?><stream:stream from='example.com' to='o&apos;neil@example.com' id='abc&amp;1' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    );
  });

  it('streamFooter closes the stream', () => {
    assert.equal(streamFooter, '</stream:stream>');
  });

  it('header + stanza + footer parse back', () => {
    const doc =
      streamHeader({ xmlns: 'jabber:client', 'xmlns:stream': 'http://etherx.jabber.org/streams', id: 'x' }) +
      serialize(new Element('presence')) +
      streamFooter;
    assert.deepEqual(parse(doc), [
      {
        type: 'start',
        name: 'stream:stream',
        attrs: { xmlns: 'jabber:client', 'xmlns:stream': 'http://etherx.jabber.org/streams', id: 'x' },
      },
      { type: 'stanza', el: { name: 'presence', attrs: {}, children: [] } },
      { type: 'end' },
    ]);
  });
});
