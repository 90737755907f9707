import { SlotTable } from "./slot-table.js";
import { TimeoutMap, type Expiring } from "./timeout-map.js";

/** An entry that expires, with a sequential unsigned 32-bit id of its own, which wraps. */
export interface Numbered extends Expiring {
  readonly id: number;
}

/**
 * Expiring entries keyed by their own ids (a node's letters whose callers
 * wait): a TimeoutMap in a SlotTable. Ids wrap after 2^32, about 20 minutes at
 * 3.5 M local calls a second, so a new entry can come with the id of one that
 * still waits (a turn with no deadline, a mailbox held for hours). The older
 * one then moves to a small map keyed by the entry itself, where it still
 * expires, and taking the newer one leaves it there.
 */
export class TimeoutSet<V extends Numbered> {
  readonly #byId: TimeoutMap<number, V>;
  /** Entries whose id a newer entry took. */
  readonly #wrapped: TimeoutMap<V, V>;

  constructor(tickMs = 10) {
    this.#byId = new TimeoutMap<number, V>(tickMs, new SlotTable<V>());
    this.#wrapped = new TimeoutMap<V, V>(tickMs);
  }

  get size(): number {
    return this.#byId.size + this.#wrapped.size;
  }

  /** Watches `entry` until it is taken or expires (again: no change). */
  add(entry: V): void {
    if (this.#wrapped.size > 0 && this.#wrapped.get(entry) === entry) return; // watched already, aside
    const held = this.#byId.get(entry.id);
    if (held !== undefined && held !== entry) this.#wrapped.set(held, this.#byId.take(entry.id)!);
    this.#byId.set(entry.id, entry);
  }

  /** Stops watching `entry`: true when it was watched (not expired, not taken). */
  take(entry: V): boolean {
    if (this.#byId.get(entry.id) === entry) return this.#byId.take(entry.id) !== undefined;
    return this.#wrapped.size > 0 && this.#wrapped.take(entry) !== undefined;
  }

  /** Removes every entry and returns them, without expiring them. */
  clear(): V[] {
    return [...this.#byId.clear(), ...this.#wrapped.clear()];
  }
}
