// Durable reminders (ctx.remind): stored in JetStream KV pages by shard and
// time slot (reminder-pages.ts), so they outlive the activation, its node and
// every node; fired by whichever node owns the actor's shard when they fall
// due (docs/timers.md, docs/PROTOCOL.md).
//
// Each occurrence has a ticket, and the actor's record names the ticket of
// its reminder's live occurrence: set() and forget() change it with the
// turn's commit, a reminder's turn moves it on with its own. An entry whose
// ticket the record does not name runs nothing: a reminder replaced,
// forgotten, or whose turn committed before its node died runs no second
// turn, and its entry is removed.
//
// A node holds in memory only the reminders of the shards it owns that are
// due within the horizon (twice scanMs): a scan reads the directories of the
// slots from the capability's lowest one to the horizon's, and the pages of
// its own shards they name; it sweeps its settled pages that are empty. It
// scans at start, every scanMs, and when the view changes (then it reads the
// pages of the shards it did not own at its last scan). Reminders wait on the
// node's one scheduler; at most maxTurns run at once, the rest in due order.
import { MeshError, shardFor } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { bindBucket, openBucket } from "@mesh/transport";
import type { BucketOptions } from "@mesh/transport";
import type { KV, NatsConnection } from "nats";
import type { NodeMetrics } from "../operations/metrics.js";
import type { RemindOptions } from "../types.js";
import { FORGOTTEN, TICKET_MIN, backoffMs, dueOf, entryKey, pageKey, slotOf } from "./reminder-entry.js";
import type { Reminder } from "./reminder-entry.js";
import { migrateLegacy, readStored } from "./reminder-legacy.js";
import { ReminderPages } from "./reminder-pages.js";
import { positionOf, scanCapability } from "./reminder-scan.js";
import type { ScanHost } from "./reminder-scan.js";
import type { PageChange, PageReads } from "./reminder-pages.js";
import type { Scheduled, Scheduler } from "./scheduler.js";
import type { ReminderNode, ReminderOutcome, ReminderRecord } from "./reminder-node.js";

export { reminderBucket, reminderTurns } from "./reminder-entry.js";
export type { Reminder } from "./reminder-entry.js";
export { remindersOf } from "./reminder-node.js";
export type { ReminderNode, ReminderOutcome, ReminderRecord } from "./reminder-node.js";

class Pending implements Scheduled {
  index = -1;
  /** Taken off the schedule: its turn runs, or waits for one of the node's reminder turns (Reminders.due). */
  running = false;
  /** The scan under way when set() held it (its read may not have seen the write): that scan does not let it go. */
  heldIn = -1;
  constructor(
    readonly key: string,
    public reminder: Reminder,
    readonly shard: number,
    readonly slot: number,
    readonly id: string,
    /** The page's revision it was read at (or written with): an older read does not replace it. */
    public revision: number,
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
  /** A scan asked for during one: "full", or "moved" (only the pages of shards newly owned). */
  #rescan: "full" | "moved" | undefined;
  #stopped = false;
  /** Scans so far: the number of the one under way, or of the last. */
  #epoch = 0;
  /** (capability.shard) this node owned at its last scan: a scan for a view change does not read their pages again. */
  #owned = new Set<string>();
  /** Capabilities whose reminders in the layout before pages were moved into pages. */
  readonly #migrated = new Set<string>();
  /** What a scan reads through (reminder-scan.ts). */
  readonly #scanHost: ScanHost;
  /** Reminders a scan found overdue (missed while no node owned their shard): scheduled together once it ends, so they run in due order. */
  #overdue: Pending[] = [];
  /** Reminder turns under way, and due reminders waiting for one (in due order). */
  #turns = 0;
  readonly #ready: Pending[] = [];

  private constructor(
    private readonly kv: KV,
    private readonly pages: ReminderPages,
    private readonly scheduler: Scheduler,
    private readonly node: ReminderNode,
    private readonly capabilities: () => readonly string[],
    private readonly shards: number,
    private readonly scanMs: number,
    /** The most reminder turns under way at once on this node. */
    private readonly maxTurns: number,
    private readonly metrics: NodeMetrics,
    private readonly log: Logger,
  ) {
    this.#scanHost = {
      pages,
      shards,
      owns: (capability, shard) => node.owns(capability, shard),
      ownedBefore: (mine) => this.#owned.has(mine),
      hold: (reminder, shard, slot, id, revision) => void this.#hold(reminder, shard, slot, id, revision, true),
      drop: (key) => this.#drop(key),
    };
  }

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
    const kv = await openBucket(nc, "reminders", bucket, o);
    const near = (slot: number) => slot <= slotOf(Date.now() + 2 * o.scanMs);
    const pages = await ReminderPages.open(nc, bucket, { ...o, keep: near });
    const reminders = new Reminders(kv, pages, scheduler, node, capabilities, o.shards, o.scanMs, o.maxTurns, metrics, log);
    reminders.#timer = setInterval(() => reminders.scan(), o.scanMs);
    reminders.#timer.unref();
    return reminders;
  }

  /** Every reminder stored in `bucket`, for tools (`mesh reminders list`). Throws STORAGE_UNAVAILABLE when there is no such bucket or the read is cut short (the connection closed). */
  static async read(nc: NatsConnection, bucket: string, timeoutMs: number): Promise<Reminder[]> {
    return readStored(await bindBucket(nc, "reminders", bucket, timeoutMs));
  }

  /** How many reminders this node holds in memory (due within the horizon, of shards it owns). */
  get size(): number {
    return this.#scheduled.size;
  }

  /** The reminders this node holds (the admin API's `reminders` picks those due soon). */
  *held(): Generator<Reminder> {
    for (const p of this.#scheduled.values()) yield p.reminder;
  }

  /** What this node's last completed scan read. */
  lastScan: PageReads = { dirs: 0, pages: 0, entries: 0 };

  /**
   * Stores reminder `name` of an actor (replacing one of that name) and names its ticket in the actor's record; the
   * entry it replaces is removed once that commit landed. Rejects with BAD_REQUEST for bad options,
   * STORAGE_UNAVAILABLE; a rejection nobody awaits (a handler without `await`) does not end the process.
   */
  set(o: Parameters<Reminders["store"]>[0]): Promise<void> {
    const stored = this.store(o);
    stored.catch(() => {});
    return stored;
  }

  async store(o: {
    capability: string;
    actorType: string;
    id: string;
    name: string;
    options: RemindOptions;
    record: ReminderRecord;
  }): Promise<void> {
    const { capability, actorType, id, name, options, record } = o;
    if (typeof name !== "string" || name === "") throw new MeshError("BAD_REQUEST", "a reminder needs a non-empty string name");
    const due = Math.round(dueOf(options));
    const every = options.everyMs ?? 0;
    if (!(Number.isFinite(every) && every >= 0) || (every > 0 && every < 10))
      throw new MeshError("BAD_REQUEST", `everyMs must be at least 10 ms, got ${String(options.everyMs)}`);
    const shard = shardFor(id, this.shards);
    // Its ticket: its time, or now if that is later; never one whose removal waits for a commit (that would remove this one).
    const removing = record.removing(name);
    let ticket = Math.max(due, Date.now());
    while (removing.has(ticket)) ticket++;
    const entry: Reminder = { capability, actorType, id, name, due, runAt: due, every: Math.round(every), failures: 0, ticket };
    const key = entryKey(actorType, id, name, ticket);
    const slot = slotOf(ticket);
    const revision = await this.pages
      .change(capability, shard, slot, key, { kind: "put", entry })
      .catch((err: unknown) => Promise.reject(stored(err, `cannot store reminder "${name}" of ${actorType} ${id}`)));
    if (!record.inTurn()) {
      // Its turn ended while it was stored (a remind not awaited): no commit would name it, and it would never run.
      void this.#change(capability, shard, slot, key, { kind: "remove", ticket });
      const late = `reminder "${name}" of ${actorType} ${id} was set after its turn had ended: await ctx.remind in the handler`;
      this.log.warn({ err: late }, "mesh: a reminder was not set"); // its promise may be awaited by nobody
      throw new MeshError("BAD_REQUEST", late);
    }
    this.#hold(entry, shard, slot, key, revision);
    // The occurrence it replaces stays, and runs nothing once the record names this one; it goes once that commit landed.
    const previous = record.ticket(name);
    const replaced = previous !== undefined && previous >= TICKET_MIN && previous !== ticket;
    record.note(name, ticket, replaced ? this.#removal(o, shard, previous) : undefined);
  }

  /** Forgets reminder `name` of an actor with the turn's commit (its entry is removed once that commit landed). */
  forget(o: { capability: string; actorType: string; id: string; name: string; record: ReminderRecord }): void {
    const { name, record } = o;
    const previous = record.ticket(name);
    if (previous === undefined || previous < TICKET_MIN) return record.note(name, FORGOTTEN); // stops one stored before tickets
    record.note(name, 0, this.#removal(o, shardFor(o.id, this.shards), previous));
  }

  /** What lets go of occurrence `ticket` once the record no longer names it (here and in its page); until then, no new occurrence takes its ticket. */
  #removal(
    o: { capability: string; actorType: string; id: string; name: string; record: ReminderRecord },
    shard: number,
    ticket: number,
  ): () => void {
    const { capability, actorType, id, name, record } = o;
    const removing = record.removing(name);
    removing.add(ticket);
    return () => {
      removing.delete(ticket);
      const key = entryKey(actorType, id, name, ticket);
      this.#drop(positionOf(capability, shard, slotOf(ticket), key));
      void this.#change(capability, shard, slotOf(ticket), key, { kind: "remove", ticket });
    };
  }

  /**
   * Reads the reminders of this node's shards due within the horizon and holds
   * them; lets go of those it no longer owns or that are no longer stored.
   * `moved`: after a view change, only the pages of shards it did not own at
   * its last scan are read. Scans do not overlap: one asked for during a scan
   * runs right after it.
   */
  scan(moved = false): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#scanning) {
      this.#rescan = this.#rescan === "full" || !moved ? "full" : "moved";
      return this.#scanning;
    }
    this.#scanning = this.#scanOnce(moved)
      .catch((err: unknown) => this.log.warn({ err: messageOf(err) }, "mesh: reminder scan failed"))
      .finally(() => {
        this.#scanning = undefined;
        for (const p of this.#overdue.splice(0)) if (this.#scheduled.get(p.key) === p && !p.running) this.scheduler.add(p);
        const again = this.#rescan;
        this.#rescan = undefined;
        if (again !== undefined) void this.scan(again === "moved");
      });
    return this.#scanning;
  }

  /** Stops scanning and firing at once; resolves once a scan under way has ended. */
  stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const p of this.#scheduled.values()) this.scheduler.remove(p);
    this.#scheduled.clear();
    this.#ready.length = 0;
    return this.#scanning ?? Promise.resolve();
  }

  async #scanOnce(moved: boolean): Promise<void> {
    const epoch = ++this.#epoch;
    const before = { ...this.pages.reads };
    const now = Date.now();
    const horizon = now + 2 * this.scanMs;
    /** Pages read in full: what they did not hold is let go. */
    const read = new Set<string>();
    const seen = new Set<string>();
    const owned = new Set<string>();
    for (const capability of this.capabilities()) {
      if (this.#stopped) return;
      try {
        if (!this.#migrated.has(capability)) {
          await migrateLegacy(this.kv, capability, this.shards, this.pages, this.log);
          this.#migrated.add(capability);
        }
        await scanCapability(this.#scanHost, capability, { now, horizon, moved, read, seen, owned });
      } catch (err) {
        if (this.#stopped) return;
        this.log.warn({ capability, err: messageOf(err) }, "mesh: could not read reminders");
        return; // keep what is held: a failed read says nothing of what is stored
      }
    }
    if (this.#stopped) return;
    this.#owned = owned;
    const { dirs, pages, entries } = this.pages.reads;
    this.lastScan = { dirs: dirs - before.dirs, pages: pages - before.pages, entries: entries - before.entries };
    this.pages.trim();
    // Held but no longer ours (the shard moved), or its page was read without it: let go. What set() held during this scan stays.
    for (const [key, p] of this.#scheduled)
      if (
        !p.running &&
        ((read.has(pageKey(p.reminder.capability, p.shard, p.slot)) && !seen.has(key) && p.heldIn < epoch) ||
          !this.node.owns(p.reminder.capability, p.shard))
      )
        this.#drop(key);
  }

  /** Schedules a reminder read from (or written to) its page at `revision`, unless it runs, or what is held is newer. */
  #hold(reminder: Reminder, shard: number, slot: number, id: string, revision: number, scanned = false): Pending | undefined {
    if (!this.node.owns(reminder.capability, shard)) return undefined;
    const key = positionOf(reminder.capability, shard, slot, id);
    let p = this.#scheduled.get(key);
    if (p?.running || (p !== undefined && revision < p.revision)) return p;
    if (p === undefined) this.#scheduled.set(key, (p = new Pending(key, reminder, shard, slot, id, revision, this)));
    else {
      p.reminder = reminder;
      p.revision = revision;
    }
    if (scanned && reminder.runAt <= Date.now()) this.#overdue.push(p);
    else this.scheduler.add(p);
    // Held while a scan reads (set, moved on): that scan may have read its page before the write, and does not let it go.
    if (!scanned && this.#scanning !== undefined) p.heldIn = this.#epoch;
    return p;
  }

  #drop(key: string): void {
    const p = this.#scheduled.get(key);
    if (p === undefined) return;
    this.#scheduled.delete(key);
    this.scheduler.remove(p);
  }

  /** A page change whose failure is only logged: the entry it leaves runs nothing (its ticket is not the record's) and goes when it falls due. */
  #change(capability: string, shard: number, slot: number, id: string, change: PageChange): Promise<number | undefined> {
    return this.pages.change(capability, shard, slot, id, change).catch((err: unknown) => {
      this.log.debug({ page: pageKey(capability, shard, slot), id, err: messageOf(err) }, "mesh: a reminders page was not changed");
      return undefined;
    });
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
    const r = p.reminder;
    const now = Date.now();
    const late = Math.max(0, now - r.due);
    this.metrics.reminderLateness.observe(late);
    // The next occurrence of a repeating one: the first due time after now (skipping those a long outage missed); its ticket is its time.
    const next = r.every > 0 ? r.due + Math.max(1, Math.ceil((now - r.due) / r.every)) * r.every : 0;
    let outcome: ReminderOutcome;
    try {
      outcome = await this.node.fire(r, p.shard, { due: r.due, late, failures: r.failures }, { ticket: r.ticket, next });
    } catch (err) {
      return this.#retry(p, err);
    }
    if (outcome.ran) this.metrics.remindersFired++;
    // p stays held (running) until its page changed: a scan reading the page meanwhile does not hold it again.
    // The record names an occurrence of this reminder after this one (this turn's, or one whose node died before storing it): store it, then remove this one.
    const then = outcome.ticket;
    if (r.every > 0 && then > r.due && then !== r.ticket && (then - r.due) % r.every === 0) {
      const following: Reminder = { ...r, due: then, runAt: then, failures: 0, ticket: then };
      await this.#move(p, following, slotOf(Math.max(then, Date.now())), "add");
    } else {
      await this.#change(r.capability, p.shard, p.slot, p.id, { kind: "remove", ticket: r.ticket });
      this.#drop(p.key);
    }
  }

  /** A turn failed (the actor could not be activated, the turn threw or took longer than callTimeoutMs): tried again after a backoff. */
  async #retry(p: Pending, err: unknown): Promise<void> {
    const r = p.reminder;
    this.metrics.remindersFailed++;
    const failures = r.failures + 1;
    this.log.warn(
      { actorType: r.actorType, id: r.id, name: r.name, failures, err: messageOf(err) },
      "mesh: a reminder's turn failed; it is retried",
    );
    const runAt = Date.now() + backoffMs(failures);
    await this.#move(p, { ...r, runAt, failures }, slotOf(runAt), "put");
  }

  /**
   * Stores `to` (of p's id) in the page of `slot`, then removes p's entry from
   * its page; only then lets p go, and holds `to` when it is near (a scan that
   * read p's page meanwhile found p held and running: it did not hold it
   * again, to run a second try beside this one). Into p's own place it is one
   * put. A move that cannot be stored is still held here.
   */
  async #move(p: Pending, to: Reminder, slot: number, kind: "add" | "put"): Promise<void> {
    const { capability } = to;
    const key = entryKey(to.actorType, to.id, to.name, to.ticket);
    let revision: number | undefined;
    if (slot === p.slot && key === p.id) revision = await this.#change(capability, p.shard, slot, key, { kind: "put", entry: to });
    else {
      revision = await this.#change(capability, p.shard, slot, key, { kind, entry: to });
      if (revision !== undefined) await this.#change(capability, p.shard, p.slot, p.id, { kind: "remove", ticket: p.reminder.ticket });
    }
    this.#drop(p.key);
    if (!this.#stopped && to.runAt <= Date.now() + 2 * this.scanMs) this.#hold(to, p.shard, slot, key, revision ?? p.revision);
  }
}

/** A failed write, as the reminder's caller sees it. */
function stored(err: unknown, what: string): MeshError {
  if (err instanceof MeshError && err.code !== "STORAGE_UNAVAILABLE") return err;
  return new MeshError("STORAGE_UNAVAILABLE", `${what}: ${messageOf(err)}`, { cause: err });
}
