/**
 * The proxy scenario (XEP-0065): two users set up a bytestream through the
 * server's SOCKS5 proxy (streamhost query, target and requester connect,
 * the requester activates) and `--mbytes` of data flow from requester to
 * target. The same bytes then cross a plain loopback relay — a Node socket
 * pipe between two accepted connections, the same topology without any
 * XMPP — and the ratio of the two throughputs is what the proxy costs.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { loginClient, nextId, type BenchClient } from '../client.js';
import { s5bHash, socks5Connect } from '../../harness/socks5.js';
import { cpuMark, usageBetween, type Context, type GeneratorUsage } from './common.js';
import type { ServerUsage } from '../proc.js';

export interface ProxyRun {
  run: number;
  bytes: number;
  /** Activation: streamhost query → both connected → activate result, ms. */
  setupMs: number;
  proxyMBps: number;
  plainMBps: number;
  /** proxy / plain. */
  ratio: number;
  generator: GeneratorUsage;
  server: ServerUsage;
  warnings: string[];
}

const CHUNK = 64 * 1024;

/** Writes `total` bytes to `from` (respecting backpressure) and resolves when `to` has read them all: MB/s. */
function transfer(from: Socket, to: Socket, total: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const block = randomBytes(CHUNK);
    let received = 0;
    let sent = 0;
    const t0 = performance.now();
    to.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= total) {
        const secs = (performance.now() - t0) / 1000;
        resolve(total / 1e6 / secs);
      }
    });
    to.once('error', reject);
    from.once('error', reject);
    to.resume();
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent);
        sent += n;
        if (!from.write(n === CHUNK ? block : block.subarray(0, n))) {
          from.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

/** A plain relay on loopback: the first two connections are piped to each other. */
async function plainRelay(): Promise<{ server: Server; port: number }> {
  let waiting: Socket | null = null;
  const server = createServer({ noDelay: true }, (sock) => {
    if (!waiting) {
      waiting = sock;
      return;
    }
    const other = waiting;
    waiting = null;
    sock.pipe(other);
    other.pipe(sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

async function connectPlain(port: number): Promise<Socket> {
  const { connect } = await import('node:net');
  const s = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

export async function proxyRun(ctx: Context, run: number): Promise<ProxyRun> {
  const o = ctx.opts;
  const total = Math.round(o.mbytes * 1e6);
  const [ra, rb] = ctx.accounts;
  if (!ra || !rb) throw new Error('the proxy scenario needs two accounts (--users 2)');
  const endpoint = ctx.target.endpoints[0] as (typeof ctx.target.endpoints)[number];
  const opts = { endpoint, domain: ctx.target.domain, timeoutMs: o.timeoutMs };
  const clients: BenchClient[] = [];
  const sockets: Socket[] = [];
  const warnings: string[] = [];
  try {
    const a = (await loginClient(opts, { username: ra.username, password: ra.password, resource: `p${run}a`, mechanism: o.mechanism })).client;
    clients.push(a);
    const b = (await loginClient(opts, { username: rb.username, password: rb.password, resource: `p${run}b`, mechanism: o.mechanism })).client;
    clients.push(b);
    const proxyJid = o.proxyDomain;
    const t0 = performance.now();
    let id = nextId('sh');
    const sh = await a.iq(`<iq type='get' to='${proxyJid}' id='${id}'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>`, id, 'streamhost query');
    const host = sh.getChild('query')?.getChild('streamhost');
    if (sh.attrs.type !== 'result' || !host) throw new Error(`streamhost query failed: ${sh.toString()}`);
    const sid = randomBytes(8).toString('hex');
    const hash = s5bHash(sid, a.jid, b.jid);
    const shHost = String(host.attrs.host);
    const shPort = Number(host.attrs.port);
    const target = (await socks5Connect({ host: shHost, port: shPort, dstAddr: hash })).socket;
    sockets.push(target);
    const requester = (await socks5Connect({ host: shHost, port: shPort, dstAddr: hash })).socket;
    sockets.push(requester);
    id = nextId('act');
    const act = await a.iq(
      `<iq type='set' to='${proxyJid}' id='${id}'><query xmlns='http://jabber.org/protocol/bytestreams' sid='${sid}'><activate>${b.jid}</activate></query></iq>`,
      id,
      'activation',
    );
    if (act.attrs.type !== 'result') throw new Error(`activation failed: ${act.toString()}`);
    const setupMs = performance.now() - t0;
    ctx.progress(`proxy run ${run}/${o.runs}: streaming ${o.mbytes} MB through ${shHost}:${shPort}`);
    const m0 = cpuMark(ctx);
    const proxyMBps = await transfer(requester, target, total);
    const m1 = cpuMark(ctx);
    ctx.progress(`proxy run ${run}/${o.runs}: ${proxyMBps.toFixed(1)} MB/s; now a plain loopback relay`);
    const relay = await plainRelay();
    let plainMBps: number;
    try {
      const p1 = await connectPlain(relay.port);
      const p2 = await connectPlain(relay.port);
      sockets.push(p1, p2);
      await new Promise((r) => setTimeout(r, 50)); // both accepted and piped
      plainMBps = await transfer(p2, p1, total);
    } finally {
      relay.server.close();
    }
    const { generator, server } = usageBetween(ctx, m0, m1, 0);
    return {
      run, bytes: total, setupMs: Math.round(setupMs * 100) / 100,
      proxyMBps: Math.round(proxyMBps * 10) / 10, plainMBps: Math.round(plainMBps * 10) / 10,
      ratio: Math.round((proxyMBps / plainMBps) * 1000) / 1000, generator, server, warnings,
    };
  } finally {
    for (const s of sockets) s.destroy();
    await Promise.all(clients.map((c) => c.close().catch(() => c.destroy())));
  }
}
