import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedMailbox } from './index.js';
import { sleep } from './testing.js';

describe('KeyedMailbox', () => {
  it('runs one key in call order, one at a time', async () => {
    const mb = new KeyedMailbox();
    const seen: number[] = [];
    let running = 0;
    const all: Promise<number>[] = [];
    for (let i = 0; i < 50; i++) {
      all.push(
        mb.run('k', async () => {
          assert.equal(++running, 1);
          await sleep(i % 3);
          seen.push(i);
          running--;
          return i;
        }),
      );
    }
    assert.deepEqual(await Promise.all(all), [...Array(50).keys()]);
    assert.deepEqual(seen, [...Array(50).keys()]);
  });

  it('runs different keys concurrently', async () => {
    const mb = new KeyedMailbox();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // 'a' waits for 'b': this only finishes if 'b' runs while 'a' is still running.
    const a = mb.run('a', async () => {
      await gate;
      return 'a';
    });
    const b = mb.run('b', async () => {
      release();
      return 'b';
    });
    assert.deepEqual(await Promise.all([a, b]), ['a', 'b']);
  });

  it('isolates errors: a failing fn rejects its own promise only', async () => {
    const mb = new KeyedMailbox();
    const order: string[] = [];
    const p1 = mb.run('k', async () => {
      order.push('1');
      throw new Error('boom');
    });
    const p2 = mb.run('k', () => {
      order.push('2');
      throw new Error('sync boom');
    });
    const p3 = mb.run('k', async () => {
      order.push('3');
      return 3;
    });
    await assert.rejects(p1, /boom/);
    await assert.rejects(p2, /sync boom/);
    assert.equal(await p3, 3);
    assert.deepEqual(order, ['1', '2', '3']);
  });

  it('forgets idle keys', async () => {
    const mb = new KeyedMailbox();
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) ps.push(mb.run(`k${i}`, async () => {}));
    assert.equal(mb.size(), 1000);
    await Promise.all(ps);
    await mb.drain();
    assert.equal(mb.size(), 0);
  });

  it('drain(filter) waits for matching keys only, including work queued meanwhile', async () => {
    const mb = new KeyedMailbox();
    let slowDone = false;
    let lateDone = false;
    void mb.run('other', () => sleep(200).then(() => (slowDone = true)));
    void mb.run('x:1', async () => {
      await sleep(20);
      void mb.run('x:1', () => sleep(20).then(() => (lateDone = true)));
    });
    await mb.drain((k) => k.startsWith('x:'));
    assert.equal(lateDone, true);
    assert.equal(slowDone, false);
    await mb.drain();
    assert.equal(slowDone, true);
  });
});

it('pending() counts queued and running fns across keys', async () => {
  const mb = new KeyedMailbox();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const a = mb.run('a', () => gate);
  const b = mb.run('a', async () => undefined);
  const c = mb.run('b', () => gate);
  assert.equal(mb.pending(), 3);
  release();
  await Promise.all([a, b, c]);
  await mb.drain();
  assert.equal(mb.pending(), 0);
});
