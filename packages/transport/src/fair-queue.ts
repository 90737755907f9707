// Sends waiting for room to one node (backlog.ts), in the order they leave:
// calls before casts, taking turns per actor (round-robin), and never one
// send before an earlier one to its own actor. A flood at one actor holds up a
// send to another by one send at most.

/** What may wait: a call (or event) or a cast, to one actor. */
export interface Queued {
  readonly kind: "call" | "cast";
  /** The actor it goes to (`<type>/<id>`): turns are taken per actor. */
  readonly actor: string;
  /** What it counts against the window (its bytes and the cost of reading it). */
  readonly cost: number;
}

/**
 * Each actor's sends in their order (a Set keeps insertion order, and takes
 * one out in O(1) when it expires); the actors whose next send is a call, and
 * those whose next is a cast, each in a ring: a JS Set, whose first entry is
 * the next turn (taking it out and putting it back moves it to the end).
 */
/** One actor's waiting sends, and how many of them are casts. */
interface ActorSends<T> {
  readonly sends: Set<T>;
  casts: number;
}

export class FairQueue<T extends Queued> {
  readonly #byActor = new Map<string, ActorSends<T>>();
  readonly #calls = new Set<ActorSends<T>>();
  readonly #casts = new Set<ActorSends<T>>();
  /** Bytes (costs) waiting, by kind. */
  readonly bytes = { call: 0, cast: 0 };
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Whether a cast to `actor` waits already. */
  castWaits(actor: string): boolean {
    return (this.#byActor.get(actor)?.casts ?? 0) > 0;
  }

  push(t: T): void {
    let q = this.#byActor.get(t.actor);
    if (q === undefined) {
      this.#byActor.set(t.actor, (q = { sends: new Set(), casts: 0 }));
      (t.kind === "call" ? this.#calls : this.#casts).add(q);
    }
    q.sends.add(t);
    if (t.kind === "cast") q.casts++;
    this.bytes[t.kind] += t.cost;
    this.#size++;
  }

  /** The send whose turn it is, or undefined when none waits (it stays queued: `take` it to send it). */
  peek(): T | undefined {
    const q = first(this.#calls) ?? first(this.#casts);
    return q === undefined ? undefined : first(q.sends);
  }

  /** Takes `t` out (its turn came, or its time ran out); its actor's next send waits its turn at the end of its ring. */
  take(t: T): boolean {
    const q = this.#byActor.get(t.actor);
    if (q === undefined || !q.sends.delete(t)) return false;
    if (t.kind === "cast") q.casts--;
    this.bytes[t.kind] -= t.cost;
    this.#size--;
    this.#calls.delete(q);
    this.#casts.delete(q);
    const next = first(q.sends);
    if (next === undefined) this.#byActor.delete(t.actor);
    else (next.kind === "call" ? this.#calls : this.#casts).add(q);
    return true;
  }

  /** Everything waiting, taken out. */
  clear(): T[] {
    const all = [...this.#byActor.values()].flatMap((q) => [...q.sends]);
    this.#byActor.clear();
    this.#calls.clear();
    this.#casts.clear();
    this.bytes.call = this.bytes.cast = 0;
    this.#size = 0;
    return all;
  }
}

function first<V>(set: Set<V>): V | undefined {
  for (const v of set) return v;
  return undefined;
}
