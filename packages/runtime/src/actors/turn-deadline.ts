// A turn's deadline (maxTurnMs, docs/behaviour.md "A turn that runs too
// long"): a handler whose promise has not settled maxTurnMs after its turn
// started abandons its activation, as a crash does. Its caller gets
// TURN_TIMEOUT; nothing of the turn is stored or published (it never ended);
// what waits in the mailbox goes to a fresh activation, whose durable state
// is read again from the store; whatever the handler does later is ignored.
// One sweep for the node (a TimeoutMap), not a timer per turn: a turn that
// ends in time costs a set and a take. Every async turn is kept, with no
// deadline when maxTurnMs is 0: a TIMEOUT says what its actor was doing
// (busyNote), and an operator's reset (`mesh actor reset`) abandons the turn
// the same way. Imports: the actors room and the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { SlotTable, TimeoutMap } from "@mesh/core/internal";
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

/** A turn that went async, and when it must have ended (one object per turn, no closure). */
class RunningTurn {
  readonly deadline: number;
  constructor(
    readonly ticket: number,
    readonly started: number,
    readonly act: Activation,
    readonly letter: Letter,
    /** 0: no deadline. */
    readonly maxTurnMs: number,
    private readonly owner: TurnDeadlines,
  ) {
    this.deadline = maxTurnMs > 0 ? started + maxTurnMs : Infinity;
  }
  expire(): void {
    this.owner.abandon(this, "TURN_TIMEOUT");
  }
}

/** Each turn's deadline is checked this often: a turn ends between maxTurnMs and this much later. */
const SWEEP_MS = 50;

export class TurnDeadlines {
  /** By ticket: sequential numbers in a SlotTable (a Map with a fresh key per turn spent a third of an async local call in GC). */
  readonly #running = new TimeoutMap<number, RunningTurn>(SWEEP_MS, new SlotTable());
  #turns = 0;

  constructor(
    /** For classes without `static maxTurnMs` (0: no limit). */
    private readonly maxTurnMs: number,
    private readonly node: DeadlineHost,
  ) {}

  /** A turn's handler returned a promise at `started` (performance.now()): returns its ticket. */
  start(act: Activation, letter: Letter, started: number): number {
    const turn = (this.#turns = (this.#turns + 1) >>> 0 || 1); // within the SlotTable's 32-bit ids
    const ms = (act.instance.constructor as ActorClass).maxTurnMs ?? this.maxTurnMs;
    this.#running.set(turn, new RunningTurn(turn, started, act, letter, Math.max(0, ms), this));
    return turn;
  }

  /** The turn's promise settled: false when it was abandoned first (what it came to is ignored). */
  end(turn: number): boolean {
    return this.#running.take(turn) !== undefined;
  }

  /** What `act` is busy with, for a caller that waited too long: its running turn, its start, or its commit. */
  busyNote(act: Activation): string {
    const turn = this.#runningOf(act);
    const queued = act.waiting > 0 ? `, with ${act.waiting} message${act.waiting === 1 ? "" : "s"} waiting` : "";
    if (turn === undefined)
      return `${act.pid} was busy ${act.phase === "starting" ? "starting (onActivate, or loading its state)" : "(storing its state, or waiting for the node's lease)"}${queued}`;
    const limit = turn.maxTurnMs > 0 ? `maxTurnMs ${turn.maxTurnMs}` : "no maxTurnMs";
    return `${act.pid} was busy: its ${turn.letter.kind.name} turn had run for ${Math.round(performance.now() - turn.started)} ms (${limit})${queued}`;
  }

  /** An operator reset `act` (`mesh actor reset`): its running turn, if it has one, is abandoned. True when it had one. */
  reset(act: Activation): boolean {
    const turn = this.#runningOf(act);
    if (turn !== undefined) this.abandon(turn, "reset");
    return turn !== undefined;
  }

  #runningOf(act: Activation): RunningTurn | undefined {
    for (const turn of this.#running.values()) if (turn.act === act) return turn;
    return undefined;
  }

  /** A turn ran past its deadline, or was reset: its caller is told, and the activation goes as after a crash. */
  abandon(turn: RunningTurn, why: "TURN_TIMEOUT" | "reset"): void {
    const { act, letter, maxTurnMs } = turn;
    const { metrics, log, host } = this.node;
    this.#running.take(turn.ticket);
    if (why === "TURN_TIMEOUT") {
      metrics.turnTimeouts++;
      metrics.error("TURN_TIMEOUT");
      log.warn({ pid: act.pid, maxTurnMs }, "mesh: a turn ran too long; its activation was dropped");
    } else log.warn({ pid: act.pid }, "mesh: an operator reset an activation in its turn; it was dropped");
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
