import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Shaper } from './shaper.js';

test('a burst of two seconds passes, then reading pauses for the deficit, and the bucket refills', () => {
  let now = 0;
  const s = new Shaper(1000, () => now);
  assert.equal(s.take(2000), 0);
  assert.equal(s.take(500), 500);
  now += 500;
  assert.equal(s.take(0), 0);
  now += 10_000;
  assert.equal(s.take(2000), 0, 'refilled, but only up to the burst');
  assert.equal(s.take(1), 1);
});

test('0 means unlimited', () => {
  assert.equal(new Shaper(0).take(1e9), 0);
});
