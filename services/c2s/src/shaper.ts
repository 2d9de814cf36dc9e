/**
 * Inbound rate limit per connection (the "shaper" of ejabberd, Prosody's
 * limits): a token bucket in bytes. Over budget, the stream stops being read
 * until the bucket refills, so TCP backpressure slows the sender down
 * instead of the server buffering what it sends.
 */
export class Shaper {
  private tokens: number;
  private last: number;

  constructor(private readonly bytesPerSecond: number, private readonly now: () => number = Date.now) {
    this.tokens = bytesPerSecond * 2;
    this.last = now();
  }

  /** Counts `bytes`; returns how long to pause reading (ms), 0 when within budget. */
  take(bytes: number): number {
    if (this.bytesPerSecond <= 0) return 0;
    const t = this.now();
    this.tokens = Math.min(this.bytesPerSecond * 2, this.tokens + ((t - this.last) * this.bytesPerSecond) / 1000);
    this.last = t;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSecond);
  }
}
