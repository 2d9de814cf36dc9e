import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SHARDS, actorSubject, shardOf } from './index.js';

describe('shardOf', () => {
  it('is FNV-1a 32-bit over UTF-8 (reference vectors)', () => {
    // With shardCount 2^32 - 1 the modulo leaves these hashes unchanged.
    assert.equal(shardOf('a', 2 ** 32 - 1), 0xe40c292c);
    assert.equal(shardOf('foobar', 2 ** 32 - 1), 0xbf9cf968);
    assert.equal(shardOf('', 2 ** 32 - 1), 0x811c9dc5);
  });

  it('never changes: pinned shards (senders and owners of every version must agree)', () => {
    const pinned: Array<[string, number]> = [
      ['alice@example.com', 6],
      ['bob@example.org', 42],
      ['juliet@capulet.lit', 37],
      ['romeo@montague.lit', 28],
      ['ñandú@example.com', 34],
    ];
    for (const [key, shard] of pinned) assert.equal(shardOf(key, 64), shard, key);
    assert.equal(shardOf('ñandú@example.com', 1000), 530);
  });

  it('spreads keys evenly', () => {
    const counts = new Array<number>(DEFAULT_SHARDS).fill(0);
    const N = 64_000;
    for (let i = 0; i < N; i++) counts[shardOf(`user${i}@example.com`, DEFAULT_SHARDS)]! += 1;
    const mean = N / DEFAULT_SHARDS;
    for (const c of counts) assert.ok(Math.abs(c - mean) < mean * 0.1, `shard count ${c} vs mean ${mean}`);
  });

  it('rejects a bad shard count', () => {
    assert.throws(() => shardOf('a', 0), RangeError);
    assert.throws(() => shardOf('a', 1.5), RangeError);
  });
});

describe('actorSubject', () => {
  it('is prefix.shard.domain.local with escaped tokens', () => {
    assert.equal(actorSubject('xmpp.user', 64, 'example.com', 'alice'), 'xmpp.user.6.example_2ecom.alice');
    assert.equal(actorSubject('xmpp.user', 64, 'exa.mple', 'a.b'), `xmpp.user.${shardOf('a.b@exa.mple', 64)}.exa_2emple.a_2eb`);
  });
  it('hashes the bare JID string', () => {
    for (const local of ['x', 'y.z', 'ñ']) {
      const s = actorSubject('p', 64, 'd.example', local).split('.');
      assert.equal(Number(s[1]), shardOf(`${local}@d.example`, 64));
    }
  });
});
