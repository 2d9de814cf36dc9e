import type { CoordinationStore, StoreEpoch } from './types.js';

/**
 * One process's view of the store's epoch: whether the live state was lost
 * since this watch last looked. Each concern of a process (the c2s
 * heartbeat, a sharded service's lease round, sm's sweep) keeps its own
 * watch, so each notices the loss once.
 */
export class EpochWatch {
  private known: string | undefined;

  constructor(private readonly coordination: Pick<CoordinationStore, 'epoch'>) {}

  /** The id last seen (undefined before the first check). */
  get current(): string | undefined {
    return this.known;
  }

  /**
   * Reads the epoch; `reset` when it differs from the one seen last time.
   * The first check only learns it: a process that starts after a loss has
   * nothing of the old generation to re-record.
   */
  async check(): Promise<{ epoch: StoreEpoch; reset: boolean }> {
    const epoch = await this.coordination.epoch();
    return { epoch, reset: this.observe(epoch) };
  }

  /**
   * Takes an epoch read elsewhere into account; true when it is another one
   * than last time. For a caller that bounds the read with its own timeout:
   * a read it gave up on may still complete later, and must not count.
   */
  observe(epoch: StoreEpoch): boolean {
    const reset = this.known !== undefined && this.known !== epoch.id;
    this.known = epoch.id;
    return reset;
  }
}
