import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusTimeoutError, NoRespondersError, createMemoryBus } from '@hyphae/bus';
import { ActorBusyError, requestWithRetry } from './index.js';
import { BUSY_VALUE, MOVED_HEADER, MOVED_VALUE, TIMEOUT_HEADER } from './protocol.js';
import { sleep } from './testing.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

describe('requestWithRetry', () => {
  it('retries "no responders" until a subscriber appears', async () => {
    const bus = createMemoryBus();
    setTimeout(() => bus.subscribe('a.b', (m) => void m.respond(enc.encode('pong'))), 300);
    const t0 = Date.now();
    const reply = await requestWithRetry(bus, 'a.b', enc.encode('ping'), { retryForMs: 5000 });
    assert.equal(dec.decode(reply.data), 'pong');
    assert.ok(Date.now() - t0 >= 290);
    await bus.close();
  });

  it('gives up after retryForMs with the NoRespondersError', async () => {
    const bus = createMemoryBus();
    const t0 = Date.now();
    await assert.rejects(requestWithRetry(bus, 'nobody.here', enc.encode('x'), { retryForMs: 400 }), NoRespondersError);
    const took = Date.now() - t0;
    assert.ok(took >= 390 && took < 900, `took ${took} ms`);
    await bus.close();
  });

  it('does not retry a timeout (the message may have been handled)', async () => {
    const bus = createMemoryBus();
    let got = 0;
    bus.subscribe('slow', () => void got++);
    await assert.rejects(requestWithRetry(bus, 'slow', enc.encode('x'), { timeoutMs: 100, retryForMs: 5000 }), BusTimeoutError);
    assert.equal(got, 1);
    await bus.close();
  });

  it('retries a timeout when the message is idempotent (the owner died holding it)', async () => {
    const bus = createMemoryBus();
    let got = 0;
    // The first owner swallows the request (dies); the next one answers.
    bus.subscribe('dying', (m) => {
      if (++got > 1) m.respond(enc.encode('ok'));
    });
    const reply = await requestWithRetry(bus, 'dying', enc.encode('x'), { timeoutMs: 100, retryForMs: 5000, idempotent: true });
    assert.equal(dec.decode(reply.data), 'ok');
    assert.equal(got, 2);
    await bus.close();
  });

  it('retries a "moved" reply and passes headers on', async () => {
    const bus = createMemoryBus();
    let n = 0;
    bus.subscribe('s', (m) => {
      assert.equal(m.headers['x-t'], 'v');
      if (++n < 3) m.respond(new Uint8Array(0), { [MOVED_HEADER]: MOVED_VALUE });
      else m.respond(enc.encode('ok'));
    });
    const reply = await requestWithRetry(bus, 's', enc.encode('x'), { headers: { 'x-t': 'v' } });
    assert.equal(dec.decode(reply.data), 'ok');
    assert.equal(n, 3);
    await bus.close();
  });

  it('retries a "busy" reply (the owner refused it, nothing ran) and tells the owner how long it waits', async () => {
    const bus = createMemoryBus();
    let n = 0;
    const waits: Array<string | undefined> = [];
    bus.subscribe('s', (m) => {
      waits.push(m.headers[TIMEOUT_HEADER]);
      if (++n < 3) m.respond(new Uint8Array(0), { [MOVED_HEADER]: BUSY_VALUE });
      else m.respond(enc.encode('ok'));
    });
    const reply = await requestWithRetry(bus, 's', enc.encode('x'), { timeoutMs: 1234 });
    assert.equal(dec.decode(reply.data), 'ok');
    assert.equal(n, 3);
    assert.deepEqual(waits, ['1234', '1234', '1234']);
    await bus.close();
  });

  it('an owner still busy after retryForMs ends in an ActorBusyError', async () => {
    const bus = createMemoryBus();
    bus.subscribe('full', (m) => void m.respond(new Uint8Array(0), { [MOVED_HEADER]: BUSY_VALUE }));
    await assert.rejects(requestWithRetry(bus, 'full', enc.encode('x'), { retryForMs: 300 }), ActorBusyError);
    await bus.close();
  });

  it('backs off (50 ms doubling)', async () => {
    const bus = createMemoryBus();
    const real = bus.request.bind(bus);
    const at: number[] = [];
    bus.request = (s, d, o) => {
      at.push(Date.now());
      return real(s, d, o);
    };
    await assert.rejects(requestWithRetry(bus, 'none', enc.encode('x'), { retryForMs: 700 }));
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number));
    // 50, 100, 200, then capped by what is left of the 700 ms.
    assert.ok(gaps.length >= 4 && gaps.length <= 6, `gaps ${gaps.join(',')}`);
    assert.ok((gaps[0] as number) >= 45 && (gaps[1] as number) >= 95 && (gaps[2] as number) >= 195, `gaps ${gaps.join(',')}`);
    await sleep(0);
    await bus.close();
  });
});
