/**
 * Test helper: fills one archive with N items and times the queries a MAM
 * client makes (the last page, paging back from it, a peer's last page),
 * one at a time, p50/p99 in µs — the last page must not cost a scan.
 */
import assert from 'node:assert/strict';
import type { ModuleStorage } from './module-storage.js';

export async function measureArchive(storage: ModuleStorage, n = 20_000): Promise<string> {
  const a = storage.archive('bench');
  const owner = 'bench@example.com';
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++) batch.push(a.append(owner, { with: `peer${j % 10}@example.com/r`, data: `<message>${j}</message>`, time: 1_000_000 + j }));
    await Promise.all(batch);
  }
  const last = await a.query(owner, { before: '', max: 50 });
  assert.equal(last.count, n);
  assert.equal(last.items[49]?.data, `<message>${n - 1}</message>`);
  const r: Record<string, string> = {};
  const time = async (name: string, op: () => Promise<unknown>): Promise<void> => {
    const us: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = process.hrtime.bigint();
      await op();
      us.push(Number(process.hrtime.bigint() - t0) / 1_000);
    }
    us.sort((x, y) => x - y);
    r[name] = `p50 ${(us[100] ?? 0).toFixed(0)}µs p99 ${(us[198] ?? 0).toFixed(0)}µs`;
  };
  await time('last page (50)', () => a.query(owner, { before: '', max: 50 }));
  await time('page before it', () => a.query(owner, { before: last.items[0]?.id as string, max: 50 }));
  await time("a peer's last page", () => a.query(owner, { with: 'peer3@example.com', before: '', max: 50 }));
  await time('get', () => a.get(owner, last.items[10]?.id as string));
  return `archive of ${n}: ${Object.entries(r).map(([k, v]) => `${k} ${v}`).join('; ')}`;
}
