/**
 * The contract of generic module storage (module-storage.ts), run against
 * every backend by embedded.test.ts and redis.test.ts; the archive part is
 * in archive-contract.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { archiveContract } from './archive-contract.js';
import type { ContractSubject } from './contract.js';
import type { ModuleStorage, StoredValue } from './module-storage.js';

/** Owners and keys a JID-keyed module meets: separators, hash-tag braces, percent, slash, NUL, non-ASCII. */
export const AWKWARD = ['juliet@example.com', 'a:b|c@x', '{x}@y', '%7Bx%7D@y', 'x}@{y', 'a@b/c', 'a\u0000b', 'ü@例え.jp', '😀'];

export function moduleStorageContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`${name}: module storage contract`, () => {
    let subject: ContractSubject;
    let s: ModuleStorage;
    beforeEach(async () => {
      subject = await make();
      s = subject.stores.storage;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('refuses store names outside [a-z0-9_-] with a TypeError', () => {
      for (const bad of ['', 'Vcard', 'v card', 'a:b', 'a{b}', 'é', 'a/b', 'a.b']) {
        assert.throws(() => s.keyval(bad), TypeError, bad);
        assert.throws(() => s.map(bad), TypeError, bad);
        assert.throws(() => s.archive(bad), TypeError, bad);
      }
      for (const good of ['vcard', 'private', 'block-list_2', '0']) {
        assert.doesNotThrow(() => s.keyval(good));
        assert.doesNotThrow(() => s.map(good));
        assert.doesNotThrow(() => s.archive(good));
      }
    });

    describe('keyval', () => {
      it('gets null when unset, sets, overwrites and deletes', async () => {
        const kv = s.keyval<{ n: number }>('vcard');
        assert.equal(await kv.get('juliet@example.com'), null);
        await kv.set('juliet@example.com', { n: 1 });
        assert.deepEqual(await kv.get('juliet@example.com'), { n: 1 });
        await kv.set('juliet@example.com', { n: 2 });
        assert.deepEqual(await kv.get('juliet@example.com'), { n: 2 });
        assert.equal(await kv.delete('juliet@example.com'), true);
        assert.equal(await kv.get('juliet@example.com'), null);
        assert.equal(await kv.delete('juliet@example.com'), false);
      });

      it('keeps names, kinds and owners apart (awkward owners included)', async () => {
        await s.keyval('vcard').set('juliet@example.com', 'vcard');
        await s.keyval('vcard2').set('juliet@example.com', 'vcard2');
        await s.map('vcard').set('juliet@example.com', 'k', 'map');
        for (const o of AWKWARD) await s.keyval('prefs').set(o, `v:${o}`);
        assert.equal(await s.keyval('vcard').get('juliet@example.com'), 'vcard');
        assert.equal(await s.keyval('vcard2').get('juliet@example.com'), 'vcard2');
        assert.equal(await s.keyval('vcard').get('romeo@example.com'), null);
        for (const o of AWKWARD) assert.equal(await s.keyval('prefs').get(o), `v:${o}`, o);
        assert.equal(await s.keyval('prefs').get('a'), null);
        assert.equal(await s.keyval('prefs').get('a:b'), null);
        assert.equal(await s.keyval('vcard').delete('juliet@example.com'), true);
        assert.equal(await s.keyval('vcard2').get('juliet@example.com'), 'vcard2');
        assert.equal(await s.map('vcard').get('juliet@example.com', 'k'), 'map');
      });

      it('round-trips JSON values as fresh copies; a stored null reads as null but exists', async () => {
        const kv = s.keyval('blob');
        const values: StoredValue[] = [
          { a: [1, -2.5, 0, 1e300, true, false, null], nested: { deep: { deeper: ['x', { y: 'z' }] } }, empty: {}, list: [] },
          ['é', '日本語', '😀', 'a\u0000b', '\u202eRTL', 'line\nbreak', ''],
          'Ünïcödé 😀 \u{10FFFF}',
          42,
          true,
          { __proto__: 'not a prototype', constructor: 'x' } as unknown as StoredValue,
        ];
        for (const v of values) {
          await kv.set('o', v);
          assert.deepEqual(await kv.get('o'), v);
        }
        const obj = { list: [1, 2] };
        await kv.set('o', obj);
        const got = (await kv.get('o')) as { list: number[] };
        got.list.push(3);
        obj.list.push(4);
        assert.deepEqual(await kv.get('o'), { list: [1, 2] });
        await kv.set('o', null);
        assert.equal(await kv.get('o'), null);
        assert.equal(await kv.delete('o'), true);
      });

      it('refuses what is not a JSON value and an empty owner with a StoreError, storing nothing', async () => {
        const kv = s.keyval('blob');
        const cyclic: Record<string, unknown> = {};
        cyclic['self'] = cyclic;
        const bad: unknown[] = [undefined, NaN, Infinity, () => 1, new Date(0), new Map(), 10n, { a: undefined }, [1, undefined], cyclic, Symbol('x')];
        for (const v of bad) await assert.rejects(kv.set('o', v as StoredValue), { name: 'StoreError' }, String(typeof v));
        assert.equal(await kv.get('o'), null);
        await assert.rejects(kv.set('', 1), { name: 'StoreError' });
        await assert.rejects(kv.get(''), { name: 'StoreError' });
      });

      it('same name, same data after a reopen (another process)', async () => {
        await s.keyval('vcard').set('juliet@example.com', { fn: 'Juliet' });
        await s.map('private').set('juliet@example.com', 'storage:bookmarks', '<storage/>');
        if (!subject.reopen) return;
        const again = (await subject.reopen()).storage;
        assert.deepEqual(await again.keyval('vcard').get('juliet@example.com'), { fn: 'Juliet' });
        assert.equal(await again.map('private').get('juliet@example.com', 'storage:bookmarks'), '<storage/>');
      });
    });

    describe('map', () => {
      it('gets null when unset, sets, overwrites and deletes one key', async () => {
        const m = s.map<string>('private');
        assert.equal(await m.get('juliet@example.com', 'ns1'), null);
        await m.set('juliet@example.com', 'ns1', 'a');
        await m.set('juliet@example.com', 'ns2', 'b');
        await m.set('juliet@example.com', 'ns1', 'c');
        assert.equal(await m.get('juliet@example.com', 'ns1'), 'c');
        assert.equal(await m.delete('juliet@example.com', 'ns1'), true);
        assert.equal(await m.delete('juliet@example.com', 'ns1'), false);
        assert.equal(await m.get('juliet@example.com', 'ns1'), null);
        assert.deepEqual(await m.all('juliet@example.com'), [['ns2', 'b']]);
      });

      it('setMany sets every entry (the last of a repeated key wins); a bad value in it writes none', async () => {
        const m = s.map('blocklist');
        await m.setMany('o', [['a@x', true], ['b@x', { why: 'spam' }], ['a@x', false]]);
        assert.deepEqual(await m.all('o'), [['a@x', false], ['b@x', { why: 'spam' }]]);
        await m.setMany('o', []);
        await assert.rejects(m.setMany('o', [['c@x', 1], ['d@x', NaN]]), { name: 'StoreError' });
        assert.deepEqual(await m.all('o'), [['a@x', false], ['b@x', { why: 'spam' }]]);
        assert.equal(await m.get('o', 'c@x'), null);
      });

      it('all() lists keys in code point order (not UTF-16 order), any string as a key', async () => {
        const m = s.map<number>('order');
        const keys = ['b', 'a', '😀', 'ﬁ', 'A', 'é', 'z', '日本', 'a:b', 'a|b', 'ab', '', 'a\u0000b', 'a\u0001'];
        await m.setMany('o', keys.map((k, i) => [k, i] as const));
        const listed = await m.all('o');
        assert.deepEqual(
          listed.map(([k]) => k),
          ['', 'A', 'a', 'a\u0000b', 'a\u0001', 'a:b', 'ab', 'a|b', 'b', 'z', 'é', '日本', 'ﬁ', '😀'],
        );
        for (const [k, v] of listed) assert.equal(v, keys.indexOf(k), k);
      });

      it('clear() forgets one owner of one name only; owners never see each other', async () => {
        const m = s.map('private');
        for (const o of AWKWARD) await m.setMany(o, [['k', o], [`k:${o}`, 1]]);
        await m.set('a', 'k', 'prefix owner');
        await s.map('other').set('juliet@example.com', 'k', 'other');
        for (const o of AWKWARD) assert.deepEqual(await m.all(o), [['k', o], [`k:${o}`, 1]], o);
        await m.clear('juliet@example.com');
        assert.deepEqual(await m.all('juliet@example.com'), []);
        assert.equal(await m.get('juliet@example.com', 'k'), null);
        assert.deepEqual(await m.all('a'), [['k', 'prefix owner']]);
        assert.deepEqual(await m.all('a\u0000b'), [['k', 'a\u0000b'], ['k:a\u0000b', 1]]);
        assert.equal(await s.map('other').get('juliet@example.com', 'k'), 'other');
        await m.clear('nobody@x');
        await assert.rejects(m.all(''), { name: 'StoreError' });
      });
    });

    it('turns a backend failure (a closed store) into a StoreError', async () => {
      const kv = s.keyval('vcard');
      const m = s.map('private');
      const a = s.archive('mam');
      await kv.set('o', 1);
      await subject.stores.close();
      await assert.rejects(kv.get('o'), { name: 'StoreError' });
      await assert.rejects(kv.set('o', 2), { name: 'StoreError' });
      await assert.rejects(m.all('o'), { name: 'StoreError' });
      await assert.rejects(m.setMany('o', [['k', 1]]), { name: 'StoreError' });
      await assert.rejects(a.append('o', { with: 'w', data: 'd' }), { name: 'StoreError' });
      await assert.rejects(a.query('o', { max: 5, before: '' }), { name: 'StoreError' });
      await assert.rejects(a.owners({ max: 5 }), { name: 'StoreError' });
    });

    archiveContract(() => s, () => subject);
  });
}
