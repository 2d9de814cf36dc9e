import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasBinary, startNats } from '@hyphae/testkit';
import { BusClosedError, BusError } from './errors.js';
import type { BusLogger } from './logger.js';
import { connectNatsBus } from './nats.js';
import type { Bus, BusStatus } from './types.js';

/*
 * NATS failures: the server is killed with SIGKILL (no goodbye to clients)
 * and restarted on the same port, as happens when a NATS pod dies.
 */

const quiet: BusLogger = { warn: () => {}, info: () => {} };
const skip = hasBinary('nats-server') ? false : 'nats-server is not installed';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function track(bus: Bus): { statuses: BusStatus[]; at: Map<BusStatus, number> } {
  const statuses: BusStatus[] = [];
  const at = new Map<BusStatus, number>();
  bus.onStatus((s) => {
    statuses.push(s);
    at.set(s, Date.now());
  });
  return { statuses, at };
}

describe('nats bus faults', { skip }, () => {
  it('kill -9 and restart: disconnected → reconnecting → connected, subscriptions resume, requests work, buffered publishes are sent', async (t) => {
    const server = await startNats();
    const bus = await connectNatsBus({ servers: server.url, name: 'faults-a', logger: quiet });
    const other = await connectNatsBus({ servers: server.url, name: 'faults-b', logger: quiet });
    try {
      const st = track(bus);
      const stOther = track(other);
      other.subscribe('f.rpc', (m) => void m.respond(enc(`re:${dec(m.data)}`)));
      const cross: string[] = [];
      other.subscribe('f.cross', (m) => void cross.push(dec(m.data)));
      const self: string[] = [];
      bus.subscribe('f.self', (m) => void self.push(dec(m.data)));
      await Promise.all([bus.flush(), other.flush()]);
      assert.equal(dec((await bus.request('f.rpc', enc('1'))).data), 're:1');

      const tKill = Date.now();
      await server.kill();
      await until(() => st.statuses.includes('reconnecting'), 'bus reconnecting');
      assert.equal(bus.isConnected(), false);

      // While NATS is down: publishing buffers instead of throwing ...
      for (let i = 0; i < 100; i++) bus.publish('f.self', enc(`during-${i}`));
      // ... and a request waits for the connection, within its timeout.
      // (Settled into a string at once: a rejection nobody handles yet would fail the test.)
      const pendingRequest = bus.request('f.rpc', enc('during'), { timeoutMs: 15_000 }).then(
        (m) => dec(m.data),
        (e: unknown) => (e instanceof Error ? e.name : String(e)),
      );
      await sleep(200); // let the client fail a reconnect attempt or two

      const tRestart = Date.now();
      await server.restart();
      const tUp = Date.now();
      await until(() => bus.isConnected() && other.isConnected(), 'both reconnected');
      const tConnected = Math.max(st.at.get('connected') ?? 0, stOther.at.get('connected') ?? 0);

      assert.deepEqual(st.statuses, ['disconnected', 'reconnecting', 'connected']);
      assert.deepEqual(stOther.statuses, ['disconnected', 'reconnecting', 'connected']);

      // What was published during the outage arrives, in order, before anything newer.
      bus.publish('f.self', enc('after'));
      await bus.flush();
      await until(() => self.length === 101, 'buffered + new on the own subscription');
      assert.deepEqual(self, [...Array.from({ length: 100 }, (_, i) => `during-${i}`), 'after']);

      // The request made during the outage was answered once the responder was back.
      // (If the request reached NATS before the responder resubscribed, NATS
      // answers "no responders": acceptable, and what callers retry on.)
      const during = await pendingRequest;
      assert.ok(during === 're:during' || during === 'NoRespondersError', `request during outage: ${during}`);

      // Subscriptions across connections resume, and requests work again.
      const tReq = Date.now();
      let reply = '';
      for (;;) {
        try {
          reply = dec((await bus.request('f.rpc', enc('2'), { timeoutMs: 2000 })).data);
          break;
        } catch (err) {
          if (Date.now() - tReq > 10_000) throw err;
          await sleep(10);
        }
      }
      const tReqOk = Date.now();
      assert.equal(reply, 're:2');
      bus.publish('f.cross', enc('x'));
      await bus.flush();
      await until(() => cross.length === 1, 'cross-connection delivery after reconnect');

      t.diagnostic(
        `recovery: server accepting → both buses connected ${tConnected - tUp} ms; → first request ok ${tReqOk - tUp} ms; ` +
          `kill → connected ${tConnected - tKill} ms (server down ${tUp - tKill} ms, restart took ${tUp - tRestart} ms)`,
      );
    } finally {
      await Promise.all([bus.close(), other.close()]);
      await server.stop();
    }
  });

  it('connectNatsBus waits for a server that is not up yet (waitOnFirstConnect)', async (t) => {
    const server = await startNats();
    await server.stop();
    const t0 = Date.now();
    const pending = connectNatsBus({ servers: server.url, logger: quiet, reconnectTimeWaitMs: 100 });
    await sleep(300);
    await server.restart();
    const bus = await pending;
    t.diagnostic(`connected ${Date.now() - t0} ms after connectNatsBus(), server up after ~300 ms`);
    try {
      assert.equal(bus.isConnected(), true);
      bus.subscribe('w.x', (m) => void m.respond(m.data));
      await bus.flush();
      assert.equal(dec((await bus.request('w.x', enc('ok'))).data), 'ok');
    } finally {
      await bus.close();
      await server.stop();
    }
  });

  it('reconnect buffer is bounded: publishing past it throws BusError', async () => {
    const server = await startNats();
    const bus = await connectNatsBus({ servers: server.url, logger: quiet });
    try {
      await server.kill();
      await until(() => !bus.isConnected(), 'disconnected');
      const chunk = new Uint8Array(100 * 1024);
      let accepted = 0;
      let error: unknown;
      for (let i = 0; i < 200; i++) {
        try {
          bus.publish('b.big', chunk);
          accepted++;
        } catch (err) {
          error = err;
          break;
        }
      }
      assert.ok(error instanceof BusError, `expected BusError, got ${String(error)}`);
      assert.ok(accepted >= 70 && accepted <= 90, `accepted ${accepted} × 100 KiB before the 8 MiB limit`);
    } finally {
      const t0 = Date.now();
      await bus.close(); // while disconnected: must not wait for a drain that cannot happen
      assert.ok(Date.now() - t0 < 2000, 'close() while disconnected is prompt');
      await server.stop();
    }
  });

  it('limited reconnect attempts: the bus closes and says so', async () => {
    const server = await startNats();
    const bus = await connectNatsBus({ servers: server.url, logger: quiet, maxReconnectAttempts: 2, reconnectTimeWaitMs: 50 });
    try {
      const st = track(bus);
      bus.publish('c.x', enc('buffered, then dropped'));
      await server.kill();
      await until(() => st.statuses.includes('closed'), 'closed status', 10_000);
      assert.equal(bus.isConnected(), false);
      assert.deepEqual(st.statuses, ['disconnected', 'reconnecting', 'closed']);
      assert.throws(() => bus.publish('c.x', enc('x')), BusClosedError);
      await assert.rejects(bus.request('c.x', enc('x')), BusClosedError);
    } finally {
      await bus.close();
      await server.stop();
    }
  });
});
