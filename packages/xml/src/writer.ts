/**
 * Batches a stream's writes per event-loop turn: many stanzas delivered in
 * one turn leave in one TCP segment (TCP_NODELAY is on, so without batching
 * each stanza would be its own packet).
 */
import type { Duplex } from 'node:stream';

export class BatchedWriter {
  private chunks: Array<string | Uint8Array> = [];
  private scheduled = false;

  constructor(private socket: Duplex) {}

  /** Switches the underlying socket (after STARTTLS). Pending chunks go to the new one. */
  setSocket(socket: Duplex): void {
    this.socket = socket;
  }

  write(chunk: string | Uint8Array): void {
    this.chunks.push(chunk);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes everything queued now. */
  flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0) return;
    const chunks = this.chunks;
    this.chunks = [];
    if (this.socket.destroyed || !this.socket.writable) return;
    if (chunks.length === 1) {
      this.socket.write(chunks[0] as string | Uint8Array);
      return;
    }
    this.socket.cork();
    for (const c of chunks) this.socket.write(c);
    this.socket.uncork();
  }

  /** Bytes accepted by the socket but not yet sent (for slow-reader limits). */
  get backlog(): number {
    return this.socket.writableLength;
  }
}
