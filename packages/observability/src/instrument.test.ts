import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from './metrics.js';
import { instrumentMethods } from './instrument.js';

test('instrumentMethods observes resolved and rejected calls per method, keeps results and this', async () => {
  const metrics = createMetrics({ service: 't', node: 'n', defaultMetrics: false });
  const store = {
    base: 40,
    async get(x: number): Promise<number> {
      return this.base + x;
    },
    async fail(): Promise<void> {
      throw new Error('down');
    },
    sync(): number {
      return 7;
    },
  };
  const s = instrumentMethods(store, 'things', metrics.storeLatency);
  assert.equal(await s.get(2), 42);
  await assert.rejects(s.fail(), /down/);
  assert.equal(s.sync(), 7);
  assert.equal(s.base, 40);
  const text = await metrics.registry.metrics();
  assert.match(text, /hyphae_store_latency_seconds_count\{[^}]*op="things.get"[^}]*\} 1/);
  assert.match(text, /hyphae_store_latency_seconds_count\{[^}]*op="things.fail"[^}]*\} 1/);
  assert.doesNotMatch(text, /op="things.sync"/);
  assert.equal(s.get, s.get, 'one wrapper per method');
});
