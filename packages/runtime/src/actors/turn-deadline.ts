// A turn's deadline (maxTurnMs, docs/behaviour.md "A turn that runs too
// long"): a handler whose promise has not settled maxTurnMs after its turn
// started abandons its activation, as a crash does. Its caller gets
// TURN_TIMEOUT; nothing of the turn is stored or published (it never ended);
// what waits in the mailbox goes to a fresh activation, whose durable state
// is read again from the store; whatever the handler does later is ignored.
// One sweep for the node, not a timer per turn: a turn that ends in time
// costs a set and a delete. Every async turn is kept, with no
// deadline when maxTurnMs is 0: a TIMEOUT says what its actor was doing
// (busyNote), and an operator's reset (`mesh actor reset`) abandons the turn
// the same way. Imports: the actors room and the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { SlotTable } from "@mesh/core/internal";
import type { NodeMetrics } from "../operations/metrics.js";
import type { ActorClass } from "../types.js";
import type { Activation } from "./activation.js";
import type { Letter } from "./letter.js";

/** What a turn past its deadline needs of the node. */
export interface DeadlineHost {
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  /** The activation goes as after a crash (endings.ts), and the node may be idle. */
  readonly host: { crashed(act: Activation): void; checkIdle(): void };
  /** The turn no longer runs: its letter fails with `err`. */
  settle(letter: Letter, err: MeshError): void;
}

/** How long `letter`'s turn has run at `now`, in whole milliseconds (int32 arithmetic: right across the wrap). */
const ageOf = (letter: Letter, now: number) => ((now | 0) - letter.turnStarted) | 0;

/** Each turn's deadline is checked this often: a turn ends between maxTurnMs and this much later. */
const SWEEP_MS = 50;

export class TurnDeadlines {
  /**
   * The letters whose turns went async, by letter id: a turn costs a set and a delete in a SlotTable and nothing
   * else (no object per turn, no look-up of its class's maxTurnMs: the sweep reads that). A Map with a fresh key
   * per turn spent a third of an async local call in GC; an object per turn cost 5-8 % of its CPU (bench).
   */
  readonly #running = new SlotTable<Letter>();
  /** Letters still running when a letter of the same id (ids wrap at 2^32) went async: a turn with no deadline, for hours. */
  readonly #wrapped = new Set<Letter>();
  /** Which letter each activation runs, built when a TIMEOUT asks and kept until the next microtask (many expire at once). */
  #byAct: Map<Activation, Letter> | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  constructor(
    /** For classes without `static maxTurnMs` (0: no limit). */
    private readonly maxTurnMs: number,
    private readonly node: DeadlineHost,
  ) {}

  /** The turn of `letter` went async at `started` (performance.now()); `letter.waitsOn` is its activation (Turns.watched). */
  start(letter: Letter, started: number): void {
    letter.turnStarted = started | 0;
    const held = this.#running.get(letter.id);
    if (held !== undefined) this.#wrapped.add(held);
    this.#running.set(letter.id, letter);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#sweeper.unref();
    }
  }

  /** The turn's promise settled: false when it was abandoned first (what it came to is ignored). */
  end(letter: Letter): boolean {
    return this.#running.get(letter.id) === letter ? this.#running.delete(letter.id) : this.#wrapped.delete(letter);
  }

  /** The node stops: no sweep runs any more, and whatever still runs is let go. */
  stop(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#running.clear();
    this.#wrapped.clear();
  }

  /** What `act` is busy with, for a caller that waited too long: its running turn, its start, or its commit. */
  busyNote(act: Activation): string {
    const letter = this.#runningOf(act);
    const queued = act.waiting > 0 ? `, with ${act.waiting} message${act.waiting === 1 ? "" : "s"} waiting` : "";
    if (letter === undefined)
      return `${act.pid} was busy ${act.phase === "starting" ? "starting (onActivate, or loading its state)" : "(storing its state, or waiting for the node's lease)"}${queued}`;
    const ms = this.#limitOf(act);
    const limit = ms > 0 ? `maxTurnMs ${ms}` : "no maxTurnMs";
    return `${act.pid} was busy: its ${letter.kind.name} turn had run for ${ageOf(letter, performance.now())} ms (${limit})${queued}`;
  }

  /** The turn `act` runs now, if one went async: its kind and how long it has run (the admin API's actor view). */
  turnOf(act: Activation): { kind: string; ageMs: number } | undefined {
    const letter = this.#runningOf(act);
    return letter === undefined ? undefined : { kind: letter.kind.name, ageMs: ageOf(letter, performance.now()) };
  }

  /** An operator reset `act` (`mesh actor reset`): its running turn, if it has one, is abandoned. True when it had one. */
  reset(act: Activation): boolean {
    const letter = this.#runningOf(act);
    if (letter !== undefined) this.#abandon(act, letter, "reset");
    return letter !== undefined;
  }

  #limitOf(act: Activation): number {
    return Math.max(0, (act.instance.constructor as ActorClass).maxTurnMs ?? this.maxTurnMs);
  }

  /** The activation whose turn a running letter is (Turns.watched set it). */
  #actOf(letter: Letter): Activation {
    return letter.waitsOn as Activation;
  }

  #runs(letter: Letter): boolean {
    return this.#running.get(letter.id) === letter || this.#wrapped.has(letter);
  }

  /** Every running letter. */
  *#all(): Generator<Letter> {
    for (const [, letter] of this.#running) yield letter;
    yield* this.#wrapped;
  }

  #runningOf(act: Activation): Letter | undefined {
    if (this.#byAct === undefined) {
      const byAct = (this.#byAct = new Map());
      for (const letter of this.#all()) byAct.set(this.#actOf(letter), letter);
      queueMicrotask(() => (this.#byAct = undefined));
    }
    return this.#byAct.get(act);
  }

  /** Abandons every turn past its deadline; stops while no turn runs async. */
  #sweep(): void {
    const now = performance.now();
    for (const letter of [...this.#all()]) {
      const act = this.#actOf(letter);
      const ms = this.#limitOf(act);
      if (ms > 0 && ageOf(letter, now) >= ms && this.#runs(letter)) this.#abandon(act, letter, "TURN_TIMEOUT");
    }
    if (this.#running.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** A turn ran past its deadline, or was reset: its caller is told, and the activation goes as after a crash. */
  #abandon(act: Activation, letter: Letter, why: "TURN_TIMEOUT" | "reset"): void {
    const { metrics, log, host } = this.node;
    this.end(letter);
    this.#byAct?.delete(act);
    const maxTurnMs = this.#limitOf(act);
    if (why === "TURN_TIMEOUT") {
      metrics.turnTimeouts++;
      metrics.error("TURN_TIMEOUT");
      log.warn({ pid: act.pid, maxTurnMs }, "mesh: a turn ran too long; its activation was dropped");
    } else {
      metrics.crashes++;
      metrics.error("ACTOR_CRASHED");
      log.warn({ pid: act.pid }, "mesh: an operator reset an activation in its turn; it was dropped");
    }
    const dropped = "the activation was dropped, nothing of the turn was stored, and the next message starts a fresh one";
    this.node.settle(
      letter,
      why === "TURN_TIMEOUT"
        ? new MeshError("TURN_TIMEOUT", `${act.pid}'s ${letter.kind.name} turn ran over ${maxTurnMs} ms (maxTurnMs): ${dropped}`)
        : new MeshError(
            "ACTOR_CRASHED",
            `${act.pid} was reset by an operator (mesh actor reset) in its ${letter.kind.name} turn: ${dropped}`,
          ),
    );
    host.crashed(act);
    host.checkIdle();
  }
}
