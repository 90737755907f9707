// Values by sequential id (calls and batches in flight): a ring of slots
// indexed by the id's low bits, so a look-up is an array read, not a hash.
//
// Why not a Map: with entries added and deleted all the time, V8 rehashes a
// Map's table every few hundred calls and keeps the obsolete table (for live
// iterators) with the entries it held. Tables that reached the old generation
// kept those calls reachable in every young collection: at 128 remote calls in
// flight, 473 bytes of each call outlived two scavenges and were promoted
// (V8's sampling heap profiler), scavenges took 9-10 ms, and the caller spent
// 4.9-5.6 us of CPU per call; with this table, 16 bytes and 3.4-3.8 us.

/** The subset of Map a TimeoutMap keeps its entries in. */
export interface EntryStore<K, V> {
  readonly size: number;
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
  delete(key: K): boolean;
  clear(): void;
  [Symbol.iterator](): IterableIterator<[K, V]>;
}

/**
 * Values keyed by unsigned 32-bit ids handed out in increasing order. An id
 * whose slot is held by an older entry still there (a call that waits long)
 * goes to a small Map beside the ring; the ring doubles when more than half
 * of it is full.
 */
export class SlotTable<V> implements EntryStore<number, V> {
  #ids: Uint32Array;
  #values: (V | undefined)[];
  #mask: number;
  #inRing = 0;
  readonly #overflow = new Map<number, V>();

  constructor(capacity = 1024) {
    const size = 2 ** Math.ceil(Math.log2(Math.max(2, capacity)));
    this.#ids = new Uint32Array(size);
    this.#values = new Array<V | undefined>(size).fill(undefined);
    this.#mask = size - 1;
  }

  get size(): number {
    return this.#inRing + this.#overflow.size;
  }

  get(id: number): V | undefined {
    const i = id & this.#mask;
    if (this.#ids[i] === id) {
      const value = this.#values[i];
      if (value !== undefined) return value;
    }
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  set(id: number, value: V): this {
    if (this.#overflow.size > 0 && this.#overflow.has(id)) {
      this.#overflow.set(id, value);
      return this;
    }
    if (2 * (this.#inRing + 1) > this.#values.length) this.#grow();
    const i = id & this.#mask;
    const held = this.#values[i];
    if (held === undefined || this.#ids[i] === id) {
      if (held === undefined) this.#inRing++;
      this.#ids[i] = id;
      this.#values[i] = value;
    } else {
      this.#overflow.set(id, value);
    }
    return this;
  }

  delete(id: number): boolean {
    const i = id & this.#mask;
    if (this.#ids[i] === id && this.#values[i] !== undefined) {
      this.#values[i] = undefined;
      this.#inRing--;
      return true;
    }
    return this.#overflow.size > 0 && this.#overflow.delete(id);
  }

  clear(): void {
    this.#values.fill(undefined);
    this.#inRing = 0;
    this.#overflow.clear();
  }

  *[Symbol.iterator](): IterableIterator<[number, V]> {
    const values = this.#values;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value !== undefined) yield [this.#ids[i]!, value];
    }
    yield* this.#overflow;
  }

  /** Twice the slots: every entry placed again (those in the overflow too, where their slot is free). */
  #grow(): void {
    const entries = [...this];
    const size = this.#values.length * 2;
    this.#ids = new Uint32Array(size);
    this.#values = new Array<V | undefined>(size).fill(undefined);
    this.#mask = size - 1;
    this.#inRing = 0;
    this.#overflow.clear();
    for (const [id, value] of entries) this.set(id, value);
  }
}
