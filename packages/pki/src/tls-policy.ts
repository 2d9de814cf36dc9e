/**
 * The TLS policy every listener and outbound connection applies (c2s, s2s,
 * and any later edge such as WebSocket): the protocol floor and the cipher
 * suites, from one place (the `tls` config section), and a guard that closes
 * a connection whose handshake does not finish in time.
 */
import type { SecureVersion, TLSSocket } from 'node:tls';

export interface TlsPolicy {
  /** Oldest protocol version accepted or offered. */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /**
   * OpenSSL cipher list; TLS 1.3 suites by their `TLS_` names (Node hands
   * those to SSL_CTX_set_ciphersuites and the rest to set_cipher_list). The
   * default (config's FORWARD_SECRET_CIPHERS) is forward-secret AEAD only.
   */
  ciphers: string;
}

/** The options of createSecureContext / tls.connect that apply `policy` (spread them in). */
export function tlsPolicyOptions(policy: TlsPolicy): { minVersion: SecureVersion; ciphers: string } {
  return { minVersion: policy.minVersion, ciphers: policy.ciphers };
}

export type HandshakeFailure = 'timeout' | 'error';

/**
 * Destroys `socket` unless its TLS handshake completes within `timeoutMs`,
 * and reports a handshake that timed out or failed. A server-side socket
 * wrapped with `new TLSSocket` has no handshake timeout at all, and
 * tls.Server's `handshakeTimeout` only emits `tlsClientError` without closing
 * the socket: a peer that never finishes (or trickles) its ClientHello would
 * hold the connection, and a file descriptor, forever.
 */
export function guardHandshake(
  socket: TLSSocket,
  timeoutMs: number,
  onFailure: (reason: HandshakeFailure, err?: Error) => void,
): void {
  let settled = false;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    return true;
  };
  const timer = setTimeout(() => {
    if (!settle()) return;
    onFailure('timeout');
    socket.destroy();
  }, timeoutMs);
  timer.unref();
  socket.once('secure', settle); // server side
  socket.once('secureConnect', settle); // client side
  socket.once('close', settle);
  socket.once('error', (err: Error) => {
    if (settle()) onFailure('error', err);
  });
}
