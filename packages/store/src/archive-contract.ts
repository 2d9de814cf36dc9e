/**
 * The archive part of the module storage contract (module-storage-contract.ts
 * runs it inside its describe, with its subject). Paging and owners are in
 * archive-paging-contract.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { archivePagingContract } from './archive-paging-contract.js';
import type { ContractSubject } from './contract.js';
import { ArchiveIdNotFoundError, type ArchiveItem, type ArchivePage, type ArchiveStore, type ModuleStorage } from './module-storage.js';
import { StoreError } from './types.js';

export const O = 'juliet@capulet.lit';
export const datas = (p: ArchivePage | ArchiveItem[]): string[] => (Array.isArray(p) ? p : p.items).map((i) => i.data);

/** Appends data m0…m(n-1) at times 1000, 2000, … (or `times`), peers from `peers` in turn. */
export async function fill(a: ArchiveStore, n: number, peers: string[] = ['romeo@montague.lit/orchard'], times?: number[]): Promise<ArchiveItem[]> {
  const out: ArchiveItem[] = [];
  for (let i = 0; i < n; i++) out.push(await a.append(O, { with: peers[i % peers.length] as string, data: `m${i}`, time: times?.[i] ?? (i + 1) * 1000 }));
  return out;
}

export const notFound = (id: string) => (err: unknown): boolean =>
  err instanceof ArchiveIdNotFoundError && err instanceof StoreError && err.name === 'ArchiveIdNotFoundError' && err.id === id;

export function archiveContract(storage: () => ModuleStorage, subject: () => ContractSubject): void {
  describe('archive', () => {
    it('appends in order with strictly increasing ids, also within one ms, and gets items back', async () => {
      const a = storage().archive('mam');
      const t0 = Date.now();
      const now = await a.append(O, { with: 'romeo@montague.lit', data: '<message/>' });
      const t1 = Date.now();
      assert.ok(now.time >= t0 && now.time <= t1, `default time ${now.time} is now (${t0}..${t1})`);
      const b = storage().archive('mam2');
      const same = [];
      for (let i = 0; i < 5; i++) same.push(await b.append(O, { with: 'w', data: `d${i}`, time: 5_000 }));
      assert.deepEqual(same.map((i) => i.time), [5_000, 5_000, 5_000, 5_000, 5_000]);
      for (let i = 1; i < same.length; i++) assert.ok((same[i] as ArchiveItem).id > (same[i - 1] as ArchiveItem).id, 'ids increase as strings');
      assert.equal(new Set(same.map((i) => i.id)).size, 5);
      const later = await b.append(O, { with: 'w', data: 'later', time: 6_000 });
      assert.ok(later.id > (same[4] as ArchiveItem).id);
      assert.deepEqual(await b.get(O, (same[2] as ArchiveItem).id), { id: (same[2] as ArchiveItem).id, time: 5_000, with: 'w', data: 'd2' });
      assert.deepEqual(await b.get(O, later.id), later);
      assert.equal(await b.get(O, 'nope'), null);
      assert.equal(await b.get('romeo@montague.lit', later.id), null);
      assert.equal(await a.get(O, later.id), null);
      const all = await b.query(O, { max: 100 });
      assert.deepEqual(datas(all), ['d0', 'd1', 'd2', 'd3', 'd4', 'later']);
      assert.deepEqual(all.items, [...same, later]);
      assert.equal(all.complete, true);
      assert.equal(all.count, 6);
    });

    it('never goes back in time: an older time is stored as the newest item’s', async () => {
      const a = storage().archive('mam');
      const x = await a.append(O, { with: 'w', data: 'x', time: 9_000 });
      const y = await a.append(O, { with: 'w', data: 'y', time: 1_000 });
      assert.equal(y.time, 9_000);
      assert.ok(y.id > x.id);
      assert.deepEqual(datas(await a.query(O, { max: 10 })), ['x', 'y']);
      assert.deepEqual(datas(await a.query(O, { max: 10, end: 8_999 })), []);
    });

    it('round-trips payloads and peers (unicode, separators, large)', async () => {
      const a = storage().archive('mam');
      const big = 'x'.repeat(100_000);
      const items = [
        { with: 'ü{x}|a:b@例え.jp/res/with/slash', data: '<body>Ünïcödé 😀 \u{10FFFF}</body>' },
        { with: 'a\u0000b@c', data: 'nul\u0000inside' },
        { with: '', data: '' },
        { with: 'big@x', data: big },
      ];
      for (const it of items) {
        const got = await a.append(O, { ...it, time: 1_000 });
        assert.deepEqual({ with: got.with, data: got.data }, it);
        assert.deepEqual(await a.get(O, got.id), got);
      }
      const page = await a.query(O, { max: 10, with: 'ü{x}|a:b@例え.jp' });
      assert.deepEqual(datas(page), [items[0]?.data]);
      assert.equal((await a.query(O, { max: 10, with: 'a\u0000b@c' })).items[0]?.data, 'nul\u0000inside');
      assert.equal((await a.query(O, { max: 10, with: '' })).count, 1);
    });

    it('filters by with: a bare JID matches its full JIDs, a full JID only itself', async () => {
      const a = storage().archive('mam');
      await fill(a, 8, [
        'romeo@montague.lit/orchard', 'romeo@montague.lit', 'nurse@capulet.lit', 'romeo@montague.lit/balcony',
        'romeo@montague.lita', 'romeo@montague.lit.evil/x', 'nurse@capulet.lita/0000000000000001', 'montague.lit/romeo',
      ]);
      const bare = await a.query(O, { with: 'romeo@montague.lit', max: 10 });
      assert.deepEqual(datas(bare), ['m0', 'm1', 'm3']);
      assert.equal(bare.count, 3);
      assert.equal(bare.complete, true);
      assert.deepEqual(datas(await a.query(O, { with: 'romeo@montague.lit/orchard', max: 10 })), ['m0']);
      assert.deepEqual(datas(await a.query(O, { with: 'nurse@capulet.lit', max: 10 })), ['m2']);
      assert.deepEqual(datas(await a.query(O, { with: 'montague.lit', max: 10 })), ['m7']);
      const none = await a.query(O, { with: 'tybalt@capulet.lit', max: 10 });
      assert.deepEqual(none, { items: [], complete: true, count: 0 });
    });

    it('filters by start/end (inclusive), alone and with a peer', async () => {
      const a = storage().archive('mam');
      await fill(a, 5, ['romeo@montague.lit/r', 'nurse@capulet.lit']);
      assert.deepEqual(datas(await a.query(O, { start: 2_000, end: 4_000, max: 10 })), ['m1', 'm2', 'm3']);
      assert.equal((await a.query(O, { start: 2_000, end: 4_000, max: 10 })).count, 3);
      assert.deepEqual(datas(await a.query(O, { start: 2_500, max: 10 })), ['m2', 'm3', 'm4']);
      assert.deepEqual(datas(await a.query(O, { end: 1_999, max: 10 })), ['m0']);
      assert.deepEqual(datas(await a.query(O, { start: 1_000.5, end: 3_000.5, max: 10 })), ['m1', 'm2']);
      assert.deepEqual(datas(await a.query(O, { start: 2_000, end: 5_000, with: 'romeo@montague.lit', max: 10 })), ['m2', 'm4']);
      assert.deepEqual(await a.query(O, { start: 4_000, end: 2_000, max: 10 }), { items: [], complete: true, count: 0 });
      assert.deepEqual(await a.query(O, { end: -1, max: 10 }), { items: [], complete: true, count: 0 });
      assert.deepEqual(await a.query(O, { start: 6_000, max: 10 }), { items: [], complete: true, count: 0 });
    });

    it('filters by ids (archive order, combined with the other filters); an unknown id is ArchiveIdNotFoundError', async () => {
      const a = storage().archive('mam');
      const it = await fill(a, 5, ['romeo@montague.lit/r', 'nurse@capulet.lit']);
      const id = (i: number): string => (it[i] as ArchiveItem).id;
      const p = await a.query(O, { ids: [id(3), id(0), id(3)], max: 10 });
      assert.deepEqual(datas(p), ['m0', 'm3']);
      assert.equal(p.count, 2);
      assert.equal(p.complete, true);
      assert.deepEqual(datas(await a.query(O, { ids: [id(0), id(1), id(2)], with: 'romeo@montague.lit', max: 10 })), ['m0', 'm2']);
      assert.deepEqual(datas(await a.query(O, { ids: [id(0), id(1), id(2)], start: 2_000, max: 10 })), ['m1', 'm2']);
      const limited = await a.query(O, { ids: [id(0), id(1), id(2), id(4)], max: 2 });
      assert.deepEqual([datas(limited), limited.complete, limited.count], [['m0', 'm1'], false, 4]);
      const back = await a.query(O, { ids: [id(0), id(1), id(2), id(4)], max: 2, before: '' });
      assert.deepEqual([datas(back), back.complete, back.count], [['m2', 'm4'], false, 4]);
      assert.deepEqual(await a.query(O, { ids: [], max: 2 }), { items: [], complete: true, count: 0 });
      await assert.rejects(a.query(O, { ids: [id(1), 'nope'], max: 10 }), notFound('nope'));
      const other = await storage().archive('mam').append('romeo@montague.lit', { with: O, data: 'x' });
      await assert.rejects(a.query(O, { ids: [other.id], max: 10 }), notFound(other.id));
      await assert.rejects(storage().archive('muc').query(O, { ids: [id(1)], max: 10 }), notFound(id(1)));
    });

    it('prunes by age and by count, keeping indexes right; ids still increase after pruning everything', async () => {
      const a = storage().archive('mam');
      const it = await fill(a, 5, ['romeo@montague.lit/r', 'nurse@capulet.lit']);
      assert.equal(await a.prune(O, {}), 0);
      assert.equal(await a.prune(O, { before: 1_000 }), 0);
      assert.equal(await a.prune(O, { before: 3_000 }), 2);
      assert.deepEqual(datas(await a.query(O, { max: 10 })), ['m2', 'm3', 'm4']);
      assert.equal(await a.get(O, (it[0] as ArchiveItem).id), null);
      await assert.rejects(a.query(O, { after: (it[1] as ArchiveItem).id, max: 10 }), notFound((it[1] as ArchiveItem).id));
      const romeo = await a.query(O, { with: 'romeo@montague.lit', max: 10 });
      assert.deepEqual([datas(romeo), romeo.count], [['m2', 'm4'], 2]);
      assert.equal(await a.prune(O, { keep: 5 }), 0);
      assert.equal(await a.prune(O, { keep: 2 }), 1);
      assert.deepEqual(datas(await a.query(O, { max: 10 })), ['m3', 'm4']);
      // Both rules: the one deleting more wins.
      await fill(a, 2, ['x@y'], [6_000, 7_000]);
      assert.equal(await a.prune(O, { before: 5_000, keep: 2 }), 2);
      assert.deepEqual(datas(await a.query(O, { max: 10 })), ['m0', 'm1']);
      assert.equal(await a.prune(O, { before: 7_000, keep: 3 }), 1);
      assert.equal(await a.prune(O, { keep: 0 }), 1);
      assert.deepEqual(await a.query(O, { max: 10 }), { items: [], complete: true, count: 0 });
      assert.deepEqual(await a.query(O, { with: 'x@y', max: 10 }), { items: [], complete: true, count: 0 });
      const next = await a.append(O, { with: 'x@y', data: 'again', time: 1_000 });
      assert.ok(next.id > (it[4] as ArchiveItem).id);
      assert.equal(next.time, 7_000);
      await assert.rejects(a.prune(O, { keep: -1 }), { name: 'StoreError' });
    });

    it('clear() forgets one owner’s archive (and its index), nothing else', async () => {
      const a = storage().archive('mam');
      const it = await fill(a, 3, ['romeo@montague.lit/r']);
      const keep = await a.append('romeo@montague.lit', { with: O, data: 'romeo', time: 1_000 });
      const muc = await storage().archive('muc').append(O, { with: 'room@muc', data: 'muc', time: 1_000 });
      await a.clear(O);
      assert.deepEqual(await a.query(O, { max: 10 }), { items: [], complete: true, count: 0 });
      assert.deepEqual(await a.query(O, { with: 'romeo@montague.lit', max: 10 }), { items: [], complete: true, count: 0 });
      assert.equal(await a.get(O, (it[0] as ArchiveItem).id), null);
      assert.deepEqual(await a.get('romeo@montague.lit', keep.id), keep);
      assert.deepEqual(await storage().archive('muc').get(O, muc.id), muc);
      const again = await a.append(O, { with: 'romeo@montague.lit', data: 'new', time: 9_000 });
      assert.deepEqual(datas(await a.query(O, { with: 'romeo@montague.lit', max: 10 })), ['new']);
      assert.equal(again.time, 9_000);
    });

    it('refuses bad input with a StoreError; survives a reopen', async () => {
      const a = storage().archive('mam');
      for (const time of [-1, 1.5, NaN, 2 ** 47]) await assert.rejects(a.append(O, { with: 'w', data: 'd', time }), { name: 'StoreError' }, String(time));
      await assert.rejects(a.append('', { with: 'w', data: 'd' }), { name: 'StoreError' });
      await assert.rejects(a.append(O, { with: 'w', data: 5 as unknown as string }), { name: 'StoreError' });
      await assert.rejects(a.query(O, { max: -1 }), { name: 'StoreError' });
      await assert.rejects(a.query(O, { max: 1, start: NaN }), { name: 'StoreError' });
      await assert.rejects(a.owners({ max: 1.5 }), { name: 'StoreError' });
      assert.deepEqual(await a.query(O, { max: 10 }), { items: [], complete: true, count: 0 });
      const x = await a.append(O, { with: 'w', data: 'kept', time: 3_000 });
      const reopen = subject().reopen;
      if (!reopen) return;
      const b = (await reopen()).storage.archive('mam');
      assert.deepEqual(await b.get(O, x.id), x);
      const y = await b.append(O, { with: 'w', data: 'next', time: 3_000 });
      assert.ok(y.id > x.id);
      assert.deepEqual(datas(await b.query(O, { max: 10 })), ['kept', 'next']);
    });

    archivePagingContract(storage);
  });
}
