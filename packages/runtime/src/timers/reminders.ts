// Durable reminders (ctx.remind): stored in JetStream KV, so they outlive the
// activation, its node and every node; fired by whichever node owns the
// actor's shard when they fall due (docs/timers.md, docs/PROTOCOL.md).
//
// A node keeps in memory only the reminders of the shards it owns that are
// due within the horizon: it scans its capabilities' reminders at start,
// every scanMs, and at once when the view changes (it may own new shards).
// They wait on the node's one scheduler; a firing is a handleReminder turn in
// the actor's mailbox. After the turn (and its commit) a one-shot reminder is
// deleted and a repeating one moves to its next time, both with
// compare-and-set, so a reminder that another node changed meanwhile is left
// to it. A turn that fails is retried with backoff, and the backoff is stored
// too. Delivery is at least once: a node that dies after the turn and before
// the delete leaves the reminder to fire again on the next owner.
import { Decoder, Encoder } from "@msgpack/msgpack";
import { MeshError, shardFor } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { KvPublisher, bindBucket, openBucket, readAll } from "@mesh/transport";
import type { BucketOptions } from "@mesh/transport";
import type { KV, KvEntry, NatsConnection, QueuedIterator } from "nats";
import type { NodeMetrics } from "../operations/metrics.js";
import type { ReminderInfo, RemindOptions } from "../types.js";
import { backoffMs, dueOf, reminderKey } from "./reminder-entry.js";
import type { Reminder } from "./reminder-entry.js";
import type { Scheduled, Scheduler } from "./scheduler.js";

export { reminderBucket, reminderKey, reminderTurns } from "./reminder-entry.js";
export type { Reminder } from "./reminder-entry.js";

/** What reminders need from their node. */
export interface ReminderNode {
  /** Whether this node owns (capability, shard) in its current view. */
  owns(capability: string, shard: number): boolean;
  /** Resolves once the node's lease holds (re-validating it first when it lapsed); rejects once the node stops. */
  held(): Promise<void>;
  /** Runs handleReminder as a turn of the actor (activating it), unless it applied `occurrence` already; resolves once the turn (and its commit) is done: true when it ran. */
  fire(reminder: Reminder, shard: number, info: ReminderInfo, occurrence: number): Promise<boolean>;
}

const encoder = new Encoder();
const decoder = new Decoder();
/** A delete marker's (empty) value. */
const NOTHING = new Uint8Array(0);

/** A failed write, as the reminder's caller sees it. */
const unavailable = (what: string) => (err: unknown) => new MeshError("STORAGE_UNAVAILABLE", `${what}: ${messageOf(err)}`, { cause: err });

/** The node's reminders, for a durable actor (else BAD_REQUEST, thrown as the handler's own error). */
export function remindersOf(
  act: { commits?: unknown; actorType: string; instance: object },
  reminders: Reminders | undefined,
  needs?: "handleReminder",
): Reminders {
  if (act.commits === undefined || reminders === undefined)
    throw new MeshError("BAD_REQUEST", `reminders are for durable actors (static durable = true); ${act.actorType} is not durable`);
  if (needs && typeof (act.instance as { handleReminder?: unknown }).handleReminder !== "function")
    throw new MeshError("BAD_REQUEST", `${act.actorType} has no handleReminder method`);
  return reminders;
}

class Pending implements Scheduled {
  index = -1;
  /** Taken off the schedule: its turn runs, or waits for one of the node's reminder turns (Reminders.due). */
  running = false;
  /** The scan under way when set() held it (its read may not have seen the write): that scan does not let it go. */
  heldIn = -1;
  constructor(
    readonly key: string,
    public reminder: Reminder,
    public revision: number,
    readonly shard: number,
    private readonly owner: Reminders,
  ) {}
  get due(): number {
    return this.reminder.runAt;
  }
  fire(): void {
    this.owner.due(this);
  }
}

export class Reminders {
  readonly #scheduled = new Map<string, Pending>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #scanning: Promise<void> | undefined;
  #rescan = false;
  #stopped = false;
  /** The watch of a scan under way: stop() ends it (its consumer has timers of its own). */
  #watch: QueuedIterator<KvEntry> | undefined;
  /** Scans so far: the number of the one under way, or of the last. */
  #epoch = 0;
  /** Keys forgotten here → the first scan that started after the delete landed (Infinity until it has). Scans before it skip them. */
  readonly #forgotten = new Map<string, number>();
  /** Reminder turns under way, and due reminders waiting for one (in due order). */
  #turns = 0;
  readonly #ready: Pending[] = [];

  private constructor(
    private readonly kv: KV,
    /** Writes (put, compare-and-set, delete) through the node's own reply subscription. */
    private readonly writes: KvPublisher,
    private readonly scheduler: Scheduler,
    private readonly node: ReminderNode,
    private readonly capabilities: () => readonly string[],
    private readonly shards: number,
    private readonly scanMs: number,
    /** The most reminder turns under way at once on this node. */
    private readonly maxTurns: number,
    private readonly metrics: NodeMetrics,
    private readonly log: Logger,
  ) {}

  /** Opens (creating when missing) the reminders bucket and starts the periodic scan. */
  static async open(
    nc: NatsConnection,
    bucket: string,
    o: BucketOptions & { scanMs: number; shards: number; maxTurns: number; inboxPrefix?: string },
    scheduler: Scheduler,
    node: ReminderNode,
    capabilities: () => readonly string[],
    metrics: NodeMetrics,
    log: Logger,
  ): Promise<Reminders> {
    const reminders = new Reminders(
      await openBucket(nc, "reminders", bucket, o),
      new KvPublisher(nc, bucket, o.timeoutMs, o.inboxPrefix),
      scheduler,
      node,
      capabilities,
      o.shards,
      o.scanMs,
      o.maxTurns,
      metrics,
      log,
    );
    reminders.#timer = setInterval(() => reminders.scan(), o.scanMs);
    reminders.#timer.unref();
    return reminders;
  }

  /** Every reminder stored in `bucket`, for tools (`mesh reminders list`). Throws STORAGE_UNAVAILABLE when there is no such bucket or the read is cut short (the connection closed). */
  static async read(nc: NatsConnection, bucket: string, timeoutMs: number): Promise<Reminder[]> {
    const all: Reminder[] = [];
    await readAll(await bindBucket(nc, "reminders", bucket, timeoutMs), ">", (e) => all.push(decoder.decode(e.value) as Reminder));
    return all;
  }

  /** How many reminders this node holds in memory (due within the horizon, of shards it owns). */
  get size(): number {
    return this.#scheduled.size;
  }

  /** Stores reminder `name` of an actor (replacing one of that name). Throws BAD_REQUEST for bad options, STORAGE_UNAVAILABLE. */
  async set(capability: string, actorType: string, id: string, name: string, options: RemindOptions): Promise<void> {
    if (typeof name !== "string" || name === "") throw new MeshError("BAD_REQUEST", "a reminder needs a non-empty string name");
    const due = dueOf(options);
    const every = options.everyMs ?? 0;
    if (!(Number.isFinite(every) && every >= 0) || (every > 0 && every < 10))
      throw new MeshError("BAD_REQUEST", `everyMs must be at least 10 ms, got ${String(options.everyMs)}`);
    const shard = shardFor(id, this.shards);
    const key = reminderKey(capability, shard, actorType, id, name);
    const reminder: Reminder = { capability, actorType, id, name, due, runAt: due, every, failures: 0 };
    this.#forgotten.delete(key);
    const revision = await this.writes.publish(
      key,
      encoder.encode(reminder),
      {},
      unavailable(`cannot store reminder "${name}" of ${actorType} ${id}`),
    );
    const p = this.#hold(key, reminder, revision, shard);
    if (p !== undefined && this.#scanning !== undefined) p.heldIn = this.#epoch;
  }

  /** Deletes reminder `name` of an actor; resolves once stored. */
  async forget(capability: string, actorType: string, id: string, name: string): Promise<void> {
    const key = reminderKey(capability, shardFor(id, this.shards), actorType, id, name);
    this.#drop(key);
    // A scan that read the key before the delete landed must not hold it again.
    this.#forgotten.set(key, Infinity);
    try {
      await this.writes.publish(key, NOTHING, { deleted: true }, unavailable(`cannot delete reminder "${name}" of ${actorType} ${id}`));
      if (this.#forgotten.get(key) === Infinity) this.#forgotten.set(key, this.#epoch + 1);
    } catch (err) {
      this.#forgotten.delete(key);
      throw err;
    }
  }

  /**
   * Reads the reminders of this node's capabilities and holds those of its
   * shards due within the horizon; lets go of those it no longer owns. Scans
   * do not overlap: one asked for during a scan runs right after it.
   */
  scan(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#scanning) {
      this.#rescan = true;
      return this.#scanning;
    }
    this.#scanning = this.#scanOnce()
      .catch((err: unknown) => this.log.warn({ err: messageOf(err) }, "mesh: reminder scan failed"))
      .finally(() => {
        this.#scanning = undefined;
        if (this.#rescan) {
          this.#rescan = false;
          void this.scan();
        }
      });
    return this.#scanning;
  }

  /**
   * Stops scanning and firing at once. Resolves once a scan under way has let
   * go of its watch: a caller that then closes the connection leaves nothing
   * of it behind (a watch still being set up cannot be stopped before then).
   */
  stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#watch?.stop();
    for (const p of this.#scheduled.values()) this.scheduler.remove(p);
    this.#scheduled.clear();
    this.#ready.length = 0;
    return this.#scanning ?? Promise.resolve();
  }

  async #scanOnce(): Promise<void> {
    const epoch = ++this.#epoch;
    const horizon = Date.now() + 2 * this.scanMs;
    const seen = new Set<string>();
    for (const capability of this.capabilities()) {
      try {
        if (this.#stopped) return;
        await readAll(
          this.kv,
          `${capability}.>`,
          (e) => {
            const shard = Number(e.key.split(".")[1]);
            if (!this.node.owns(capability, shard) || epoch < (this.#forgotten.get(e.key) ?? 0)) return;
            const reminder = decoder.decode(e.value) as Reminder;
            seen.add(e.key);
            if (reminder.runAt <= horizon) this.#hold(e.key, reminder, e.revision, shard);
            else this.#drop(e.key);
          },
          (w) => {
            if (this.#stopped) return false; // set up after stop(): not read, stopped at once
            this.#watch = w;
            return true;
          },
        );
      } catch (err) {
        if (this.#stopped) return;
        this.log.warn({ capability, err: messageOf(err) }, "mesh: could not read reminders");
        return; // keep what is held: a failed read says nothing of what is stored
      }
    }
    if (this.#stopped) return;
    // Held but no longer ours (the shard moved) or no longer stored: let go. What set() held during this scan stays.
    for (const [key, p] of this.#scheduled)
      if (!p.running && ((!seen.has(key) && p.heldIn < epoch) || !this.node.owns(p.reminder.capability, p.shard))) this.#drop(key);
    for (const [key, first] of this.#forgotten) if (first <= epoch) this.#forgotten.delete(key);
  }

  /** Schedules a reminder read at `revision`, unless it runs, or what is held is newer (set() while a scan read the key). */
  #hold(key: string, reminder: Reminder, revision: number, shard: number): Pending | undefined {
    if (!this.node.owns(reminder.capability, shard)) return undefined;
    let p = this.#scheduled.get(key);
    if (p?.running || (p !== undefined && revision < p.revision)) return p;
    if (p === undefined) this.#scheduled.set(key, (p = new Pending(key, reminder, revision, shard, this)));
    else {
      p.reminder = reminder;
      p.revision = revision;
    }
    this.scheduler.add(p);
    return p;
  }

  #drop(key: string): void {
    const p = this.#scheduled.get(key);
    if (p === undefined) return;
    this.#scheduled.delete(key);
    this.scheduler.remove(p);
  }

  /**
   * A reminder fell due: its turn runs now if fewer than maxTurns run, else
   * once one ends, in due order. A burst is worked through at the rate turns
   * and commits allow, and their activations stay within the live-actor cap
   * (each ends, or is evicted once idle, to make room for the next).
   */
  due(p: Pending): void {
    if (this.#stopped || this.#scheduled.get(p.key) !== p) return;
    p.running = true;
    if (this.#turns >= this.maxTurns) return void this.#ready.push(p);
    this.#turns++;
    void this.#run(p).finally(() => {
      this.#turns--;
      for (let next = this.#ready.shift(); next !== undefined; next = this.#ready.shift()) {
        next.running = false;
        if (this.#scheduled.get(next.key) === next) return this.due(next);
      }
    });
  }

  /** Runs a due reminder's turn, then moves it on (or retries it later). */
  async #run(p: Pending): Promise<void> {
    // A node whose lease lapsed (cut off from the quorum) fires nothing, and counts no failure, until it holds again.
    await this.node.held().catch(() => undefined);
    if (this.#stopped || this.#scheduled.get(p.key) !== p) return;
    if (!this.node.owns(p.reminder.capability, p.shard)) return this.#drop(p.key);
    const { reminder } = p;
    const occurrence = reminder.occurrence ?? p.revision;
    const now = Date.now();
    const late = Math.max(0, now - reminder.due);
    this.metrics.reminderLateness.observe(late);
    try {
      // False: the actor had applied this occurrence (its node died before the reminder moved on); it moves on now.
      if (await this.node.fire(reminder, p.shard, { due: reminder.due, late, failures: reminder.failures }, occurrence))
        this.metrics.remindersFired++;
      if (reminder.every > 0) {
        // The next time after now, skipping the ones a long outage missed: a new occurrence, numbered by its entry's revision.
        const steps = Math.max(1, Math.ceil((Date.now() - reminder.due) / reminder.every));
        const due = reminder.due + steps * reminder.every;
        const { occurrence: _done, ...next } = reminder;
        await this.#store(p, { ...next, due, runAt: due, failures: 0 });
      } else {
        await this.#remove(p);
      }
    } catch (err) {
      this.metrics.remindersFailed++;
      const failures = reminder.failures + 1;
      this.log.warn(
        { actorType: reminder.actorType, id: reminder.id, name: reminder.name, failures, err: messageOf(err) },
        "mesh: a reminder's turn failed; it is retried",
      );
      await this.#store(p, { ...reminder, runAt: Date.now() + backoffMs(failures), failures, occurrence });
    } finally {
      p.running = false;
    }
  }

  /** Moves a reminder on, if nobody changed it meanwhile; keeps it scheduled when it falls within the horizon. */
  async #store(p: Pending, next: Reminder): Promise<void> {
    try {
      p.revision = await this.writes.publish(p.key, encoder.encode(next), { revision: p.revision }, unavailable(`cannot move ${p.key} on`));
      p.reminder = next;
      if (next.runAt <= Date.now() + 2 * this.scanMs) this.scheduler.add(p);
      else this.#drop(p.key);
    } catch (err) {
      // Changed or deleted meanwhile (set again, forgotten, another owner moved it): the next scan reads what is stored.
      this.#drop(p.key);
      this.log.debug({ key: p.key, err: messageOf(err) }, "mesh: a reminder changed meanwhile");
    }
  }

  /**
   * Deletes a one-shot reminder that fired. It stays held (and running) until
   * the delete lands: a scan that reads it meanwhile must not schedule it again
   * (a run beside 10,000 due reminders fired 286 of them twice that way).
   */
  async #remove(p: Pending): Promise<void> {
    try {
      await this.writes.publish(p.key, NOTHING, { revision: p.revision, deleted: true }, unavailable(`cannot delete ${p.key}`));
    } catch (err) {
      this.log.debug({ key: p.key, err: messageOf(err) }, "mesh: a fired reminder changed meanwhile");
    } finally {
      this.#drop(p.key);
    }
  }
}
