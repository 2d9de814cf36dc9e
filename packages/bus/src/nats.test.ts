import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, headers as natsHeaders, type Msg } from '@nats-io/transport-node';
import { hasBinary, startNats, type ServerProcess } from '@hyphae/testkit';
import { busContract } from './contract.js';
import type { BusLogger } from './logger.js';
import { connectNatsBus } from './nats.js';
import type { Bus, BusMessage } from './types.js';

const quiet: BusLogger = { warn: () => {}, info: () => {} };
const skip = hasBinary('nats-server') ? false : 'nats-server is not installed';

describe('nats bus', { skip }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startNats();
  });
  after(async () => {
    await server?.stop();
  });

  busContract('nats', async () => {
    const bus = await connectNatsBus({ servers: server.url, name: 'contract-pub', logger: quiet });
    const other = await connectNatsBus({ servers: server.url, name: 'contract-sub', logger: quiet });
    return {
      bus,
      other,
      cleanup: async () => {
        await Promise.all([bus.close(), other.close()]);
      },
    };
  });

  it('nats: interoperates with a plain NATS client (headers both ways)', async () => {
    const bus = await connectNatsBus({ servers: [server.url], logger: quiet });
    assert.equal(bus.kind, 'nats');
    assert.equal(bus.isConnected(), true);
    const raw = await connect({ servers: server.url });
    try {
      const fromRaw: BusMessage[] = [];
      bus.subscribe('interop.toBus', (m) => void fromRaw.push(m));
      await bus.flush();
      const h = natsHeaders();
      h.set('Hyphae-Hop', '3');
      raw.publish('interop.toBus', 'from raw', { headers: h });
      await raw.flush();
      const rawGot: Msg[] = [];
      raw.subscribe('interop.toRaw', { callback: (_e, m) => void rawGot.push(m) });
      await raw.flush();
      bus.publish('interop.toRaw', new TextEncoder().encode('from bus'), { 'Hyphae-Node': 'c2s-1' });
      await bus.flush();
      const deadline = Date.now() + 5000;
      while ((fromRaw.length < 1 || rawGot.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(new TextDecoder().decode(fromRaw[0]?.data), 'from raw');
      assert.deepEqual({ ...fromRaw[0]?.headers }, { 'Hyphae-Hop': '3' });
      assert.equal(rawGot[0]?.string(), 'from bus');
      assert.equal(rawGot[0]?.headers?.get('Hyphae-Node'), 'c2s-1');
    } finally {
      await raw.close();
      await bus.close();
    }
  });

  it('nats: throughput, 200k small publishes across connections', async (t) => {
    const pub: Bus = await connectNatsBus({ servers: server.url, logger: quiet });
    const sub: Bus = await connectNatsBus({ servers: server.url, logger: quiet });
    const N = 200_000;
    let n = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    sub.subscribe('bench.c2s.node1', () => {
      if (++n === N) resolveAll();
    });
    await sub.flush();
    const data = new TextEncoder().encode('<message to="a@b/c">hi</message>');
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      pub.publish('bench.c2s.node1', data, { sid: 's-1' });
      // Yield now and then so the client can write to the socket as we go.
      if ((i & 1023) === 0) await new Promise((r) => setImmediate(r));
    }
    await pub.flush();
    await all;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    t.diagnostic(`nats bus: ${N} msgs (1 header) in ${s.toFixed(3)} s = ${Math.round(N / s).toLocaleString('en')} msgs/s`);
    // Round trips.
    sub.subscribe('bench.rpc', (m) => void m.respond(m.data));
    await sub.flush();
    const R = 2000;
    const r0 = process.hrtime.bigint();
    for (let i = 0; i < R; i++) await pub.request('bench.rpc', data);
    const rs = Number(process.hrtime.bigint() - r0) / 1e9;
    t.diagnostic(`nats bus: sequential request/reply ${((rs / R) * 1e6).toFixed(0)} µs each`);
    await Promise.all([pub.close(), sub.close()]);
  });
});
