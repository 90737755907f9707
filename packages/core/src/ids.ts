// Sequential ids for what is in flight (a caller's calls, its batches):
// unsigned 32-bit, never 0 (a cast's frame id), and never one still in use.
// After 2^32 ids the count wraps; an entry that waited that long (a call with
// a timeout of hours, at 100,000 calls a second) keeps its id, so that no
// reply meant for the new one reaches it, nor the other way round.

export class Ids {
  #last: number;

  /** `last`: as if that id had just been given (the next is the one after it). */
  constructor(last = 0) {
    this.#last = last >>> 0;
  }

  /** The next id after the last one given, skipping 0 and those `inUse` says are taken. */
  next(inUse: (id: number) => boolean): number {
    let id = this.#last;
    do id = (id + 1) >>> 0 || 1;
    while (inUse(id));
    return (this.#last = id);
  }
}
