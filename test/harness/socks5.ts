/**
 * The client side of SOCKS5 (RFC 1928) as XEP-0065 uses it, for both the
 * target and the requester (both are SOCKS5 clients of a proxy): method
 * negotiation with "no authentication" only, then CONNECT with ATYP 3
 * (DOMAINNAME) = hex SHA1(SID + requester JID + target JID) and port 0
 * (XEP-0065 §6.3.2, §8.2). The reply's BND.ADDR/BND.PORT are returned, since
 * the proxy MUST echo DST.ADDR/DST.PORT there.
 *
 * Plus what a transfer test needs on the raw socket afterwards: streaming a
 * buffer with backpressure, reading exactly n bytes while hashing them, and
 * waiting for the peer (the proxy) to close.
 */
import { connect, type Socket } from 'node:net';
import { createHash } from 'node:crypto';

/** XEP-0065 DST.ADDR: hex SHA1(SID + requester JID + target JID), JIDs as used in the iq exchange. */
export function s5bHash(sid: string, requester: string, target: string): string {
  return createHash('sha1').update(sid + requester + target, 'utf8').digest('hex');
}

/** RFC 1928 §6 reply codes, for messages. */
const REPLIES: Record<number, string> = {
  0: 'succeeded',
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

/** The proxy refused or broke the SOCKS5 handshake. `reply` is the REP code when one was received. */
export class Socks5Error extends Error {
  constructor(
    message: string,
    readonly reply: number | null = null,
  ) {
    super(message);
    this.name = 'Socks5Error';
  }
}

export interface Socks5Connection {
  socket: Socket;
  /** BND.ADDR of the reply (a DOMAINNAME as text; IPv4/IPv6 as text). */
  boundAddress: string;
  boundPort: number;
  /** ATYP of the reply. */
  boundType: number;
}

export interface Socks5Options {
  host: string;
  port: number;
  /** DST.ADDR, sent as ATYP 3 (DOMAINNAME). */
  dstAddr: string;
  /** DST.PORT; XEP-0065 says 0. */
  dstPort?: number;
  timeoutMs?: number;
}

/** Buffers a socket's bytes so a handshake can read exact lengths. */
class Reader {
  private buf = Buffer.alloc(0);
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  constructor(private readonly sock: Socket) {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('close', this.onEnd);
    sock.on('error', this.onError);
  }

  private onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.pump();
  };

  private onEnd = (): void => this.fail(new Socks5Error('the proxy closed the connection during the SOCKS5 handshake'));

  private onError = (err: Error): void => this.fail(new Socks5Error(`socket error during the SOCKS5 handshake: ${err.message}`));

  private fail(err: Error): void {
    this.ended ??= err;
    const w = this.want;
    if (w) {
      this.want = null;
      w.reject(this.ended);
    }
  }

  private pump(): void {
    const w = this.want;
    if (!w || this.buf.length < w.n) return;
    this.want = null;
    const out = this.buf.subarray(0, w.n);
    this.buf = this.buf.subarray(w.n);
    w.resolve(out);
  }

  read(n: number, timeoutMs: number, what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.want = null;
        reject(new Socks5Error(`no ${what} from the proxy within ${timeoutMs} ms`));
      }, timeoutMs);
      this.want = {
        n,
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (this.buf.length >= n) this.pump();
      else if (this.ended) this.fail(this.ended);
    });
  }

  /** Stops listening; bytes already buffered go back to the socket (relayed data that came with the reply). */
  detach(): void {
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onEnd);
    this.sock.off('error', this.onError);
    this.sock.pause();
    if (this.buf.length > 0) this.sock.unshift(this.buf);
    this.buf = Buffer.alloc(0);
  }
}

function parseAddress(type: number, raw: Buffer): string {
  if (type === 1) return [...raw].join('.');
  if (type === 4) return (raw.toString('hex').match(/.{4}/g) ?? []).join(':');
  return raw.toString('latin1');
}

/**
 * Connects to a SOCKS5 proxy and sends CONNECT to DOMAINNAME `dstAddr`.
 * Resolves once the proxy answered "succeeded" (the socket is paused, ready
 * for data); rejects with Socks5Error (with the REP code) otherwise.
 */
export async function socks5Connect(opts: Socks5Options): Promise<Socks5Connection> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const socket = connect({ host: opts.host, port: opts.port, noDelay: true });
  // Errors after the handshake show up as 'close' to whoever waits on the socket; never as an uncaught exception.
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Socks5Error(`TCP connect to ${opts.host}:${opts.port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Socks5Error(`TCP connect to ${opts.host}:${opts.port}: ${err.message}`));
    });
  });
  const reader = new Reader(socket);
  try {
    // Version 5, one method: X'00' no authentication required.
    socket.write(Buffer.from([5, 1, 0]));
    const method = await reader.read(2, timeoutMs, 'method selection');
    if (method[0] !== 5) throw new Socks5Error(`method selection: version ${method[0]}, not 5`);
    if (method[1] !== 0) throw new Socks5Error(`method selection: the proxy chose method ${method[1]} (X'FF': none acceptable)`);
    const name = Buffer.from(opts.dstAddr, 'latin1');
    if (name.length > 255) throw new Error('DST.ADDR longer than 255 octets');
    const port = opts.dstPort ?? 0;
    socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]));
    const head = await reader.read(4, timeoutMs, 'CONNECT reply');
    const [ver, rep, , atyp] = head;
    if (ver !== 5) throw new Socks5Error(`CONNECT reply: version ${ver}, not 5`);
    if (rep !== 0) throw new Socks5Error(`CONNECT refused: REP ${rep} (${REPLIES[rep ?? -1] ?? 'unassigned'})`, rep ?? null);
    let addr: Buffer;
    if (atyp === 1) addr = await reader.read(4, timeoutMs, 'BND.ADDR');
    else if (atyp === 4) addr = await reader.read(16, timeoutMs, 'BND.ADDR');
    else if (atyp === 3) {
      const len = (await reader.read(1, timeoutMs, 'BND.ADDR length'))[0] ?? 0;
      addr = await reader.read(len, timeoutMs, 'BND.ADDR');
    } else throw new Socks5Error(`CONNECT reply: unknown ATYP ${atyp}`);
    const bport = await reader.read(2, timeoutMs, 'BND.PORT');
    reader.detach();
    return { socket, boundAddress: parseAddress(atyp, addr), boundPort: bport.readUInt16BE(0), boundType: atyp };
  } catch (err) {
    reader.detach();
    socket.destroy();
    throw err;
  }
}

/** Writes `data` in `chunk`-sized writes, waiting for 'drain' when the socket asks to. */
export async function sendAll(socket: Socket, data: Buffer, chunk = 64 * 1024): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (socket.destroyed) throw new Error(`socket closed after ${off} of ${data.length} bytes`);
    if (!socket.write(data.subarray(off, off + chunk))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = (): void => {
          socket.off('drain', onDrain);
          reject(new Error(`socket closed after ${off} of ${data.length} bytes (waiting for drain)`));
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    }
  }
}

export interface Received {
  bytes: number;
  /** Hex SHA-256 of the bytes read. */
  sha256: string;
  ms: number;
}

/**
 * Reads exactly `n` bytes (more is an error: nothing may follow) and hashes
 * them with SHA-256. Rejects when the socket ends first or `timeoutMs` passes.
 */
export function receiveExactly(socket: Socket, n: number, timeoutMs: number): Promise<Received> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const t0 = performance.now();
    let got = 0;
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve({ bytes: got, sha256: hash.digest('hex'), ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done(new Error(`received ${got} of ${n} bytes within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got > n) return done(new Error(`received ${got} bytes, more than the ${n} sent`));
      hash.update(d);
      if (got === n) done(null);
    };
    const onClose = (): void => done(new Error(`connection closed after ${got} of ${n} bytes`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}

/** Resolves with how long it took for the socket to be closed by the other side; rejects after `timeoutMs`. */
export function waitSocketClosed(socket: Socket, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  if (socket.destroyed || socket.readyState === 'closed') return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('close', onClose);
      reject(new Error(`the socket was still open after ${timeoutMs} ms`));
    }, timeoutMs);
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    };
    socket.once('close', onClose);
    socket.on('error', () => undefined);
    // Discard whatever arrives meanwhile, so the 'end' (and 'close') can come.
    socket.on('data', () => undefined);
    socket.resume();
  });
}
