// The lifecycle of a node's activations: which activation a message goes to
// (activating it on first use: construct, load a durable state, onActivate),
// and how activations end: passivation, eviction, rebalancing, an operator's
// forget, a crash, the node's stop. Running the turns themselves is turns.ts.
// Imports: the actors room, state and timers, and the bottom floor.
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import type { NodeMetrics } from "../operations/metrics.js";
import { loadState } from "../state/group-commit.js";
import { Scheduler } from "../timers/scheduler.js";
import { Timers } from "../timers/timers.js";
import { remindersOf } from "../timers/reminders.js";
import type { Reminder, Reminders } from "../timers/reminders.js";
import type { StateStore } from "../state/state-store.js";
import { outgoing } from "../events/event.js";
import type { Publisher } from "../events/outbox.js";
import type { ActorClass, CallResult, DeactivateReason, MeshRequest, ReminderInfo, ReplyTo } from "../types.js";
import type { Lease } from "./lease.js";
import type { ContextHost, MailboxLoad } from "./activation.js";
import { Passivation } from "./passivation.js";
import { Turns, chainKey } from "./turns.js";
import { Activation, Letter, NO_REPLY, incomingAcross, isThenable } from "./activation.js";
import { ActorTable } from "./actor-table.js";
import { activationFailed, wrongCapability } from "./actor.js";
import { commitSpan } from "./commit-spans.js";

/** How a node's actors are hosted. */
export interface SupervisorOptions {
  readonly nodeId: string;
  readonly actors: readonly ActorClass[];
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  /** Sends the waiting letters of an actor that left on to its owner now. */
  readonly handover: (act: Activation, letters: Letter[]) => void;
  /** How long an onDeactivate may take. */
  readonly deactivateTimeoutMs: number;
  /** Where durable actors' state lives; required when a class is durable. */
  readonly store: StateStore | undefined;
  /** The node's idleTimeoutMs option, for classes that set none. */
  readonly idleTimeoutMs: number | undefined;
  /** The most live actors this node holds (Infinity: no cap). */
  readonly maxActors: number;
  /** The node's reminders, once open (only with durable classes). */
  readonly reminders: () => Reminders | undefined;
  /** What may wait in mailboxes: OVERLOADED past it. */
  readonly limits: { maxMailbox: number; maxQueuedLetters: number; maxQueuedBytes: number };
  /** The node's ownership lease: turns start only while it holds (lease.ts). */
  readonly lease: Lease;
  /** Publishes what turns published (ctx.publish). */
  readonly publisher: Publisher;
  /** The largest message a turn may publish. */
  readonly maxPayload: number;
  /** Where handlers' own calls and casts go (ctx.call, ctx.cast): routed by the node like any other, with a call chain. */
  readonly outbound: {
    call<R>(request: MeshRequest, chain: readonly string[]): Promise<CallResult<R>>;
    cast(request: MeshRequest): Promise<void>;
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
  readonly #passivation: Passivation;
  readonly #turns: Turns;
  /** The node's one clock for timers (and reminders). */
  readonly scheduler = new Scheduler();
  readonly #timers = new Timers<Activation>(this.scheduler, (act, name) => this.#system(act, name));
  /** What handlers reach through their ctx: one object for every activation of the node. */
  readonly #host: ContextHost = {
    nodeId: "", // the constructor's
    load: this.load,
    setTimer: (act, name, ms, options) => this.#timers.set(act, name, ms, options),
    clearTimer: (act, name) => this.#timers.clear(act, name),
    call: (act, request) => this.o.outbound.call(request, [...(act.chain ?? []), chainKey(act)]),
    cast: (_act, request) => this.o.outbound.cast(request), // casts never wait, so they carry no chain
    remind: (act, name, options) => remindersOf(act, this.o.reminders(), "handleReminder").set(act.capability, act.actorType, act.id, name, options),
    forget: (act, name) => remindersOf(act, this.o.reminders()).forget(act.capability, act.actorType, act.id, name),
    outgoing: (subject, data, headers) => outgoing(subject, data, headers, this.o.maxPayload),
  };

  /**
   * Runs a due reminder's turn: activates the actor if needed and queues handleReminder(name, info); resolves
   * once the turn (and a durable actor's commit) is done, rejects when it failed or took longer than `timeoutMs`.
   */
  reminderTurn(r: Reminder, shard: number, info: ReminderInfo, timeoutMs: number): Promise<void> {
    const act = this.#activation(r.capability, r.actorType, r.id, shard, undefined);
    if (act instanceof MeshError) return Promise.reject(act);
    return this.#turns.reminder(act, r.name, info, timeoutMs);
  }

  #incarnation = 0;
  #idle: (() => void) | undefined;
  readonly #log: Logger;
  readonly #metrics: NodeMetrics;
  /** Activations dropped by dropAll: they leave without onDeactivate. */
  readonly #replaced = new WeakSet<Activation>();

  constructor(private readonly o: SupervisorOptions) {
    this.nodeId = this.#host.nodeId = o.nodeId;
    this.#log = o.log;
    this.#metrics = o.metrics;
    this.#table = new ActorTable(o.actors, o.idleTimeoutMs);
    if (o.store === undefined && this.#table.types.some((t) => t.durable)) throw new MeshError("INTERNAL", "durable actor types need a state store");
    this.#passivation = new Passivation(this.#table.slots, this.#table.types.map((t) => t.idleTimeoutMs), o.maxActors, (act, reason) => this.#end(act, reason));
    const passivation = this.#passivation;
    this.#turns = new Turns(
      {
        get tick() {
          return passivation.tick;
        },
        abandon: (act) => this.#abandon(act),
        leave: (act) => this.#leave(act),
        cleared: (act) => this.#end(act, "cleared"),
        checkIdle: () => this.#checkIdle(),
        publish: (out) => o.publisher.publish(o.publisher.name(out)),
      },
      o.metrics,
      o.log,
      o.lease,
      { ...o.limits, load: this.load },
    );
  }

  /** Another node may have served this node's actors (lease.ts): all go, without onDeactivate; what waits goes to the owner. */
  dropAll(): number {
    for (const act of this.#table.all()) this.#replaced.add(act);
    return this.rebalance(() => false);
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
   * Calls actor (`actorType`, `id`) for a caller in this process, activating it first if needed; each side gets
   * its own copy of the values. Rejects with BAD_REQUEST, UNKNOWN_ACTOR_TYPE, ACTIVATION_FAILED, ACTOR_CRASHED,
   * BAD_REPLY, OVERLOADED or TIMEOUT (after `timeoutMs`).
   */
  call(capability: string, actorType: string, id: string, shard: number, payload: unknown, initArg: unknown, timeoutMs: number, chain?: readonly string[]): Promise<CallResult> {
    try {
      payload = this.incoming(actorType, payload, "payload");
      initArg = this.incoming(actorType, initArg, "initArg");
    } catch (err) {
      return Promise.reject(err);
    }
    const act = this.#activation(capability, actorType, id, shard, initArg);
    if (act instanceof MeshError) return Promise.reject(act);
    return this.#turns.call(act, payload, initArg, timeoutMs, chain);
  }

  /** `call` for a remote caller (`bytes`: its size on the wire) or a stream event (`system`): the outcome goes to `reply`. */
  deliver(capability: string, actorType: string, id: string, shard: number, payload: unknown, initArg: unknown, timeoutMs: number, reply: ReplyTo, chain?: readonly string[], bytes = 0, system?: "event"): void {
    const act = this.#activation(capability, actorType, id, shard, initArg);
    if (act instanceof MeshError) return reply.fail(act);
    // Watched for its deadline only if it has to wait: a handler that answers at once needs no timer.
    const letter = new Letter(false, payload, initArg, performance.now() + timeoutMs, timeoutMs, reply, this.#metrics, system, chain);
    letter.bytes = bytes;
    this.#turns.deliver(act, letter);
  }

  /**
   * Delivers a cast (`bytes`: its size on the wire, 0 from this process). Throws UNKNOWN_ACTOR_TYPE or
   * ACTIVATION_FAILED when the actor cannot be started, OVERLOADED when it would wait past a limit.
   */
  cast(capability: string, actorType: string, id: string, shard: number, payload: unknown, initArg: unknown, bytes = 0): void {
    const act = this.#activation(capability, actorType, id, shard, initArg);
    if (act instanceof MeshError) throw act;
    const refused = this.#turns.post(act, Letter.cast(payload, initArg, bytes));
    if (refused !== undefined) throw refused;
  }

  /** A turn the node gives an actor itself (a timer's): into its mailbox, like a cast nobody waits for. */
  #system(act: Activation, name: string): void {
    if (act.dead) return;
    this.#turns.post(act, new Letter(true, name, undefined, Infinity, 0, NO_REPLY, undefined, "timer"));
  }

  /** The view changed: every activation whose shard `owns` says this node lost leaves after its current message (#end). */
  rebalance(owns: (capability: string, shard: number) => boolean): number {
    let moved = 0;
    for (const act of this.#table.all()) {
      if (owns(act.capability, act.shard)) continue;
      this.#end(act, "rebalance");
      moved++;
    }
    return moved;
  }

  /**
   * An operator deleted the stored state of (`capability`, `actorType`, `id`):
   * its live activation, if any, ends before its next turn ("cleared"), and
   * the next message starts from the initial state. True when one was live.
   */
  forget(capability: string, actorType: string, id: string): boolean {
    const act = this.#table.get(capability, actorType, id);
    if (act !== undefined) this.#end(act, "cleared");
    return act !== undefined;
  }

  /**
   * Ends an activation that did not crash: it leaves the actor table at once
   * (new messages for it start a new activation, here or on its new owner),
   * and once its current message is done, `#leave` hands on what waits.
   */
  #end(act: Activation, reason: DeactivateReason): void {
    this.#table.remove(act);
    act.leaving = reason;
    if (!act.busy) this.#leave(act);
  }

  /**
   * An activation that left (see #end) goes: once its commits have landed,
   * its waiting letters go to the `handover` (its owner now, maybe this node,
   * where a new activation reads what was committed), and its onDeactivate runs.
   */
  #leave(act: Activation, deactivate = true): void {
    act.dead = true;
    this.#timers.end(act);
    const letters = act.drain();
    const handOn = () => {
      const waiting = letters.filter((l) => !l.settled);
      for (const letter of waiting) this.#turns.take(letter);
      if (waiting.length > 0) this.o.handover(act, waiting);
      this.#checkIdle();
    };
    if (act.commits?.busy) void act.commits.idle().then(handOn);
    else handOn();
    if (deactivate && !this.#replaced.has(act)) void this.#deactivate(act, act.leaving ?? "rebalance", this.o.deactivateTimeoutMs);
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
  async deactivateAll(reason: DeactivateReason, timeoutMs: number): Promise<void> {
    this.#passivation.stop();
    this.scheduler.stop();
    const all = this.#table.clear();
    this.#turns.failAll(new MeshError("STOPPED", "the node stopped before the call finished (it was queued, still running or not yet stored after drainTimeoutMs)"));
    await Promise.all(all.map((act) => this.#deactivate(act, reason, timeoutMs)));
  }

  /** Ends an activation without a crash: counts a passivation or eviction, then runs its onDeactivate. */
  async #deactivate(act: Activation, reason: DeactivateReason, timeoutMs: number): Promise<void> {
    act.dead = true;
    if (reason === "idle") this.#metrics.passivations++;
    else if (reason === "evicted") this.#metrics.evictions++;
    await act.deactivate(reason, timeoutMs, this.#log);
  }

  /**
   * The live activation of (`capability`, `actorType`, `id`), activating it
   * if there is none. A type bound to other capabilities is WRONG_CAPABILITY,
   * before anything is looked up or activated.
   */
  #activation(capability: string, actorType: string, id: string, shard: number, initArg: unknown): Activation | MeshError {
    const type = this.#table.type(actorType);
    if (type === undefined) {
      this.#metrics.error("UNKNOWN_ACTOR_TYPE");
      return new MeshError("UNKNOWN_ACTOR_TYPE", `node ${this.nodeId} does not host actor type "${actorType}" (it hosts: ${this.actorTypes().join(", ") || "none"})`);
    }
    if (type.capabilities !== undefined && !type.capabilities.includes(capability)) {
      this.#metrics.error("WRONG_CAPABILITY");
      return wrongCapability(actorType, capability, type.capabilities);
    }
    const slot = this.#table.slot(type, capability);
    const live = slot.activations.get(id);
    if (live !== undefined) return live;

    this.#passivation.makeRoom(this.#table.size);
    const incarnation = ++this.#incarnation;
    let act: Activation;
    try {
      act = new Activation(new type.cls(id, initArg), capability, actorType, id, shard, incarnation, this.#host);
    } catch (err) {
      return activationFailed(`${this.nodeId}/${actorType}/${id}#${incarnation}`, err, false, this.#metrics, this.#log);
    }
    act.lastTick = this.#passivation.tick;
    if (type.durable) {
      this.#starting(act, this.#load(act).then(() => act.instance.onActivate?.()));
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
    this.#table.add(slot, act);
    this.#metrics.activations++;
    return act;
  }

  /** The activation holds the turn while `starting` runs; letters that arrive meanwhile wait. If it fails, they fail too. */
  #starting(act: Activation, starting: Promise<unknown>): void {
    act.busy = true;
    this.#turns.running++;
    starting.then(
      () => {
        this.#turns.running--;
        this.#turns.next(act);
      },
      (err: unknown) => {
        this.#turns.running--;
        act.dead = true;
        this.#timers.end(act);
        this.#table.remove(act);
        const failure = activationFailed(act.pid, err, true, this.#metrics, this.#log);
        for (const letter of act.drain()) this.#turns.settle(letter, failure);
        this.#checkIdle();
      },
    );
  }

  /** Reads a durable actor's stored state into its instance and sets up its commits. */
  async #load(act: Activation): Promise<void> {
    const m = this.#metrics;
    act.commits = await loadState(this.o.store!, act.capability, act.actorType, act.id, act.instance, {
      committed: (ms) => void (m.stateCommits++, m.commitLatency.observe(ms)),
      failed: (err) => {
        if (err.code === "STATE_CONFLICT") m.stateConflicts++;
        this.#log.warn({ pid: act.pid, err: err.message }, "mesh: a commit failed; the activation is dropped");
        this.#abandon(act);
      },
      settled: () => this.#turns.committed(act.commits!),
      span: commitSpan,
    }, this.o.publisher);
    m.stateLoads++;
  }

  /**
   * An activation cannot go on (it crashed, or its state could not be
   * stored): it gets no onDeactivate, and what waits in its mailbox goes on,
   * to its new owner if it was leaving, else to a fresh activation here.
   */
  #abandon(act: Activation): void {
    if (act.dead) return;
    if (act.leaving !== undefined) this.#leave(act, false);
    else this.#drop(act);
  }

  /** Drops an activation so the next message starts a fresh one, and hands the letters still queued to that fresh activation. */
  #drop(act: Activation): void {
    act.dead = true;
    this.#timers.end(act);
    this.#table.remove(act);
    const queued = act.drain();
    for (const letter of queued) {
      if (letter.settled) continue;
      this.#turns.take(letter);
      if (letter.cast) this.#redeliverCast(act, letter);
      else this.deliver(act.capability, act.actorType, act.id, act.shard, letter.payload, letter.initArg, letter.deadline - performance.now(), letter.reply, undefined, 0, letter.system === "event" ? "event" : undefined);
    }
    this.#checkIdle();
  }

  #redeliverCast(act: Activation, letter: Letter): void {
    try {
      this.cast(act.capability, act.actorType, act.id, act.shard, letter.payload, letter.initArg);
    } catch (err) {
      this.#log.warn({ actorType: act.actorType, id: act.id, err: messageOf(err) }, "mesh: cast lost");
    }
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
