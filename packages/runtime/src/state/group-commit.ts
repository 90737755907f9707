// The commits of one durable activation. A turn's effects become visible (its
// reply is released) only once the state it left is stored: replies wait
// behind the commit that covers them, in order. While one commit is in flight
// the mailbox keeps running; the turns that end meanwhile share the next
// commit (group commit), so a hot actor writes once per store round trip, not
// once per turn.
import { MeshError, stateKey } from "@mesh/core";
import { decodeValue, encodeValue, messageOf } from "@mesh/core/internal";
import type { KeyWriter, StateStorage, Stored } from "./state-store.js";
import { decodeRecord, encodeRecord } from "./record.js";
import type { OutMessage, StoredRecord } from "./record.js";
import { checkReadable, upgrade } from "./state-version.js";
import type { StateVersioning } from "./state-version.js";

/** A turn's outcome, held until its commit lands. */
export interface Held {
  /** The trace context of the turn, while tracing is on: the commit's span goes under the last such turn it covers (opaque here: CommitEvents.span reads it). */
  readonly trace?: unknown;
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
  /** A commit starts: its span, or undefined while tracing is off (the actors room gives it: state/ imports nothing of tracing). */
  span(commit: CommitInfo): CommitSpan | undefined;
  /**
   * A commit is about to be sent: undefined when it may go now; else a promise that resolves once it may, or
   * rejects when it must not (the node's lease lapsed, and another node may have served the actor since).
   */
  fence(): Promise<void> | undefined;
}

/** A commit as its span describes it. */
export interface CommitInfo {
  /** The actor's type (the key holds it encoded). */
  readonly actorType: string;
  readonly key: string;
  /** The turns it covers, in order. */
  readonly covered: readonly Held[];
  /** It deletes the state. */
  readonly clearing: boolean;
  /** The messages it stores and then publishes. */
  readonly messages: number;
  /** The revision it writes against. */
  readonly expectedRevision: number;
}

/** The span of a commit under way. */
export interface CommitSpan {
  /** The commit (and the publishing after it) landed at `revision`. */
  end(revision: number): void;
  /** The commit failed with `err`. */
  fail(err: MeshError): void;
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

/** What a group commit publishes with: the node's publisher (events/outbox.ts). */
export interface OutboxPublisher {
  name(out: OutMessage[]): OutMessage[];
  publish(out: readonly OutMessage[]): Promise<void>;
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
  /** The highest stream sequence applied per subscription, stored with the state (record.ts). */
  readonly applied: Map<string, number>;
  /** Messages of committed turns that JetStream has not acknowledged yet. */
  #unpublished: OutMessage[];
  /** Messages of the turns waiting for the next commit. */
  #out: OutMessage[] = [];
  /** The record differs from the stored one besides the state: a write is due even if the state did not change. */
  #dirty = false;
  /** The state version of the stored state's shape: the record's until a commit stores this activation's. */
  #storedVersion: number;
  /** The state the store holds (undefined: none; #stored may then be the initial state's encoding). */
  #storedState: Uint8Array | undefined;
  /** What runs once the next commit landed (note()). */
  #thens: (() => void)[] = [];
  /** The notes of the turn under way: the applied map takes them when it ends (afterTurn, clear), never if it crashes. */
  readonly #staged = new Map<string, number>();
  #stagedThens: (() => void)[] = [];

  /** Turns that ended (afterTurn, clear): a note made after its turn ended would go into another turn's commit. */
  turnsEnded = 0;

  constructor(
    private readonly store: StateStorage,
    readonly key: string,
    /** The actor's type, which names the commit's span (the key holds it encoded). */
    private readonly actorType: string,
    stored: Stored,
    /** The encoded state the activation starts from (the stored value, or the initial state's encoding). */
    baseline: Uint8Array | undefined,
    private readonly events: CommitEvents,
    private readonly publisher: OutboxPublisher,
    record: StoredRecord,
    /** The state version its writes carry: the class's. A record of another one is written again by the first commit, even if its state did not change. */
    private readonly version: number,
  ) {
    this.#revision = stored.revision;
    this.#stored = this.#latest = baseline;
    this.applied = record.applied;
    this.#unpublished = record.outbox;
    this.#dirty = stored.bytes !== undefined && record.version !== version;
    this.#storedVersion = record.version;
    this.#storedState = record.state;
  }

  /**
   * What the store holds of this actor, as a load would read it, when that is
   * known here: nothing in flight or waiting, nothing left to publish, no
   * failure. Undefined otherwise.
   */
  snapshot(): Stored | undefined {
    if (this.busy || this.#dirty || this.#failed !== undefined || this.#unpublished.length > 0) return undefined;
    if (this.#revision === 0) return { bytes: undefined, revision: 0 };
    const state = this.#storedState;
    const bare = state === undefined && this.applied.size === 0;
    return { bytes: bare ? undefined : encodeRecord(state, this.applied, [], this.#storedVersion).slice(), revision: this.#revision };
  }

  /** A commit is in flight or turns wait for one. */
  get busy(): boolean {
    return this.#inFlight || this.#waiting.length > 0;
  }

  /**
   * A turn ended well and left `state`: releases `held` now when nothing is
   * pending and nothing changed, else once the commit that covers the turn
   * lands and what it published is in JetStream (or fails it with that
   * commit's error). `applied`: the event the turn applied (stored with
   * it); `out`: what it published. Returns BAD_STATE or an earlier commit's failure instead when
   * the turn cannot be committed.
   */
  afterTurn(state: unknown, held: Held, applied?: { subscription: string; seq: number }, out?: OutMessage[]): MeshError | undefined {
    this.turnsEnded++;
    if (this.#failed) return this.#failed;
    let bytes: Uint8Array;
    try {
      bytes = encodeState(state, this.key);
    } catch (err) {
      return err as MeshError;
    }
    const latest = this.#latest;
    const same = latest !== undefined && latest !== DELETE && sameBytes(bytes, latest);
    if (!same && bytes.length > this.store.maxValueBytes) {
      return new MeshError(
        "PAYLOAD_TOO_LARGE",
        `the state of ${this.key} is ${bytes.length} bytes encoded; the limit is ${this.store.maxValueBytes}`,
      );
    }
    let changed = this.#merge() || this.#dirty;
    if (applied !== undefined) {
      this.#apply(applied);
      changed = true;
    }
    if (out !== undefined) {
      for (const m of out) this.#out.push(m);
      changed = true;
    }
    if (changed) this.#dirty = true;
    if (!same) this.#latest = bytes.slice();
    else if (!changed && !this.busy) {
      held.release();
      return undefined;
    }
    this.#hold(held);
    return undefined;
  }

  /** The turn called clearState(): the stored value is deleted (or, with applied sequences to keep, emptied), then `held` is released. */
  clear(held: Held, applied?: { subscription: string; seq: number }, out?: OutMessage[]): MeshError | undefined {
    this.turnsEnded++;
    if (this.#failed) return this.#failed;
    this.#merge();
    if (applied !== undefined) this.#apply(applied);
    if (out !== undefined) for (const m of out) this.#out.push(m);
    this.#latest = DELETE;
    this.#dirty = true;
    this.#hold(held);
    return undefined;
  }

  /**
   * Publishes what a commit before this activation stored and did not get
   * out (its node died first), then stores the record without it. Rejects
   * with STORAGE_UNAVAILABLE; the record keeps its outbox for the next try.
   */
  async recover(): Promise<void> {
    if (this.#unpublished.length === 0) return;
    await this.publisher.publish(this.#unpublished);
    this.#unpublished = [];
    this.#revision = await this.store.write(
      this.key,
      encodeRecord(this.#storedState, this.applied, [], this.#storedVersion),
      this.#revision,
    );
  }

  /**
   * Sets `name` in the applied map to `value` (0: removes it) with the end of
   * the turn under way, and from its commit on (a reminder's ticket,
   * timers/reminders.ts); `then` runs once that commit landed. A turn that
   * crashes leaves the map as it was, and `then` never runs.
   */
  note(name: string, value: number, then?: () => void): void {
    this.#staged.set(name, value);
    if (then !== undefined) this.#stagedThens.push(then);
  }

  /** What `name` holds in the applied map, with the notes of the turn under way. */
  noted(name: string): number | undefined {
    const staged = this.#staged.get(name);
    if (staged === undefined) return this.applied.get(name);
    return staged === 0 ? undefined : staged;
  }

  /** The turn ended well: its notes go into the applied map, to be stored with the next commit. */
  #merge(): boolean {
    if (this.#staged.size === 0 && this.#stagedThens.length === 0) return false;
    for (const [subscription, seq] of this.#staged) this.#apply({ subscription, seq });
    this.#staged.clear();
    this.#thens.push(...this.#stagedThens);
    this.#stagedThens = [];
    this.#dirty = true;
    return true;
  }

  #apply(applied: { subscription: string; seq: number }): void {
    if (applied.seq === 0) this.applied.delete(applied.subscription);
    else this.applied.set(applied.subscription, applied.seq);
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

  /** Writes what the waiting turns left, as one commit, then publishes what they published. */
  #flush(): void {
    const covered = this.#waiting;
    this.#waiting = [];
    const target = this.#latest;
    if (!this.#dirty && (target === this.#stored || (target === DELETE && this.#revision === 0))) {
      this.#stored = target;
      for (const h of covered) h.release();
      return this.#settle();
    }
    const outbox = this.#out.length > 0 ? this.#unpublished.concat(this.publisher.name(this.#out)) : this.#unpublished;
    this.#out = [];
    this.#dirty = false;
    const thens = this.#thens;
    this.#thens = [];
    this.#inFlight = true;
    this.store.writing(this.key, this);
    const started = performance.now();
    const span = this.events.span({
      actorType: this.actorType,
      key: this.key,
      covered,
      clearing: target === DELETE,
      messages: outbox.length,
      expectedRevision: this.#revision,
    });
    const bare = target === DELETE && this.applied.size === 0 && outbox.length === 0;
    const record = bare ? undefined : encodeRecord(target === DELETE ? undefined : target, this.applied, outbox, this.version);
    const revision = this.#revision;
    const send = () => (record === undefined ? this.store.clear(this.key, revision) : this.store.write(this.key, record, revision));
    const fence = this.events.fence(); // turns that ended before a pause are stored only under a lease that still holds
    (fence === undefined ? send() : fence.then(send))
      .then((revision) => {
        this.#revision = revision;
        this.#stored = target;
        this.#storedState = target === DELETE ? undefined : target;
        this.#storedVersion = this.version;
        this.#unpublished = outbox;
        this.events.committed(performance.now() - started);
        if (outbox.length === 0) return;
        return this.publisher.publish(outbox).then(() => {
          this.#unpublished = [];
          // The stored record still lists them: the next commit drops them, or this one.
          this.#dirty = true;
        });
      })
      .then(
        () => {
          span?.end(this.#revision);
          this.#inFlight = false;
          for (const h of covered) h.release();
          for (const then of thens) then();
          if (this.#waiting.length > 0 || this.#dirty) this.#flush();
          else this.#settle();
        },
        (err: MeshError) => {
          span?.fail(err);
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

/** Where a durable activation's state is, and what its commits tell. */
export interface StateSource {
  readonly store: StateStorage;
  readonly capability: string;
  readonly actorType: string;
  readonly id: string;
  /** The class's state versions (state-version.ts). */
  readonly versioning: StateVersioning;
  readonly events: CommitEvents;
  readonly publisher: OutboxPublisher;
  /** The stored record and its revision as the actor's old owner handed them over (live migration): not read from the store. */
  readonly moved?: Stored;
}

/**
 * Reads the stored state of (`capability`, `actorType`, `id`) into `instance.state` (when
 * one is stored; else the instance keeps its initial state), migrated to the
 * class's state version, and returns the group commit that stores it from
 * now on. Throws STORAGE_UNAVAILABLE, STATE_TOO_NEW (stored by newer code),
 * or BAD_STATE (a stored value that is not msgpack, a migrateState that threw).
 */
export async function loadState(instance: object, s: StateSource): Promise<GroupCommit> {
  const key = stateKey(s.capability, s.actorType, s.id);
  const stored = s.moved ?? (await s.store.load(key));
  const record = readRecord(stored.bytes, key);
  checkReadable(record.version, s.versioning, key, s.actorType);
  const holder = instance as { state?: unknown };
  let baseline: Uint8Array | undefined;
  if (record.state !== undefined) {
    holder.state = await upgrade(decodeState(record.state, key), record.version, s.versioning, key, s.actorType);
    baseline = record.state;
  } else {
    try {
      baseline = encodeState(holder.state, key).slice();
    } catch {
      // an initial state that cannot be encoded fails the first turn that ends, with BAD_STATE
    }
  }
  const commits = new GroupCommit(s.store, key, s.actorType, stored, baseline, s.events, s.publisher, record, s.versioning.version);
  await commits.recover();
  return commits;
}

/** The record stored under `key` (none: the initial state). Throws BAD_STATE for one that is not a record. */
export function readRecord(bytes: Uint8Array | undefined, key: string): StoredRecord {
  if (bytes === undefined) return { state: undefined, applied: new Map(), outbox: [], version: 1 };
  try {
    return decodeRecord(bytes);
  } catch (err) {
    throw new MeshError("BAD_STATE", `the stored record of ${key} is broken: ${messageOf(err)}`, { cause: err });
  }
}
