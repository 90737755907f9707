// The commits of one durable activation. A turn's effects become visible (its
// reply is released) only once the state it left is stored: replies wait
// behind the commit that covers them, in order. While one commit is in flight
// the mailbox keeps running; the turns that end meanwhile share the next
// commit (group commit), so a hot actor writes once per store round trip, not
// once per turn.
import { MeshError, stateKey } from "@mesh/core";
import { decodeValue, encodeValue, messageOf } from "@mesh/core/internal";
import type { KeyWriter, StateStore, Stored } from "./state-store.js";

/** A turn's outcome, held until its commit lands. */
export interface Held {
  release(): void;
  fail(err: MeshError): void;
}

/** What a group commit tells its node. */
export interface CommitEvents {
  /** A commit landed after `ms`. */
  committed(ms: number): void;
  /** A commit failed: the activation must go (its memory is ahead of the store). */
  failed(err: MeshError): void;
  /** Nothing in flight and nothing waiting any more. */
  settled(): void;
}

// What the value model refuses (a Map, a Set, a class instance…) would be written
// wrongly or lost without a word: encodeValue refuses it as it writes.

/** Encodes a state into a buffer that the next call reuses. Throws BAD_STATE. */
export function encodeState(state: unknown, what: string): Uint8Array {
  return encodeValue(state, "BAD_STATE", "the state", what);
}

/** Decodes a stored state. Throws BAD_STATE for bytes that are not msgpack. */
export function decodeState(bytes: Uint8Array, what: string): unknown {
  try {
    return decodeValue(bytes);
  } catch (err) {
    throw new MeshError("BAD_STATE", `the stored state of ${what} is not msgpack: ${messageOf(err)}`, { cause: err });
  }
}

/** The latest turn asked for the state to be deleted. */
const DELETE = Symbol("delete");

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class GroupCommit implements KeyWriter {
  #revision: number;
  /** What needs no write: the stored bytes, or the initial state's while nothing is stored. */
  #stored: Uint8Array | typeof DELETE | undefined;
  /** What the last good turn left. */
  #latest: Uint8Array | typeof DELETE | undefined;
  #inFlight = false;
  /** Turns that ended since the commit in flight started: they share the next one. */
  #waiting: Held[] = [];
  #failed: MeshError | undefined;
  #idle: (() => void)[] = [];

  constructor(
    private readonly store: StateStore,
    readonly key: string,
    stored: Stored,
    /** The encoded state the activation starts from (the stored value, or the initial state's encoding). */
    baseline: Uint8Array | undefined,
    private readonly events: CommitEvents,
  ) {
    this.#revision = stored.revision;
    this.#stored = this.#latest = baseline;
  }

  /** A commit is in flight or turns wait for one. */
  get busy(): boolean {
    return this.#inFlight || this.#waiting.length > 0;
  }

  /**
   * A turn ended well and left `state`: releases `held` now when nothing is
   * pending and the state is unchanged, else once the commit that covers the
   * turn lands (or fails it with that commit's error). Returns BAD_STATE or
   * an earlier commit's failure instead when the turn cannot be committed.
   */
  afterTurn(state: unknown, held: Held): MeshError | undefined {
    if (this.#failed) return this.#failed;
    let bytes: Uint8Array;
    try {
      bytes = encodeState(state, this.key);
    } catch (err) {
      return err as MeshError;
    }
    const latest = this.#latest;
    if (latest === undefined || latest === DELETE || !sameBytes(bytes, latest)) {
      if (bytes.length > this.store.maxValueBytes) {
        return new MeshError("PAYLOAD_TOO_LARGE", `the state of ${this.key} is ${bytes.length} bytes encoded; the limit is ${this.store.maxValueBytes}`);
      }
      this.#latest = bytes.slice();
    } else if (!this.busy) {
      held.release();
      return undefined;
    }
    this.#hold(held);
    return undefined;
  }

  /** The turn called clearState(): the stored value is deleted, then `held` is released. */
  clear(held: Held): MeshError | undefined {
    if (this.#failed) return this.#failed;
    this.#latest = DELETE;
    this.#hold(held);
    return undefined;
  }

  /** Resolves once nothing is in flight or waiting. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #hold(held: Held): void {
    this.#waiting.push(held);
    if (!this.#inFlight) this.#flush();
  }

  /** Writes what the waiting turns left, as one commit. */
  #flush(): void {
    const covered = this.#waiting;
    this.#waiting = [];
    const target = this.#latest;
    if (target === this.#stored || (target === DELETE && this.#revision === 0)) {
      this.#stored = target;
      for (const h of covered) h.release();
      return this.#settle();
    }
    this.#inFlight = true;
    this.store.writing(this.key, this);
    const started = performance.now();
    const write = target === DELETE ? this.store.delete(this.key, this.#revision).then(() => 0) : this.store.write(this.key, target!, this.#revision);
    write.then(
      (revision) => {
        this.#inFlight = false;
        this.#revision = revision;
        this.#stored = target;
        this.events.committed(performance.now() - started);
        for (const h of covered) h.release();
        if (this.#waiting.length > 0) this.#flush();
        else this.#settle();
      },
      (err: MeshError) => {
        this.#inFlight = false;
        this.#failed = err;
        const lost = [...covered, ...this.#waiting];
        this.#waiting = [];
        for (const h of lost) h.fail(err);
        this.#settle();
        this.events.failed(err);
      },
    );
  }

  #settle(): void {
    if (this.busy) return;
    this.store.done(this.key, this);
    for (const resolve of this.#idle.splice(0)) resolve();
    this.events.settled();
  }
}

/**
 * Reads the stored state of (`capability`, `actorType`, `id`) into `instance.state` (when
 * one is stored; else the instance keeps its initial state) and returns the
 * group commit that stores it from now on. Throws STORAGE_UNAVAILABLE, or
 * BAD_STATE for a stored value that is not msgpack.
 */
export async function loadState(store: StateStore, capability: string, actorType: string, id: string, instance: object, events: CommitEvents): Promise<GroupCommit> {
  const key = stateKey(capability, actorType, id);
  const stored = await store.load(key);
  const holder = instance as { state?: unknown };
  let baseline: Uint8Array | undefined;
  if (stored.bytes !== undefined) {
    holder.state = decodeState(stored.bytes, key);
    baseline = stored.bytes;
  } else {
    try {
      baseline = encodeState(holder.state, key).slice();
    } catch {
      // an initial state that cannot be encoded fails the first turn that ends, with BAD_STATE
    }
  }
  return new GroupCommit(store, key, stored, baseline, events);
}
