/**
 * Delivering carbon copies in order. A copy goes out through
 * `routing.deliverToSession`, which looks the session up (a cache hit, or
 * a registry read) before it hands the copy on: two copies for one user
 * could overtake each other there. Copies for one user therefore leave
 * one after another, per process, in the order the hooks made them.
 */
import type { Element } from 'ltx';
import type { Routing } from '@hyphae/module-api';
import type { SessionEntry } from '@hyphae/store';
import { forwardedCopy, wrap, type Direction } from './eligible.js';

/** The flag a session sets in its registry entry while it wants copies (ClientSession.setFlag). */
export const CARBONS_FLAG = 'carbons';

export function wantsCopies(s: SessionEntry): boolean {
  return s.flags !== undefined && s.flags.includes(CARBONS_FLAG);
}

export interface CopyCounters {
  copied(direction: Direction): void;
  failed(err: unknown): void;
}

export class Copier {
  /** The tail of each user's chain of copies in flight. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly counters: CopyCounters) {}

  /**
   * Sends `original`, wrapped, to each resource of `bare`. The original is
   * copied now: the caller's stanza goes on its way and may change.
   */
  send(routing: Routing, direction: Direction, original: Element, bare: string, resources: readonly string[]): void {
    if (resources.length === 0) return;
    const inner = forwardedCopy(original);
    this.then(bare, async () => {
      for (const r of resources) {
        if (await routing.deliverToSession(wrap(direction, inner, bare, `${bare}/${r}`), bare, r)) this.counters.copied(direction);
      }
    });
  }

  /** Like `send`, for resources found once the registry has answered (`pick` runs in order, on the chain). */
  sendLater(routing: Routing, direction: Direction, original: Element, bare: string, pick: (sessions: SessionEntry[]) => string[]): void {
    const inner = forwardedCopy(original);
    this.then(bare, async () => {
      for (const r of pick(await routing.sessions(bare))) {
        if (await routing.deliverToSession(wrap(direction, inner, bare, `${bare}/${r}`), bare, r)) this.counters.copied(direction);
      }
    });
  }

  /** Resolves once every copy made so far has been handed on (tests). */
  async settled(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  private then(bare: string, work: () => Promise<void>): void {
    // One chain per user: a failure is counted, and the last link forgets the user
    // once nothing follows it (the chain never rejects: nothing floats).
    const next: Promise<void> = (this.chains.get(bare) ?? Promise.resolve())
      .then(work)
      .catch((err: unknown) => this.counters.failed(err))
      .then(() => {
        if (this.chains.get(bare) === next) this.chains.delete(bare);
      });
    this.chains.set(bare, next);
  }
}
