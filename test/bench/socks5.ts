/**
 * The client side of XEP-0065's SOCKS5 use (RFC 1928 subset): no
 * authentication, CONNECT to DOMAINNAME = hex SHA1(SID + requester JID +
 * target JID), port 0. Resolves with the socket once the proxy accepted.
 */
import { connect, type Socket } from 'node:net';
import { createHash } from 'node:crypto';

export function streamHash(sid: string, requester: string, target: string): string {
  return createHash('sha1').update(sid + requester + target).digest('hex');
}

/** Reads exactly n bytes (or fails when the socket ends first). */
function readExactly(sock: Socket, n: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`SOCKS5: no answer within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < n) return;
      if (buf.length > n) sock.unshift(buf.subarray(n));
      done(null, buf.subarray(0, n));
    };
    const onEnd = (): void => done(new Error('SOCKS5: connection closed during the handshake'));
    const done = (err: Error | null, out?: Buffer): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onEnd);
      sock.pause();
      if (err) reject(err);
      else resolve(out as Buffer);
    };
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('error', onEnd);
    sock.resume();
  });
}

export async function socks5Connect(host: string, port: number, hash: string, timeoutMs = 10_000): Promise<Socket> {
  const sock = connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  try {
    sock.write(Buffer.from([5, 1, 0]));
    const method = await readExactly(sock, 2, timeoutMs);
    if (method[0] !== 5 || method[1] !== 0) throw new Error(`SOCKS5: method refused (${method.toString('hex')})`);
    const name = Buffer.from(hash, 'ascii');
    sock.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([0, 0])]));
    const head = await readExactly(sock, 5, timeoutMs);
    if (head[1] !== 0) throw new Error(`SOCKS5: CONNECT refused with reply code ${head[1]}`);
    // The rest of the reply: the address (DOMAINNAME: length byte already read as head[4]) and the port.
    await readExactly(sock, (head[4] ?? 0) + 2, timeoutMs);
    return sock;
  } catch (err) {
    sock.destroy();
    throw err;
  }
}
