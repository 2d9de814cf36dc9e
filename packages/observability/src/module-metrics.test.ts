import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { moduleCounter, moduleGauge } from './module-metrics.js';

test('a module metric is created once per registry and exposed', async () => {
  const registry = new Registry();
  const a = moduleCounter(registry, { name: 'hyphae_test_things_total', help: 'things', labelNames: ['kind'] });
  const b = moduleCounter(registry, { name: 'hyphae_test_things_total', help: 'things', labelNames: ['kind'] });
  assert.equal(a, b, 'a second create in the same process gets the same counter');
  a.inc({ kind: 'x' }, 2);
  const g = moduleGauge(registry, { name: 'hyphae_test_queue', help: 'queue' });
  g.set(5);
  const text = await registry.metrics();
  assert.match(text, /hyphae_test_things_total\{kind="x"\} 2/);
  assert.match(text, /hyphae_test_queue 5/);
  assert.notEqual(moduleCounter(new Registry(), { name: 'hyphae_test_things_total', help: 'things' }), a, 'another registry, another counter');
});
