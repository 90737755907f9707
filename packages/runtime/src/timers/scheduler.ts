// The node's one clock for actor timers and reminders: a binary heap of
// entries ordered by due time, and a single Node timer armed for the
// earliest. 1,000,000 timers cost one Node timer, as 10 do. Entries know their
// place in the heap, so cancelling one is O(log n) and frees it at once.

/** Something to run at `due` (a `Date.now()` time). */
export interface Scheduled {
  due: number;
  /** Its place in the heap; -1 when not scheduled. Kept by the scheduler. */
  index: number;
  fire(): void;
}

/** The longest a Node timer can wait; later entries are re-armed on the way. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class Scheduler {
  readonly #heap: Scheduled[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;

  /** How many entries wait. */
  get size(): number {
    return this.#heap.length;
  }

  /** How many Node timers the scheduler holds: 1 while anything waits, else 0. */
  get nodeTimers(): number {
    return this.#timer === undefined ? 0 : 1;
  }

  add(entry: Scheduled): void {
    if (entry.index >= 0) this.remove(entry);
    entry.index = this.#heap.length;
    this.#heap.push(entry);
    this.#up(entry.index);
    this.#arm();
  }

  /** Takes an entry out; nothing happens when it is not scheduled. */
  remove(entry: Scheduled): void {
    const i = entry.index;
    if (i < 0 || this.#heap[i] !== entry) return;
    const last = this.#heap.pop()!;
    entry.index = -1;
    if (last !== entry) {
      this.#heap[i] = last;
      last.index = i;
      this.#down(i);
      this.#up(last.index);
    }
    this.#arm();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    for (const e of this.#heap) e.index = -1;
    this.#heap.length = 0;
  }

  /** Runs every entry that is due, then arms the timer for the next one. */
  #run(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = Date.now();
    while (this.#heap.length > 0 && this.#heap[0]!.due <= now) {
      const entry = this.#heap[0]!;
      this.remove(entry);
      try {
        entry.fire();
      } catch {
        // an entry's own failure is its business; the clock goes on
      }
    }
    this.#arm();
  }

  #arm(): void {
    const next = this.#heap[0]?.due ?? Infinity;
    if (next === this.#armedFor) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = next;
    if (next === Infinity) return;
    this.#timer = setTimeout(() => this.#run(), Math.min(MAX_DELAY_MS, Math.max(0, next - Date.now())));
    this.#timer.unref();
  }

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.due <= entry.due) break;
      heap[i] = heap[parent]!;
      heap[i]!.index = i;
      i = parent;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const entry = heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.due < heap[left]!.due ? right : left;
      if (heap[child]!.due >= entry.due) break;
      heap[i] = heap[child]!;
      heap[i]!.index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}
