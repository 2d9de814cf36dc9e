import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { storeContract, type ContractSubject } from './contract.js';
import { openEmbeddedStores } from './embedded.js';
import { measureArchive } from './archive-latency.js';
import { measure } from './latency.js';
import { moduleStorageContract } from './module-storage-contract.js';
import type { Stores } from './types.js';

async function embeddedSubject(): Promise<ContractSubject> {
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-store-'));
  let stores: Stores = await openEmbeddedStores({ dir });
  return {
    stores,
    async reopen() {
      await stores.close();
      stores = await openEmbeddedStores({ dir });
      return stores;
    },
    async cleanup() {
      await stores.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

storeContract('embedded', embeddedSubject);
moduleStorageContract('embedded', embeddedSubject);

it('embedded: sessions do not survive a restart (they die with the process)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-store-'));
  try {
    let s = await openEmbeddedStores({ dir });
    await s.sessions.bind('a@b', { resource: 'r', sessionId: 'x', node: 'n', priority: 0, available: false, boundAt: 0 });
    await s.close();
    assert.equal(s.isReady(), false);
    s = await openEmbeddedStores({ dir });
    assert.equal(await s.sessions.count(), 0);
    await s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('embedded: an unusable directory is a StoreError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-store-'));
  try {
    // A directory below a regular file cannot exist (ENOTDIR).
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(openEmbeddedStores({ dir: join(dir, 'file', 'db') }), { name: 'StoreError' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('embedded: operation latency', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-store-'));
  const s = await openEmbeddedStores({ dir });
  try {
    t.diagnostic(await measure(s));
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('embedded: archive query latency', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hyphae-store-'));
  const s = await openEmbeddedStores({ dir });
  try {
    t.diagnostic(await measureArchive(s.storage));
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
