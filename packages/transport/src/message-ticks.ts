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

export class MessageTicks<M> {
  /** A message was handled in this tick (cleared by a microtask once the tick's synchronous work is done). */
  #busy = false;
  readonly #waiting: M[] = [];
  #whenIdle: (() => void)[] = [];
  readonly #free = () => {
    this.#busy = false;
  };
  readonly #next = () => this.#handleNext();

  /** `handle` must not throw: it runs in nats.js's callback, or in an immediate. */
  constructor(private readonly handle: (msg: M) => void) {}

  /** Handles `msg` now when it is the first of this tick and none waits, else in a tick of its own after those before it. */
  take(msg: M): void {
    if (this.#busy || this.#waiting.length > 0) {
      this.#waiting.push(msg);
      setImmediate(this.#next);
      return;
    }
    this.#busy = true;
    queueMicrotask(this.#free);
    this.handle(msg);
  }

  /** How many messages wait for their tick. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves once no message waits (a draining subscription's last ones were handled). */
  idle(): Promise<void> {
    if (this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#whenIdle.push(resolve));
  }

  #handleNext(): void {
    const msg = this.#waiting.shift()!;
    this.handle(msg);
    if (this.#waiting.length === 0 && this.#whenIdle.length > 0) {
      const waiters = this.#whenIdle;
      this.#whenIdle = [];
      for (const resolve of waiters) resolve();
    }
  }
}
