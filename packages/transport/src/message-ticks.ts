// Messages read together are handled in ticks of their own. nats.js hands
// every message of one socket read to its callback in one go, and what their
// handling sends (replies, the calls that follow) leaves batched at the end
// of the tick (frame-queue.ts): two batches read together would be answered
// as one, and caller and owner would take turns on the CPU, one batch out,
// one batch back. Handled one tick apart (the first at once, each further
// one in an immediate of its own, after the sends of the one before left),
// batches stay apart, and one side serves a batch while the other reads the
// one before (docs/PROTOCOL.md, "Batches").
//
// The order is kept: a message never overtakes one read before it. Every
// message that waits has its immediate queued when it arrives, so all that
// wait are handled in the next check phase of the event loop, each followed
// by its microtasks: nothing piles up across loop iterations.

import { microtask } from "./microtask.js";

export class MessageTicks<M> {
  /** A message was handled in this tick (cleared by a microtask once the tick's synchronous work is done). */
  #busy = false;
  /** The messages waiting, from `#head` on (a queue read by index: a flood read at once is not shifted one by one). */
  #waiting: M[] = [];
  #head = 0;
  #whenIdle: (() => void)[] = [];
  readonly #free = () => {
    this.#busy = false;
  };
  readonly #next = () => this.#handleNext();

  constructor(
    /** Handles one message; it should not throw (a throw is given to `failed`, and the next message is handled). */
    private readonly handle: (msg: M) => void,
    /** Told when `handle` threw (what it throws in turn is dropped). */
    private readonly failed: (err: unknown) => void,
  ) {}

  /** Handles `msg` now when it is the first of this tick and none waits, else in a tick of its own after those before it. */
  take(msg: M): void {
    if (this.#busy || this.waiting > 0) {
      this.#waiting.push(msg);
      setImmediate(this.#next);
      return;
    }
    this.#busy = true;
    microtask(this.#free);
    this.#handleSafely(msg);
  }

  /** How many messages wait for their tick. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Resolves once no message waits (a draining subscription's last ones were handled). */
  idle(): Promise<void> {
    if (this.waiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.#whenIdle.push(resolve));
  }

  #handleNext(): void {
    const msg = this.#waiting[this.#head]!;
    this.#waiting[this.#head++] = undefined as M; // let it go
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    }
    this.#handleSafely(msg);
    if (this.waiting === 0 && this.#whenIdle.length > 0) {
      const waiters = this.#whenIdle;
      this.#whenIdle = [];
      for (const resolve of waiters) resolve();
    }
  }

  #handleSafely(msg: M): void {
    try {
      this.handle(msg);
    } catch (err) {
      try {
        this.failed(err);
      } catch {
        // the report failed too (a logger that throws): the next message is handled all the same
      }
    }
  }
}
