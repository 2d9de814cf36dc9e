/**
 * A bounded memo with O(1) operations: two generations of Map.  Lookups hit
 * the young generation, then the old one (promoting the entry); when the
 * young generation is full it becomes the old one and the previous old one
 * is dropped.  At most 2 × `generation` entries are kept.  (A single Map with
 * "delete the oldest key" eviction degrades badly: deleted slots pile up at
 * the front and every keys().next() has to skip them.)
 */
export class Memo<V> {
  #young = new Map<string, V>();
  #old = new Map<string, V>();
  readonly #generation: number;

  constructor(generation: number) {
    this.#generation = generation;
  }

  get(key: string): V | undefined {
    const v = this.#young.get(key);
    if (v !== undefined) return v;
    const o = this.#old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }

  set(key: string, value: V): void {
    if (this.#young.size >= this.#generation) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(key, value);
  }
}
