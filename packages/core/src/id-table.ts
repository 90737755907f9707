// Values by string id (a node's live activations of one actor type): the
// values in the order they came, as a Map keeps them, and an index by the
// id's XXH32, the hash its shard comes from, which routing has computed
// already. Each slot of the index holds a position and the hash of the value
// there, side by side.
//
// Why not a Map: a look-up that misses (the first call to an actor) walks a
// Map's chain and reads every key on it, each a string somewhere in the heap:
// at 100,000 to 200,000 actors it took 22 % of creation's time, and 8 % more
// to insert. Here a miss reads the index until a free slot, most often in the
// same cache line, and a hit reads its value's id only when the hash is the
// one looked for. As in a Map, values that came one after the other lie one
// after the other, so calls that go through the actors in that order read
// them in order. Against the Map (README, "What the speed section shows"):
// creation 1.49, 1.01, 1.55; local calls 1.11 over 10,000 actors and 1.25
// over 100,000; 161 to 164 bytes per idle actor against 190.
import { xxh32 } from "./hash.js";

/** An index slot's position: never used, or its value deleted (a look-up goes on past it). */
const FREE = 0;
const DELETED = -1;
/**
 * The fewest index slots. The index is at most half full (holes counted): past that, it is rebuilt without the
 * holes, and twice as large when more than 3/8 of it would be values, so that room is left (at a steady count of
 * actors, an eviction and a new actor each time, a rebuild comes once every slots / 8 new actors, not at each);
 * it shrinks to half under an eighth.
 */
const MIN_SLOTS = 16;

/**
 * Values that carry their own id, by id. Every method takes the id's XXH32
 * (`xxh32(id)`, as `shardFor` hashes it) when the caller has it, and hashes
 * the id otherwise; a hash given must be that one. `values()` walks them as a
 * Map's iterator does, changes during the walk included: while a walk is
 * under way, positions do not move (the holes are closed once none is).
 */
export class IdTable<V extends { readonly id: string }> {
  /** Per slot, two numbers: the position of its value in #values plus one (or FREE, DELETED), and the value's hash. */
  #index = new Int32Array(2 * MIN_SLOTS);
  #mask = MIN_SLOTS - 1;
  /** The values in the order they came; a deleted one leaves a hole until the index is rebuilt. */
  #values: (V | undefined)[] = [];
  #size = 0;
  /** Walks under way: while there is one, a rebuild leaves the positions (and their holes) as they are. */
  #walks = 0;
  /**
   * Where a sweep that goes round the values stands (passivation's CLOCK hand): a position, which
   * follows its value when the holes are closed.
   */
  hand = 0;

  get size(): number {
    return this.#size;
  }

  /** How many positions there are, holes included: `at(i)` reads each below it. */
  get positions(): number {
    return this.#values.length;
  }

  /** The value at position `i`, or undefined for a hole. */
  at(i: number): V | undefined {
    return this.#values[i];
  }

  get(id: string, hash?: number): V | undefined {
    const slot = this.#find(id, (hash ?? xxh32(id)) | 0);
    return slot < 0 ? undefined : this.#values[this.#index[2 * slot]! - 1];
  }

  /** Adds `value` under its id, after the others, or puts it in the place of the one there. */
  set(value: V, hash?: number): void {
    const h = (hash ?? xxh32(value.id)) | 0;
    const found = this.#find(value.id, h);
    if (found >= 0) {
      this.#values[this.#index[2 * found]! - 1] = value;
      return;
    }
    const slots = this.#mask + 1;
    if (2 * (this.#values.length + 1) > slots) this.#rebuild(this.#walks > 0 || 8 * (this.#size + 1) > 3 * slots ? 2 * slots : slots); // under a walk, the holes stay
    const index = this.#index;
    const mask = this.#mask;
    let i = h & mask;
    while (index[2 * i]! > FREE) i = (i + 1) & mask;
    this.#values.push(value);
    index[2 * i] = this.#values.length;
    index[2 * i + 1] = h;
    this.#size++;
  }

  /** Deletes the value of `id`; false when there was none. */
  delete(id: string, hash?: number): boolean {
    const slot = this.#find(id, (hash ?? xxh32(id)) | 0);
    if (slot < 0) return false;
    this.#values[this.#index[2 * slot]! - 1] = undefined;
    this.#index[2 * slot] = DELETED;
    this.#size--;
    this.#shrink();
    return true;
  }

  /** Under an eighth full, and no walk under way: the index shrinks to the fewest slots that leave room (a walk's end checks again). */
  #shrink(): void {
    const slots = this.#mask + 1;
    if (slots <= MIN_SLOTS || 8 * this.#size >= slots || this.#walks > 0) return;
    let fewest = MIN_SLOTS;
    while (3 * fewest < 8 * (this.#size + 1)) fewest *= 2;
    this.#rebuild(fewest);
  }

  clear(): void {
    this.#index = new Int32Array(2 * MIN_SLOTS);
    this.#mask = MIN_SLOTS - 1;
    this.#values = [];
    this.#size = 0;
    this.hand = 0;
  }

  /**
   * The values, in the order they came, as a Map's iterator gives them: each once, one deleted before it is
   * reached not, one put in place of another as it is then, and those added meanwhile at the end.
   */
  *values(): IterableIterator<V> {
    this.#walks++;
    try {
      for (let i = 0; i < this.#values.length; i++) {
        const value = this.#values[i];
        if (value !== undefined) yield value;
      }
    } finally {
      this.#walks--;
      this.#shrink();
    }
  }

  /** The index slot of `id`, whose hash is `h`, or -1. */
  #find(id: string, h: number): number {
    const index = this.#index;
    const mask = this.#mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = index[2 * i]!;
      if (at === FREE) return -1;
      if (at !== DELETED && index[2 * i + 1] === h && this.#values[at - 1]!.id === id) return i;
    }
  }

  /** An index of `slots` slots; the values without their holes, unless a walk is under way (then they stay where they are). */
  #rebuild(slots: number): void {
    const old = this.#index;
    const oldValues = this.#values;
    const moved = new Int32Array(oldValues.length + 1); // old position + 1 → new position + 1
    const keep = this.#walks > 0;
    const values: (V | undefined)[] = keep ? oldValues : [];
    let hand = keep ? this.hand : -1;
    for (let p = 0; p < oldValues.length; p++) {
      const value = oldValues[p];
      if (keep) {
        if (value !== undefined) moved[p + 1] = p + 1;
        continue;
      }
      if (p === this.hand) hand = values.length;
      if (value === undefined) continue;
      values.push(value);
      moved[p + 1] = values.length;
    }
    const index = new Int32Array(2 * slots);
    const mask = slots - 1;
    for (let j = 0; j < old.length; j += 2) {
      const at = old[j]!;
      if (at === FREE || at === DELETED) continue;
      const h = old[j + 1]!;
      let i = h & mask;
      while (index[2 * i] !== FREE) i = (i + 1) & mask;
      index[2 * i] = moved[at]!;
      index[2 * i + 1] = h;
    }
    this.#index = index;
    this.#mask = mask;
    this.#values = values;
    this.hand = hand < 0 || hand >= values.length ? 0 : hand;
  }
}
