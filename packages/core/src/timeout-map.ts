/** An entry that expires at `deadline` (a `performance.now()` time). */
export interface Expiring {
  readonly deadline: number;
  /** Called once, when the deadline passed before the entry was taken. */
  expire(): void;
}

/**
 * A map whose entries expire. One timer per map, not one per entry: it sweeps
 * every `tickMs` while the map is not empty, so an entry expires between its
 * deadline and `tickMs` later. Used for pending calls, where a timer per call
 * would cost more than the call.
 */
export class TimeoutMap<K, V extends Expiring> {
  readonly #entries = new Map<K, V>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly tickMs = 10) {}

  get size(): number {
    return this.#entries.size;
  }

  set(key: K, value: V): void {
    this.#entries.set(key, value);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), this.tickMs);
      this.#timer.unref();
    }
  }

  /** The entry, if it is there (not expired, not taken). */
  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Removes and returns the entry, or undefined when it expired or never was. */
  take(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) this.#entries.delete(key);
    return value;
  }

  /** Removes every entry and returns them, without expiring them. */
  clear(): V[] {
    const values = [...this.#entries.values()];
    this.#entries.clear();
    this.#stop();
    return values;
  }

  #sweep(): void {
    const now = performance.now();
    for (const [key, value] of this.#entries) {
      if (value.deadline <= now) {
        this.#entries.delete(key);
        value.expire();
      }
    }
    if (this.#entries.size === 0) this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
