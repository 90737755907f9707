// How activations end: one way per reason. An activation that ends leaves the
// actor table at once (the next message starts a new activation, here or on
// its new owner); what differs between the reasons is when it goes, whether
// its onDeactivate runs, and where the letters still waiting in its mailbox go:
//
// | reason                | when                                              | onDeactivate      | what waits goes to                 |
// | --------------------- | ------------------------------------------------- | ----------------- | ---------------------------------- |
// | idle, evicted         | passivation (passivation.ts): idle, nothing waits | yes               | (nothing waits)                    |
// | rebalance             | its shard moved to another node                   | yes, after a turn | its owner now (router handover)    |
// | cleared               | an operator's forget, or its turn cleared state   | yes, after a turn | its owner now (a fresh activation) |
// | replaced              | the node lost its lease (lease.ts)                | no                | its owner now                      |
// | crashed               | a handler threw, or its state cannot be stored    | no                | a fresh activation here, by kind   |
// | failed                | onActivate or a durable load failed               | no                | fails: ACTIVATION_FAILED           |
// | shutdown              | the node stops: its shards handed over first      | yes, after a turn | its owner now; at the end: STOPPED |
//
// A plain activation that leaves for a rebalance or a shutdown goes to its
// new owner with its state (migration.ts) instead, ahead of its letters, and
// runs no onDeactivate. A letter goes on with its kind (turn-kind.ts says what each kind does on a
// move and after a crash). Imports: the actors room, timers, the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { NodeMetrics } from "../operations/metrics.js";
import type { Timers } from "../timers/timers.js";
import type { DeactivateReason } from "../types.js";
import { activationFailed } from "./actor.js";
import type { Activation, Ending } from "./activation.js";
import type { ActorTable } from "./actor-table.js";
import type { Letter } from "./letter.js";
import type { Turns } from "./turns.js";

/** What ending activations works with. */
export interface EndingsParts {
  readonly table: ActorTable;
  readonly timers: Timers<Activation>;
  readonly turns: Turns;
  readonly log: Logger;
  readonly metrics: NodeMetrics;
  /** How long an onDeactivate may take. */
  readonly deactivateTimeoutMs: number;
  /** Sends the waiting letters of an actor that left on to its owner now. */
  handover(act: Activation, letters: Letter[]): void;
  /** Puts a letter into the mailbox of a fresh activation of the same actor here. */
  fresh(act: Activation, letter: Letter): void;
  /**
   * The activation leaves for its new owner: true when it went there with its state (live migration, migration.ts).
   * `when`: as it leaves (plain actors), or once its commits landed (durable ones: their stored record).
   */
  migrated(act: Activation, when: "leaving" | "committed"): boolean;
  /** Something that kept the node busy ended. */
  checkIdle(): void;
}

export class Endings {
  /** Activations out of the table that have not gone yet: a turn to finish, commits to land, letters to hand on. */
  readonly ending = new Set<Activation>();

  constructor(private readonly p: EndingsParts) {}

  /**
   * Ends an activation that did not crash (idle, evicted, rebalance, cleared,
   * replaced): out of the table now; it goes once its current turn is done.
   */
  leave(act: Activation, reason: Ending): void {
    this.p.table.remove(act);
    if (!act.leaves(reason)) this.gone(act);
    else this.ending.add(act);
  }

  /** Ends, as `leave` does, every activation whose shard `owns` says this node lost. Returns how many. */
  rebalance(owns: (capability: string, shard: number) => boolean, reason: "rebalance" | "replaced" | "shutdown"): number {
    let moved = 0;
    for (const act of this.p.table.all()) {
      if (owns(act.capability, act.shard)) continue;
      this.leave(act, reason);
      moved++;
    }
    return moved;
  }

  /**
   * An activation that left goes: once its commits have landed, its waiting
   * letters go to the handover (its owner now, maybe this node, where a new
   * activation reads what was committed), and its onDeactivate runs unless
   * it was replaced or `deactivate` is false (it crashed while leaving). It
   * counts as ending (a claim on its shard waits) until both are done: a new
   * owner's onActivate never overlaps this one's onDeactivate.
   */
  gone(act: Activation, deactivate = true): void {
    const reason = act.reason ?? "rebalance";
    // Before its timers end and its letters go: what moves is sent ahead of them. A moved activation does not deactivate.
    const toOwner = deactivate && (reason === "rebalance" || reason === "shutdown");
    const moved = toOwner && this.p.migrated(act, "leaving");
    act.ends();
    this.p.timers.end(act);
    this.ending.add(act);
    const letters = act.drain();
    const deactivating = deactivate && !moved && reason !== "replaced";
    let left = deactivating ? 2 : 1; // its letters handed on, and its onDeactivate
    const done = () => {
      if (--left > 0) return;
      this.ending.delete(act);
      this.p.checkIdle();
    };
    const handOn = () => {
      if (toOwner) this.p.migrated(act, "committed"); // a durable actor's record, ahead of its letters
      const waiting = letters.filter((l) => !l.settled);
      for (const letter of waiting) this.p.turns.take(letter);
      if (waiting.length > 0) this.p.handover(act, waiting);
      done();
    };
    if (act.commits?.busy) void act.commits.idle().then(handOn);
    else handOn();
    if (deactivating) void this.#deactivate(act, reason, this.p.deactivateTimeoutMs).then(done);
  }

  /**
   * An activation cannot go on (a handler threw, or its state could not be
   * stored): no onDeactivate. It counts as ending while an earlier commit of
   * it is in flight, so that no other node claims its shard and reads the
   * store before that commit lands. What waits goes to its new owner if it was
   * leaving; else each letter, by its kind, into a fresh activation here or
   * nowhere (a timer ended with the activation that set it).
   */
  crashed(act: Activation): void {
    if (act.gone) return;
    if (act.leaving) return this.gone(act, false);
    act.ends();
    this.p.timers.end(act);
    this.p.table.remove(act);
    // A commit of an earlier turn still in flight: the shard is not released (a claim waits) until it landed.
    if (act.commits?.busy) {
      this.ending.add(act);
      void act.commits.idle().then(() => {
        this.ending.delete(act);
        this.p.checkIdle();
      });
    }
    for (const letter of act.drain()) {
      if (letter.settled) continue;
      this.p.turns.take(letter);
      if (letter.kind.onCrash === "fresh") this.p.fresh(act, letter);
    }
    this.p.checkIdle();
  }

  /**
   * The activation could not start (onActivate or its load failed): what
   * waits fails with ACTIVATION_FAILED; or, if it was leaving meanwhile (its
   * shard moved, the lease was replaced), goes to its owner now, as a leaving
   * activation's letters do (and it is no longer ending: a claim on its shard
   * is answered).
   */
  failed(act: Activation, err: unknown): void {
    if (act.leaving) {
      activationFailed(act.pid, err, true, this.p.metrics, this.p.log);
      return this.gone(act, false);
    }
    act.ends();
    this.p.timers.end(act);
    this.p.table.remove(act);
    const failure = activationFailed(act.pid, err, true, this.p.metrics, this.p.log);
    for (const letter of act.drain()) this.p.turns.settle(letter, failure);
    this.p.checkIdle();
  }

  /** The node stops: every activation ends, its onDeactivate bounded by `timeoutMs`; calls still waiting fail with STOPPED. */
  async shutdown(timeoutMs: number): Promise<void> {
    const all = this.p.table.clear();
    this.p.turns.failAll(
      new MeshError(
        "STOPPED",
        "the node stopped before the call finished (it was queued, still running or not yet stored after drainTimeoutMs)",
      ),
    );
    await Promise.all(all.map((act) => this.#deactivate(act, "shutdown", timeoutMs)));
  }

  /** Ends an activation without a crash: counts a passivation or eviction, then runs its onDeactivate. */
  async #deactivate(act: Activation, reason: DeactivateReason, timeoutMs: number): Promise<void> {
    act.ends();
    if (reason === "idle") this.p.metrics.passivations++;
    else if (reason === "evicted") this.p.metrics.evictions++;
    await runOnDeactivate(act, reason, timeoutMs, this.p.log);
  }
}

/** Runs the instance's onDeactivate, if it has one, for at most `timeoutMs`; a failure is logged, never thrown. */
async function runOnDeactivate(act: Activation, reason: DeactivateReason, timeoutMs: number, log: Logger): Promise<void> {
  if (typeof act.instance.onDeactivate !== "function") return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      act.instance.onDeactivate(reason),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`onDeactivate took over ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } catch (err) {
    log.warn({ pid: act.pid, err: messageOf(err) }, "mesh: onDeactivate failed");
  } finally {
    clearTimeout(timer);
  }
}
