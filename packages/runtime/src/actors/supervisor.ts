// The lifecycle of a node's activations: which activation a letter goes to (activating it on first use: construct,
// load a durable state, onActivate, with the activation "starting" meanwhile). How activations end is endings.ts (one
// way per reason); running the turns themselves is turns.ts. Imports: the actors room, state and timers, the bottom floor.
import { MeshError, type Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { NodeMetrics } from "../operations/metrics.js";
import { Scheduler } from "../timers/scheduler.js";
import { Timers, type ActorTimer } from "../timers/timers.js";
import { remindersOf, type Reminder, type ReminderOutcome, type Reminders } from "../timers/reminders.js";
import type { StateStorage } from "../state/state-store.js";
import { outgoing } from "../events/event.js";
import type { Publisher } from "../events/outbox.js";
import type { ActorClass, CallResult, MeshRequest, ReminderInfo } from "../types.js";
import type { GroupCommit } from "../state/group-commit.js";
import type { Lease } from "./lease.js";
import { Passivation } from "./passivation.js";
import { Turns } from "./turns.js";
import { Activation, isThenable, type ContextHost, type MailboxLoad } from "./activation.js";
import { Endings } from "./endings.js";
import { Letter, chainKey, incomingAcross, type Address } from "./letter.js";
import { ActorTable } from "./actor-table.js";
import { ActorViews } from "./actor-view.js";
import { activationFailed, wrongCapability } from "./actor.js";
import { startDurable, type DurableParts } from "./durable-load.js";
import { reminderOf } from "./handlers.js";
import { Migrations, NOT_MOVED } from "./migration.js";

/** How often `released` looks again. */
const RELEASE_POLL_MS = 10;

/** How a node's actors are hosted. */
export interface SupervisorOptions {
  readonly nodeId: string;
  /** The cluster's shard count: an activation's shard is its id's (shardFor). */
  readonly shards: number;
  readonly actors: readonly ActorClass[];
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  /** Sends the waiting letters of an actor that left on to its owner now. */
  readonly handover: (act: Activation, letters: Letter[]) => void;
  /** How long an onDeactivate may take. */
  readonly deactivateTimeoutMs: number;
  /** Where durable actors' state lives; required when a class is durable. */
  readonly store: StateStorage | undefined;
  /** The node's idleTimeoutMs option, for classes that set none. */
  readonly idleTimeoutMs: number | undefined;
  /** The most live actors this node holds (Infinity: no cap). */
  readonly maxActors: number;
  /** The node's reminders, once open (only with durable classes). */
  readonly reminders: () => Reminders | undefined;
  /** What may wait in mailboxes: OVERLOADED past it. */
  readonly limits: { maxMailbox: number; maxTurnMs: number; maxQueuedLetters: number; maxQueuedBytes: number };
  /** The node's ownership lease: turns start only while it holds (lease.ts). */
  readonly lease: Lease;
  /** Publishes what turns published (ctx.publish). */
  readonly publisher: Publisher;
  /** The largest message a turn may publish. */
  readonly maxPayload: number;
  /**
   * Undefined when an actor of (`capability`, `shard`) may start now; else
   * resolves once it may (the shard's handover, node/shard-claims.ts).
   */
  readonly claimed: (capability: string, shard: number) => Promise<void> | undefined;
  /** A durable activation met state that newer code stored: true when the node gave its shard up to such a node (node/standby.ts). */
  readonly yieldShard: (capability: string, shard: number) => boolean;
  /** Where handlers' own calls and casts go (ctx.call, ctx.cast): routed by the node like any other, with a call chain. */
  readonly outbound: {
    call<R>(request: MeshRequest, chain: readonly string[]): Promise<CallResult<R>>;
    cast(request: MeshRequest): Promise<void>;
    /** Sends what moves of an activation to the actor's owner now (live migration); false when that is this node or none. */
    migrate(to: Address, moved: unknown[]): boolean;
  };
}

/**
 * The actors of one node: activates them on first use, runs each one's
 * mailbox (one message at a time), and supervises them: a throwing handler
 * drops the activation, and the next message starts a fresh one.
 */
export class Supervisor {
  readonly nodeId: string;
  /** What waits in this node's mailboxes. */
  readonly load: MailboxLoad = { letters: 0, bytes: 0 };
  readonly #table: ActorTable;
  /** What the admin API shows of the actors (actor-view.ts). */
  readonly views: ActorViews;
  readonly #passivation: Passivation;
  readonly #turns: Turns;
  readonly #endings: Endings;
  readonly #migrations: Migrations;
  /** What loading durable actors works with (none without a store). */
  readonly #durable: DurableParts | undefined;
  /** The node's one clock for timers (and reminders). */
  readonly scheduler = new Scheduler();
  readonly #timers = new Timers<Activation>(this.scheduler, (act, timer) => this.#timer(act, timer));
  /** What handlers reach through their ctx: one object for every activation of the node. */
  readonly #host: ContextHost = {
    nodeId: "", // the constructor's
    shards: 0, // the constructor's
    load: this.load,
    setTimer: (act, name, ms, options) => this.#timers.set(act, name, ms, options),
    clearTimer: (act, name) => this.#timers.clear(act, name),
    call: (act, request) => this.o.outbound.call(request, [...(act.chain ?? []), chainKey(act)]),
    cast: (_act, request) => this.o.outbound.cast(request), // casts never wait, so they carry no chain
    remind: (act, name, options) => remindersOf(act, this.o.reminders(), "handleReminder").set({ ...reminderOf(act, name), options }),
    forget: async (act, name) => remindersOf(act, this.o.reminders()).forget(reminderOf(act, name)),
    outgoing: (subject, data, headers) => outgoing(subject, data, headers, this.o.maxPayload),
    busyNote: (act) => this.#turns.deadlines.busyNote(act),
  };
  #incarnation = 0;
  #idle: (() => void) | undefined;
  readonly #log: Logger;
  readonly #metrics: NodeMetrics;

  constructor(private readonly o: SupervisorOptions) {
    this.nodeId = this.#host.nodeId = o.nodeId;
    this.#host.shards = o.shards;
    this.#log = o.log;
    this.#metrics = o.metrics;
    this.#table = new ActorTable(o.actors, o.idleTimeoutMs, this.#host);
    this.views = new ActorViews(this.#table, (act) => this.#turns.deadlines.turnOf(act));
    if (o.store === undefined && this.#table.types.some((t) => t.durable))
      throw new MeshError("INTERNAL", "durable actor types need a state store");
    this.#passivation = new Passivation(
      this.#table.slots,
      this.#table.types.map((t) => t.idleTimeoutMs),
      o.maxActors,
      (act, reason) => this.#endings.leave(act, reason),
    );
    const passivation = this.#passivation;
    this.#turns = new Turns(
      {
        get tick() {
          return passivation.tick;
        },
        crashed: (act) => this.#endings.crashed(act),
        gone: (act) => this.#endings.gone(act),
        cleared: (act) => this.#endings.leave(act, "cleared"),
        checkIdle: () => this.#checkIdle(),
        publish: (out) => o.publisher.publish(o.publisher.name(out)),
      },
      o.metrics,
      o.log,
      o.lease,
      { ...o.limits, load: this.load },
    );
    const crashed = (act: Activation) => this.#endings.crashed(act);
    const committed = (commits: GroupCommit) => this.#turns.committed(commits);
    const moved = (act: Activation) => this.#migrations.stored(act);
    const movedTimers = (act: Activation) => this.#migrations.resumeTimers(act);
    this.#durable = o.store && { ...o, store: o.store, crashed, committed, moved, movedTimers }; // the store, publisher, metrics, log, yieldShard
    this.#migrations = new Migrations(this.#timers, o.metrics, o.log, (act, moved) => o.lease.holdsNow() && o.outbound.migrate(act, moved));
    this.#endings = new Endings({
      table: this.#table,
      timers: this.#timers,
      turns: this.#turns,
      log: o.log,
      metrics: o.metrics,
      deactivateTimeoutMs: o.deactivateTimeoutMs,
      handover: o.handover,
      fresh: (act, letter) => this.#fresh(act, letter),
      migrated: (act, when) => this.#migrations.moved(act, when),
      checkIdle: () => this.#checkIdle(),
    });
  }

  /**
   * Runs a due reminder's turn: activates the actor if needed and queues handleReminder(name, info), if the actor's
   * record names `occurrence.ticket` (then it names `occurrence.next`); resolves once the turn (and its commit) is done,
   * to whether it ran and the ticket the record names after it; rejects when it failed or took longer than `timeoutMs`.
   */
  reminderTurn(
    r: Reminder,
    shard: number,
    info: ReminderInfo,
    occurrence: { ticket: number; next: number },
    timeoutMs: number,
  ): Promise<ReminderOutcome> {
    return new Promise((resolve, reject) => {
      const reply = {
        succeed: (_pid: string, outcome: unknown) => resolve(outcome as ReminderOutcome),
        fail: reject,
        bytes: () => reject(new MeshError("INTERNAL", "a reminder's turn answered with bytes")),
      };
      const to = { capability: r.capability, actorType: r.actorType, id: r.id, shard };
      this.deliver(to, Letter.reminder({ turn: { name: r.name, info, ...occurrence }, timeoutMs, reply, metrics: this.#metrics }));
    });
  }

  /** Another node may have served this node's actors (lease.ts): all go, without onDeactivate, and so do records parked here. */
  dropAll(): number {
    this.#migrations.unpark(() => false);
    return this.#endings.rebalance(() => false, "replaced");
  }

  /** Resolves once no activation of a shard `of` names is live or ending here, or after `timeoutMs`, to the shards still held (claims). */
  async released(of: (capability: string, shard: number) => boolean, timeoutMs: number): Promise<Array<readonly [string, number]>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const held = new Map<string, readonly [string, number]>();
      for (const acts of [this.#table.all(), this.#endings.ending.values()]) {
        for (const act of acts) if (of(act.capability, act.shard)) held.set(`${act.capability}/${act.shard}`, [act.capability, act.shard]);
      }
      if (held.size === 0 || performance.now() >= deadline) return [...held.values()];
      await new Promise((resolve) => setTimeout(resolve, RELEASE_POLL_MS));
    }
  }

  /** The lease holds again: turns that waited for it run. */
  resume(): void {
    this.#turns.resume();
  }

  /** The actor types this node hosts, sorted. */
  actorTypes(): string[] {
    return this.#table.names();
  }

  /** True when this node hosts `actorType`. */
  hosts(actorType: string): boolean {
    return this.#table.type(actorType) !== undefined;
  }

  /** What waits in this node's mailboxes now, and the deepest one (a walk over the live actors). */
  queues(): { queuedLetters: number; queuedBytes: number; deepestMailbox: number } {
    return { queuedLetters: this.load.letters, queuedBytes: this.load.bytes, deepestMailbox: this.#table.deepestMailbox() };
  }

  /** How many activations are live. */
  get size(): number {
    return this.#table.size;
  }

  /** A payload or initArg from a caller in this process, as the actor gets it (see incomingAcross). Throws BAD_REQUEST. */
  incoming(actorType: string, value: unknown, what: "payload" | "initArg"): unknown {
    return incomingAcross(this.#table.type(actorType)?.shares === true, value, what);
  }

  /**
   * Calls the actor at `to` for a caller here, activating it if needed; each side gets its own copy of the values. Rejects
   * with BAD_REQUEST, UNKNOWN_ACTOR_TYPE, ACTIVATION_FAILED, ACTOR_CRASHED, BAD_REPLY, OVERLOADED or TIMEOUT.
   */
  call(to: Address, payload: unknown, initArg: unknown, timeoutMs: number, chain?: readonly string[]): Promise<CallResult> {
    // The slot's type, when reachable (the table's last slot: no lookup), says whether the class shares values.
    const shares = (this.#table.slotOf(to.actorType, to.capability)?.type ?? this.#table.type(to.actorType))?.shares === true;
    try {
      payload = incomingAcross(shares, payload, "payload");
      initArg = incomingAcross(shares, initArg, "initArg");
    } catch (err) {
      return Promise.reject(err);
    }
    const act = this.#activation(to, initArg);
    if (act instanceof MeshError) return Promise.reject(act);
    return this.#turns.call(act, payload, initArg, timeoutMs, chain);
  }

  /**
   * Delivers a letter of any kind to the actor at `to`, activating it first if needed. When the actor cannot
   * be started (UNKNOWN_ACTOR_TYPE, WRONG_CAPABILITY, ACTIVATION_FAILED) or the letter would wait past a limit
   * (OVERLOADED), the letter's caller gets the error, and it is returned (for a cast, the only report).
   */
  deliver(to: Address, letter: Letter): MeshError | undefined {
    const act = this.#activation(to, letter.initArg);
    if (act instanceof MeshError) {
      if (letter.kind.caller) letter.fail(act);
      return act;
    }
    return this.#turns.deliver(act, letter);
  }

  /**
   * Delivers a cast (`bytes`: its size on the wire, 0 from this process). Throws UNKNOWN_ACTOR_TYPE or
   * ACTIVATION_FAILED when the actor cannot be started, OVERLOADED when it would wait past a limit.
   */
  cast(to: Address, payload: unknown, initArg: unknown, bytes = 0): void {
    const refused = this.deliver(to, Letter.cast({ payload, initArg, bytes }));
    if (refused !== undefined) throw refused;
  }

  /** What an activation's old owner handed over for the actor at `to` (live migration): it starts from it here. */
  adopt(to: Address, moved: unknown): void {
    const live = this.#table.get(to.capability, to.actorType, to.id);
    const handover = live === undefined && this.o.claimed(to.capability, to.shard) !== undefined; // it would wait for it
    if (!this.#migrations.accepts({ live, handover, cls: this.#table.type(to.actorType)?.cls }, moved)) return;
    if (live === undefined && this.#migrations.parks(to, moved)) return; // a durable record waits for the actor's next message
    const act = live ?? this.#activation(to, undefined);
    if (!(act instanceof MeshError)) this.#migrations.arrived(act, moved);
  }

  /** A timer of `act` fired: its turn goes into the mailbox, unless the activation is gone. */
  #timer(act: Activation, timer: ActorTimer<Activation>): void {
    if (!act.gone) this.#turns.post(act, Letter.timer(timer));
  }

  /** A letter of a crashed activation, into the mailbox of a fresh one. */
  #fresh(act: Activation, letter: Letter): void {
    const refused = this.deliver(act, letter);
    if (refused !== undefined && !letter.kind.caller)
      this.#log.warn({ actorType: act.actorType, id: act.id, err: messageOf(refused) }, `mesh: ${letter.kind.name} lost`);
  }

  /**
   * The view changed: every activation whose shard `owns` says this node lost leaves after its current message
   * (for `reason`: "shutdown" when the node stops and hands its shards over).
   */
  rebalance(owns: (capability: string, shard: number) => boolean, reason: "rebalance" | "shutdown" = "rebalance"): number {
    this.#migrations.unpark(owns); // records parked for shards no longer owned here
    return this.#endings.rebalance(owns, reason);
  }

  /**
   * An operator ends the live activation of (`capability`, `actorType`, `id`), if any (true when one was): "forget"
   * (its state was deleted) before its next turn ("cleared"); "reset" also abandons its turn, leaving or not.
   */
  end(capability: string, actorType: string, id: string, how: "forget" | "reset"): boolean {
    if (how === "forget") this.#migrations.forget(capability, actorType, id); // a record handed over before the delete
    const same = (a: Activation) => a.capability === capability && a.actorType === actorType && a.id === id;
    const act = this.#table.get(capability, actorType, id) ?? (how === "reset" ? [...this.#endings.ending].find(same) : undefined);
    if (act !== undefined && !(how === "reset" && this.#turns.deadlines.reset(act)) && !act.leaving) this.#endings.leave(act, "cleared");
    return act !== undefined;
  }

  /** Resolves once no handler runs, no mailbox holds a letter and no commit is pending, or after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<void> {
    if (this.#busyCount() === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#idle = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.#idle = undefined;
  }

  /** Ends every activation: runs its onDeactivate (each bounded by `timeoutMs`), then forgets it. */
  async deactivateAll(timeoutMs: number): Promise<void> {
    this.#passivation.stop();
    this.scheduler.stop();
    await this.#endings.shutdown(timeoutMs);
    this.#turns.deadlines.stop();
  }

  /**
   * The live activation of the actor at `to`, activating it if there is none.
   * A type bound to other capabilities is WRONG_CAPABILITY, before anything
   * is looked up or activated.
   */
  #activation(to: Address, initArg: unknown): Activation | MeshError {
    const { capability, actorType, id } = to;
    const slot = this.#table.slotOf(actorType, capability);
    if (slot === undefined) return this.#unreachable(actorType, capability);
    const live = slot.activations.get(id, to.hash);
    if (live !== undefined) return live;
    const type = slot.type;

    this.#passivation.makeRoom(this.#table.size);
    const incarnation = ++this.#incarnation;
    let act: Activation;
    try {
      act = new Activation(new type.cls(id, initArg), slot, id, incarnation);
    } catch (err) {
      return activationFailed(`${this.nodeId}/${actorType}/${id}#${incarnation}`, err, false, this.#metrics, this.#log);
    }
    act.lastTick = this.#passivation.tick;
    const claim = this.o.claimed(capability, to.shard);
    const starts = type.durable || typeof act.instance.onActivate === "function";
    if (claim !== undefined || (starts && !this.o.lease.holdsNow())) {
      // Nothing of it runs, and nothing of it is read or written, until its shard is handed over (a claim) and while the lease
      // does not hold. If it left meanwhile (the shard moved on, or the lease was replaced), it never started: no onDeactivate,
      // and what waits goes to the owner (as for a replaced activation).
      const started = () => {
        if (act.leaving || act.gone) return void (act.reason = "replaced");
        if (type.durable) return startDurable(act, this.#durable!); // its state, then onActivate
        const resumed = this.#migrations.resume(act); // what its old owner handed over, if anything did
        return resumed === NOT_MOVED ? act.instance.onActivate?.() : resumed;
      };
      this.#migrations.waits(act);
      this.#starting(act, (claim ?? Promise.resolve()).then(() => this.o.lease.held()).then(started));
    } else if (type.durable) {
      this.#starting(act, startDurable(act, this.#durable!));
    } else if (typeof act.instance.onActivate === "function") {
      let out: unknown;
      try {
        out = act.instance.onActivate();
      } catch (err) {
        return activationFailed(act.pid, err, false, this.#metrics, this.#log);
      }
      // Promise.resolve: a thenable whose then() throws becomes a rejection, not an exception here.
      if (isThenable(out)) this.#starting(act, Promise.resolve(out));
    }
    this.#table.add(slot, act, to.hash);
    this.#metrics.activations++;
    return act;
  }

  /** UNKNOWN_ACTOR_TYPE or WRONG_CAPABILITY, counted: why a letter for (`actorType`, `capability`) has no slot here. */
  #unreachable(actorType: string, capability: string): MeshError {
    const type = this.#table.type(actorType);
    this.#metrics.error(type === undefined ? "UNKNOWN_ACTOR_TYPE" : "WRONG_CAPABILITY");
    if (type !== undefined) return wrongCapability(actorType, capability, type.capabilities!);
    const hosted = this.actorTypes().join(", ") || "none";
    return new MeshError("UNKNOWN_ACTOR_TYPE", `node ${this.nodeId} does not host actor type "${actorType}" (it hosts: ${hosted})`);
  }

  /** The activation starts while `starting` runs; letters that arrive meanwhile wait. If it fails, they fail too. */
  #starting(act: Activation, starting: Promise<unknown>): void {
    this.#turns.start(act, starting, (err) => this.#endings.failed(act, err));
  }

  #busyCount(): number {
    let n = this.#turns.busy;
    for (const act of this.#table.all()) if (act.waiting > 0) n++;
    return n;
  }

  #checkIdle(): void {
    if (this.#idle !== undefined && this.#busyCount() === 0) this.#idle();
  }
}
