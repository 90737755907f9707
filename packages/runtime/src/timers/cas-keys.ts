// Keys of a KV bucket changed by compare-and-set, the changes of one key
// grouped: those asked for while a write of that key is in flight go together
// in the next. A write that loses the compare-and-set reads the key again and
// applies its changes to what is stored now. The reminders' pages and
// directories are written so (reminder-pages.ts).
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { classifyNatsError } from "@mesh/transport";

/** A key's value and its revision (0: nothing stored). */
export interface Versioned<V> {
  value: V;
  revision: number;
}

/** What the keys of one kind are: how to read, change, encode and write them, and what of them to keep in memory. */
export interface KeyKind<V, C> {
  read(key: string): Promise<Versioned<V>>;
  /** The value with `changes` applied, or undefined when they change nothing. Throws to fail them all. */
  apply(value: V, changes: readonly C[]): V | undefined;
  encode(value: V, key: string): Uint8Array;
  /** Runs before a write of `value` (a page's directory bit is set first). */
  before?(key: string, value: V): Promise<void>;
  /** Stores `bytes` if the key is at `revision`; resolves to the new revision. */
  write(key: string, bytes: Uint8Array, revision: number): Promise<number>;
  /** Whether `key`'s value stays cached once its writes are done. */
  keep(key: string): boolean;
}

interface Waiting<C> {
  change: C;
  done(revision: number): void;
  failed(err: unknown): void;
}

/**
 * Compare-and-set tries of one write before it fails. Each lost try means
 * another writer's write landed (two nodes setting bits of one directory,
 * 100,000 reminders set at once: more than 8 tries in a row were lost), and
 * each new try carries the changes queued meanwhile.
 */
const TRIES = 100;

export class CasKeys<V, C> {
  /** Values as last read or written. */
  readonly cache = new Map<string, Versioned<V>>();
  readonly #queues = new Map<string, Waiting<C>[]>();

  constructor(
    readonly kind: KeyKind<V, C>,
    /** What the writes are of, for errors. */
    private readonly what: string,
  ) {}

  /** Applies `change` to `key`; resolves once stored, to the key's revision that holds it. Rejects with STORAGE_UNAVAILABLE, or what apply() threw. */
  change(key: string, change: C): Promise<number> {
    return new Promise((done, failed) => {
      const queue = this.#queues.get(key);
      if (queue !== undefined) return void queue.push({ change, done, failed });
      const fresh = [{ change, done, failed }];
      this.#queues.set(key, fresh);
      void this.#drain(key, fresh);
    });
  }

  /** Whether a write of `key` is waiting or in flight. */
  busy(key: string): boolean {
    return this.#queues.has(key);
  }

  async #drain(key: string, first: Waiting<C>[]): Promise<void> {
    let batch = first;
    while (batch.length > 0) {
      const next: Waiting<C>[] = [];
      this.#queues.set(key, next);
      await this.#writeOrSplit(key, batch);
      batch = next;
    }
    this.#queues.delete(key);
    if (!this.kind.keep(key)) this.cache.delete(key);
  }

  /** Writes a batch; one the value cannot hold (PAYLOAD_TOO_LARGE) is written in halves, so that what fits is stored. */
  async #writeOrSplit(key: string, batch: readonly Waiting<C>[]): Promise<void> {
    try {
      const revision = await this.#write(key, batch);
      for (const w of batch) w.done(revision);
    } catch (err) {
      if (batch.length > 1 && err instanceof MeshError && err.code === "PAYLOAD_TOO_LARGE") {
        const half = Math.ceil(batch.length / 2);
        await this.#writeOrSplit(key, batch.slice(0, half));
        return this.#writeOrSplit(key, batch.slice(half));
      }
      for (const w of batch) w.failed(err);
    }
  }

  async #write(key: string, batch: readonly Waiting<C>[]): Promise<number> {
    const changes = batch.map((w) => w.change);
    for (let tries = 1; ; tries++) {
      const stored = this.cache.get(key) ?? (await this.kind.read(key));
      const value = this.kind.apply(stored.value, changes);
      if (value === undefined) return stored.revision;
      await this.kind.before?.(key, value);
      const bytes = this.kind.encode(value, key);
      try {
        const revision = await this.kind.write(key, bytes, stored.revision);
        this.cache.set(key, { value, revision });
        return revision;
      } catch (err) {
        this.cache.delete(key);
        if (tries < TRIES && classifyNatsError(err) === "wrong-last-sequence") continue;
        throw err instanceof MeshError
          ? err
          : new MeshError("STORAGE_UNAVAILABLE", `cannot write ${this.what} ${key}: ${messageOf(err)}`, { cause: err });
      }
    }
  }
}
