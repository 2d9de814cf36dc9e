/** One key's queue: the promise the next fn waits for, and how many are queued or running. */
interface Lane {
  tail: Promise<void>;
  pending: number;
}

const noop = (): void => {};

/**
 * Mailboxes per key: fns of one key run one at a time, in the order run() was
 * called; fns of different keys run concurrently. A fn that throws or rejects
 * only fails its own run() promise — the next fn of that key runs as usual.
 * A key's lane is deleted as soon as it has nothing queued, so idle keys
 * (millions of users, most of them quiet) cost no memory.
 */
export class KeyedMailbox {
  private readonly lanes = new Map<string, Lane>();
  private total = 0;

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), pending: 0 };
      this.lanes.set(key, lane);
    }
    lane.pending++;
    this.total++;
    // then(fn) also turns a synchronous throw of fn into a rejection.
    const result = lane.tail.then(fn);
    const l = lane;
    l.tail = result.then(noop, noop).then(() => {
      this.total--;
      if (--l.pending === 0 && this.lanes.get(key) === l) this.lanes.delete(key);
    });
    return result;
  }

  /**
   * Resolves once no lane whose key passes `filter` (all lanes without one)
   * has work left, including work queued while waiting — a shard handover
   * stops new messages first, then waits here for what was already accepted.
   */
  async drain(filter?: (key: string) => boolean): Promise<void> {
    for (;;) {
      const tails: Promise<void>[] = [];
      for (const [key, lane] of this.lanes) if (filter === undefined || filter(key)) tails.push(lane.tail);
      if (tails.length === 0) return;
      await Promise.all(tails);
    }
  }

  /** Keys with work queued or running. */
  size(): number {
    return this.lanes.size;
  }

  /** Fns queued or running, all keys together (for a queue-depth gauge). */
  pending(): number {
    return this.total;
  }
}
