// Durable actor state in one JetStream KV bucket per cluster (docs/state.md,
// docs/PROTOCOL.md "Durable state"): msgpack values under `stateKey(capability, type, id)`,
// written with compare-and-set on the key's revision.
import { randomUUID } from "node:crypto";
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { JETSTREAM_READY_MS, KvPublisher, bindBucket, classifyNatsError, isTransient, openBucket, readLatest } from "@mesh/transport";
import type { BucketOptions } from "@mesh/transport";
import type { JetStreamManager, KV, NatsConnection } from "nats";

/** Options of the state store (`storage` in `Mesh.start`). */
export interface StorageOptions {
  /** The KV bucket. @default "<prefix>_state" (dots in the prefix become "_") */
  bucket?: string;
  /** Copies of each value on a NATS cluster (1, 3 or 5). @default 3 when the server is part of a cluster, else 1 */
  replicas?: number;
  /** How long one store operation may take before it fails with STORAGE_UNAVAILABLE. @default 3000 */
  timeoutMs?: number;
}

/** What is stored for one actor: its value (undefined when none, or deleted) and the revision to write against (0: never written). */
export interface Stored {
  bytes: Uint8Array | undefined;
  revision: number;
}

/** Something on this node that is still writing a key (a group commit with work left). */
export interface KeyWriter {
  /** Resolves once it has nothing in flight and nothing waiting. */
  idle(): Promise<void>;
}

/**
 * The store as group commits use it (group-commit.ts): what StateStore gives,
 * and what another store would have to. Every failure is a MeshError, as
 * StateStore's are.
 */
export interface StateStorage {
  /** The largest encoded value it takes. */
  readonly maxValueBytes: number;
  /** How long a write or a read may take. */
  readonly timeoutMs: number;
  /** The stored value of `key` and its revision, once this node's own writes of it have landed. */
  load(key: string): Promise<Stored>;
  /** Writes `bytes` if the key is still at `revision` (0: never written); resolves with the new revision. STATE_CONFLICT when it moved. */
  write(key: string, bytes: Uint8Array, revision: number): Promise<number>;
  /** Deletes the key's value (a delete marker) if the key is still at `revision` (0: never written); resolves with the new revision. As `write`. */
  clear(key: string, revision: number): Promise<number>;
  /** Deletes whatever the key holds (an operator's delete). */
  delete(key: string): Promise<void>;
  /** `writer` has writes of `key` under way: loads of the key wait for it until `done(key, writer)`. */
  writing(key: string, writer: KeyWriter): void;
  /** `writer` has nothing of `key` under way any more. */
  done(key: string, writer: KeyWriter): void;
}

/**
 * The bucket, opened (and created when missing) at node start. Every failure
 * is a MeshError: STATE_CONFLICT when the revision moved, PAYLOAD_TOO_LARGE
 * for a value above the limit, STORAGE_UNAVAILABLE for anything else (no
 * answer in time, no JetStream, the bucket gone).
 */
export class StateStore implements StateStorage {
  /** Keys this node is writing: a load of one waits for them, so a node always reads its own writes. */
  readonly #writers = new Map<string, KeyWriter>();

  /** Writes, through one reply subscription with our own correlation ids (KvPublisher). */
  readonly #writes: KvPublisher;
  /** On a replicated bucket, each write carries an id: this store's prefix, then a count (see `#conflicted`). */
  readonly #writeIds = `${randomUUID()}.`;
  #written = 0;
  private constructor(
    nc: NatsConnection,
    private readonly kv: KV,
    /** Loads go to the bucket's stream leader through the JetStream API (readLatest), never a direct get. */
    private readonly jsm: JetStreamManager,
    readonly bucket: string,
    /** The largest value the server takes, less room for the message's headers. */
    readonly maxValueBytes: number,
    /** How long a write or a read may take. */
    readonly timeoutMs: number,
    /** The bucket has more than one replica: a load is confirmed by a write (see `load`). */
    private readonly replicated: boolean,
    inboxPrefix?: string,
  ) {
    this.#writes = new KvPublisher(nc, bucket, timeoutMs, inboxPrefix);
  }

  /** Opens `bucket`, creating it when missing (openBucket). Throws STORAGE_UNAVAILABLE with the reason. */
  static async open(
    nc: NatsConnection,
    bucket: string,
    options: BucketOptions,
    maxPayload: number,
    inboxPrefix?: string,
  ): Promise<StateStore> {
    const kv = await openBucket(nc, "state", bucket, options);
    const jsm = await nc.jetstreamManager({ timeout: options.timeoutMs, checkAPI: false });
    const replicated = (await replicasOf(kv, bucket)) > 1;
    return new StateStore(nc, kv, jsm, bucket, maxPayload - 256, options.timeoutMs, replicated, inboxPrefix);
  }

  /** Binds to an existing bucket, for tools (`mesh state`). Throws STORAGE_UNAVAILABLE when there is none. */
  static async bind(nc: NatsConnection, bucket: string, timeoutMs: number): Promise<StateStore> {
    return new StateStore(
      nc,
      await bindBucket(nc, "state", bucket, timeoutMs),
      await nc.jetstreamManager({ timeout: timeoutMs, checkAPI: false }),
      bucket,
      (nc.info?.max_payload ?? 1024 * 1024) - 256,
      timeoutMs,
      false, // tools read what is there
    );
  }

  /**
   * The stored value of `key` and its revision, once this node's own writes
   * of it have landed. On a replicated bucket the read is confirmed: what was
   * read is written back with a compare-and-set on its revision (the value
   * unchanged, or a delete marker where there was none), which only the
   * stream's current leader can commit, with its quorum. nats-server 2.9's
   * stream leader, cut off from its quorum or paused, still answers reads
   * until it steps down (up to its lost-quorum interval, or until it hears
   * the new leader), so the read alone may be stale; a stale one fails the
   * write, and the key is read again.
   */
  async load(key: string): Promise<Stored> {
    for (let w = this.#writers.get(key); w !== undefined; w = this.#writers.get(key)) await w.idle();
    return this.#read(key);
  }

  async #read(key: string): Promise<Stored> {
    const what = `cannot read the state of ${key}`;
    for (let attempt = 1; ; attempt++) {
      let stored: Stored;
      try {
        const entry = await readLatest(this.jsm, this.bucket, key);
        stored = entry === null ? { bytes: undefined, revision: 0 } : { bytes: entry.value, revision: entry.revision };
      } catch (err) {
        throw storeError(err, what);
      }
      if (!this.replicated) return stored;
      try {
        return {
          bytes: stored.bytes,
          revision: await this.#publish(key, stored.bytes ?? new Uint8Array(0), stored.revision, stored.bytes === undefined),
        };
      } catch (err) {
        if (!(err instanceof MeshError && err.code === "STATE_CONFLICT") || attempt >= LOAD_ATTEMPTS) throw storeError(err, what);
      }
    }
  }

  /**
   * Writes `bytes` if the key is still at `revision` (0: never written);
   * resolves with the new revision. What nats.js's `kv.put` sends, without its
   * per-request promise race, timer and cancellation error (a third of the
   * CPU of a commit, measured with --cpu-prof): a publish to `$KV.<bucket>.<key>`
   * with the expected-sequence header (and, on a replicated bucket, the
   * write's id, `Mesh-Write`), answered by JetStream's PubAck.
   */
  write(key: string, bytes: Uint8Array, revision: number): Promise<number> {
    if (bytes.length > this.maxValueBytes) {
      return Promise.reject(
        new MeshError("PAYLOAD_TOO_LARGE", `the state of ${key} is ${bytes.length} bytes encoded; the limit is ${this.maxValueBytes}`),
      );
    }
    return this.#compareAndSet(key, bytes, revision, false);
  }

  /** A delete marker if the key is still at `revision` (0: never written), settled as a write is; resolves with its revision. */
  clear(key: string, revision: number): Promise<number> {
    return this.#compareAndSet(key, EMPTY, revision, true);
  }

  #compareAndSet(key: string, bytes: Uint8Array, revision: number, deleted: boolean): Promise<number> {
    if (!this.replicated) return this.#publish(key, bytes, revision, deleted);
    const id = this.#writeIds + (++this.#written).toString(36);
    return this.#publish(key, bytes, revision, deleted, id).catch((err: unknown) => this.#conflicted(key, id, revision, err));
  }

  /**
   * A write to a replicated bucket was refused for a moved revision. The
   * refusal may come from a stream leader that lost its quorum and does not
   * know it yet (nats-server 2.9, after a partition heals, or paused), while
   * the real leader stores the write. So the key is read again, without a
   * confirming write (that write, the value read at its revision, sent while
   * this one is still going through the real leader's quorum, would pass as
   * well: nats-server 2.9 checks an expected revision against what the
   * leader has applied; and it would overwrite this one), until it tells:
   * - past `revision`, written by this very write (its id, `KvWrite.id`; not
   *   its bytes, which another activation's write may share): it landed;
   * - past `revision`, anything else (another write, a delete marker):
   *   another activation wrote it, or an operator removed it (STATE_CONFLICT);
   * - still at `revision`, or older: no answer yet, read again, for the
   *   store's time (`timeoutMs`); then whether the write landed is unknown:
   *   STORAGE_UNAVAILABLE, never STATE_CONFLICT, which says it did not.
   */
  async #conflicted(key: string, id: string, revision: number, err: unknown): Promise<number> {
    if (!(err instanceof MeshError && err.code === "STATE_CONFLICT")) throw err;
    const until = performance.now() + this.timeoutMs;
    let why = "";
    for (let pause = 10; ; pause = Math.min(2 * pause, 250)) {
      try {
        const now = await readLatest(this.jsm, this.bucket, key);
        why = "the key stayed at the revision the write expected";
        if (now !== null && now.revision > revision) {
          if (now.writeId === id) return now.revision;
          throw err;
        }
      } catch (failure) {
        if (failure === err) throw err;
        why = messageOf(failure);
      }
      if (performance.now() + pause > until) break;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    throw new MeshError(
      "STORAGE_UNAVAILABLE",
      `cannot store the state of ${key}: the write was refused for a moved revision, and reading the key back did not tell whether it landed within ${this.timeoutMs} ms (${why})`,
    );
  }

  /** Publishes `bytes` (or, `deleted`, a delete marker) to `key` if it is still at `revision`; resolves with the new revision. */
  #publish(key: string, bytes: Uint8Array, revision: number, deleted: boolean, id?: string): Promise<number> {
    return this.#writes.publish(key, bytes, { revision, deleted, id }, (err) => storeError(err, `cannot store the state of ${key}`));
  }

  /** Deletes whatever the key holds (an operator's delete). */
  async delete(key: string): Promise<void> {
    try {
      await this.kv.delete(key);
    } catch (err) {
      throw storeError(err, `cannot delete the state of ${key}`);
    }
  }

  /** `writer` has writes of `key` under way: loads of the key wait for it until `done(key, writer)`. */
  writing(key: string, writer: KeyWriter): void {
    this.#writers.set(key, writer);
  }

  /** `writer` has nothing of `key` under way any more (another writer of the key stays). */
  done(key: string, writer: KeyWriter): void {
    if (this.#writers.get(key) === writer) this.#writers.delete(key);
  }
}

/** A delete marker's body. */
const EMPTY = new Uint8Array(0);

/** How many times a load whose confirmation found the key moved reads it again before STORAGE_UNAVAILABLE. */
const LOAD_ATTEMPTS = 5;

function storeError(err: unknown, what: string): MeshError {
  if (err instanceof MeshError && err.code !== "NODE_UNAVAILABLE") return err;
  const kind = classifyNatsError(err);
  if (kind === "wrong-last-sequence") {
    return new MeshError("STATE_CONFLICT", `${what}: another activation of the actor committed first (the stored revision moved)`, {
      cause: err,
    });
  }
  if (kind === "max-payload")
    return new MeshError("PAYLOAD_TOO_LARGE", `${what}: the value exceeds the NATS server's max_payload`, { cause: err });
  return new MeshError("STORAGE_UNAVAILABLE", `${what}: ${messageOf(err)}`, { cause: err });
}

/**
 * The bucket's replicas, from its stream's info. A NATS cluster that just made the bucket may not answer at once
 * (its leader is being elected): asked again while JETSTREAM_READY_MS lasts, then STORAGE_UNAVAILABLE, never a bare
 * NATS error (the fresh-clone CI once saw a node's start end with "NatsError: TIMEOUT").
 */
async function replicasOf(kv: KV, bucket: string): Promise<number> {
  const readyBy = performance.now() + JETSTREAM_READY_MS;
  for (;;) {
    try {
      return (await kv.status()).replicas;
    } catch (err) {
      if (!isTransient(err) || performance.now() >= readyBy) {
        throw new MeshError("STORAGE_UNAVAILABLE", `cannot read the state bucket "${bucket}": ${messageOf(err)}`, { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
