/** Archive paging (XEP-0059 over XEP-0313) and owners() listing: part of the module storage contract. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { datas, fill, notFound, O } from './archive-contract.js';
import type { ArchiveItem, ArchivePage, ArchiveQuery, ArchiveStore, ModuleStorage } from './module-storage.js';

/** Every page of a query, following after (forward) or before (backward) to the end. */
async function walk(a: ArchiveStore, q: Omit<ArchiveQuery, 'after' | 'before'>, backward: boolean): Promise<ArchivePage[]> {
  const pages: ArchivePage[] = [];
  let cursor: string | undefined = backward ? '' : undefined;
  for (let guard = 0; guard < 100; guard++) {
    const p = await a.query(O, backward ? { ...q, before: cursor as string } : { ...q, ...(cursor === undefined ? {} : { after: cursor }) });
    pages.push(p);
    if (p.complete) return pages;
    cursor = (backward ? p.items[0] : p.items[p.items.length - 1])?.id;
  }
  throw new Error('paging did not end');
}

const summary = (pages: ArchivePage[]): Array<[string[], boolean, number]> => pages.map((p) => [datas(p), p.complete, p.count]);

export function archivePagingContract(storage: () => ModuleStorage): void {
  describe('archive paging', () => {
    it('pages forward with after: complete only on the last page, count always the total', async () => {
      const a = storage().archive('mam');
      await fill(a, 10);
      assert.deepEqual(summary(await walk(a, { max: 3 }, false)), [
        [['m0', 'm1', 'm2'], false, 10],
        [['m3', 'm4', 'm5'], false, 10],
        [['m6', 'm7', 'm8'], false, 10],
        [['m9'], true, 10],
      ]);
      // A page ending exactly on the last item is complete (nothing after it).
      const it = (await a.query(O, { max: 10 })).items;
      const exact = await a.query(O, { after: (it[6] as ArchiveItem).id, max: 3 });
      assert.deepEqual([datas(exact), exact.complete], [['m7', 'm8', 'm9'], true]);
      assert.deepEqual(await a.query(O, { after: (it[9] as ArchiveItem).id, max: 3 }), { items: [], complete: true, count: 10 });
    });

    it('pages backward with before (before "" = the last page), items still chronological', async () => {
      const a = storage().archive('mam');
      await fill(a, 10);
      assert.deepEqual(summary(await walk(a, { max: 3 }, true)), [
        [['m7', 'm8', 'm9'], false, 10],
        [['m4', 'm5', 'm6'], false, 10],
        [['m1', 'm2', 'm3'], false, 10],
        [['m0'], true, 10],
      ]);
      const it = (await a.query(O, { max: 10 })).items;
      const exact = await a.query(O, { before: (it[3] as ArchiveItem).id, max: 3 });
      assert.deepEqual([datas(exact), exact.complete], [['m0', 'm1', 'm2'], true]);
      assert.deepEqual(await a.query(O, { before: (it[0] as ArchiveItem).id, max: 3 }), { items: [], complete: true, count: 10 });
      const between = await a.query(O, { after: (it[2] as ArchiveItem).id, before: (it[8] as ArchiveItem).id, max: 2 });
      assert.deepEqual([datas(between), between.complete], [['m6', 'm7'], false]);
      const between2 = await a.query(O, { after: (it[2] as ArchiveItem).id, before: (it[6] as ArchiveItem).id, max: 3 });
      assert.deepEqual([datas(between2), between2.complete], [['m3', 'm4', 'm5'], true]);
    });

    it('pages within filters (peer and time), both ways', async () => {
      const a = storage().archive('mam');
      await fill(a, 12, ['romeo@montague.lit/a', 'nurse@capulet.lit', 'romeo@montague.lit']);
      // romeo: m0 m2 m3 m5 m6 m8 m9 m11
      assert.deepEqual(summary(await walk(a, { with: 'romeo@montague.lit', max: 3 }, false)), [
        [['m0', 'm2', 'm3'], false, 8],
        [['m5', 'm6', 'm8'], false, 8],
        [['m9', 'm11'], true, 8],
      ]);
      assert.deepEqual(summary(await walk(a, { with: 'romeo@montague.lit', max: 3 }, true)), [
        [['m8', 'm9', 'm11'], false, 8],
        [['m3', 'm5', 'm6'], false, 8],
        [['m0', 'm2'], true, 8],
      ]);
      // time 3000..9000 → m2…m8; romeo among them: m2 m3 m5 m6 m8
      assert.deepEqual(summary(await walk(a, { with: 'romeo@montague.lit', start: 3_000, end: 9_000, max: 2 }, true)), [
        [['m6', 'm8'], false, 5],
        [['m3', 'm5'], false, 5],
        [['m2'], true, 5],
      ]);
      // after/before may name an item outside the filters (another peer's).
      const it = (await a.query(O, { max: 20 })).items;
      const p = await a.query(O, { with: 'romeo@montague.lit', after: (it[1] as ArchiveItem).id, max: 2 });
      assert.deepEqual([datas(p), p.complete, p.count], [['m2', 'm3'], false, 8]);
      const q = await a.query(O, { start: 5_000, after: (it[1] as ArchiveItem).id, max: 2 });
      assert.deepEqual([datas(q), q.complete, q.count], [['m4', 'm5'], false, 8]);
    });

    it('max 0 counts without items; complete tells whether anything matches', async () => {
      const a = storage().archive('mam');
      assert.deepEqual(await a.query(O, { max: 0, before: '' }), { items: [], complete: true, count: 0 });
      await fill(a, 4);
      assert.deepEqual(await a.query(O, { max: 0 }), { items: [], complete: false, count: 4 });
      assert.deepEqual(await a.query(O, { max: 0, before: '' }), { items: [], complete: false, count: 4 });
      assert.deepEqual(await a.query(O, { max: 0, start: 9_000 }), { items: [], complete: true, count: 0 });
    });

    it('an unknown after or before is ArchiveIdNotFoundError (another owner’s or store’s id too)', async () => {
      const a = storage().archive('mam');
      const it = await fill(a, 2);
      const id = (it[0] as ArchiveItem).id;
      const romeos = await a.append('romeo@montague.lit', { with: O, data: 'x' });
      for (const bad of ['nope', '0000000000000000', romeos.id, '']) {
        await assert.rejects(a.query(O, { after: bad, max: 5 }), notFound(bad), `after ${JSON.stringify(bad)}`);
        if (bad !== '') await assert.rejects(a.query(O, { before: bad, max: 5 }), notFound(bad), `before ${bad}`);
      }
      await assert.rejects(storage().archive('muc').query(O, { after: id, max: 5 }), notFound(id));
      await assert.rejects(a.query(O, { after: id, before: 'ffffffffffffffff', max: 5 }), notFound('ffffffffffffffff'));
    });

    it('lists owners with items in code point order, paged, without cleared or emptied ones', async () => {
      const a = storage().archive('mam');
      const owners = ['c@x', 'a@x', 'b@x', 'é@x', 'a:b|c@x', '{z}@x', 'A@x', '😀@x', 'ﬁ@x'];
      for (const o of owners) await a.append(o, { with: 'w', data: 'd' });
      await a.append('a@x', { with: 'w', data: 'd2' });
      await storage().archive('muc').append('other@x', { with: 'w', data: 'd' });
      const sorted = ['A@x', 'a:b|c@x', 'a@x', 'b@x', 'c@x', '{z}@x', 'é@x', 'ﬁ@x', '😀@x'];
      assert.deepEqual(await a.owners({ max: 100 }), sorted);
      assert.deepEqual(await a.owners({ max: 4 }), sorted.slice(0, 4));
      assert.deepEqual(await a.owners({ after: 'b@x', max: 3 }), ['c@x', '{z}@x', 'é@x']);
      assert.deepEqual(await a.owners({ after: 'a', max: 2 }), ['a:b|c@x', 'a@x']);
      assert.deepEqual(await a.owners({ after: '😀@x', max: 3 }), []);
      assert.deepEqual(await a.owners({ max: 0 }), []);
      await a.clear('b@x');
      assert.equal(await a.prune('c@x', { keep: 0 }), 1);
      assert.equal(await a.prune('a@x', { keep: 1 }), 1);
      assert.deepEqual(await a.owners({ max: 100 }), ['A@x', 'a:b|c@x', 'a@x', '{z}@x', 'é@x', 'ﬁ@x', '😀@x']);
      assert.deepEqual(await a.owners({ after: 'a@x', max: 1 }), ['{z}@x']);
      assert.deepEqual(await storage().archive('muc').owners({ max: 100 }), ['other@x']);
      await a.append('b@x', { with: 'w', data: 'back' });
      assert.deepEqual(await a.owners({ after: 'a@x', max: 2 }), ['b@x', '{z}@x']);
    });
  });
}
