// A turn's deadline (maxTurnMs, docs/behaviour.md "A turn that runs too
// long"): a handler whose promise has not settled maxTurnMs after its turn
// started abandons its activation, as a crash does. Its caller gets
// TURN_TIMEOUT; nothing of the turn is stored or published (it never ended);
// what waits in the mailbox goes to a fresh activation, whose durable state
// is read again from the store; whatever the handler does later is ignored.
// One sweep for the node (a TimeoutMap), not a timer per turn: a turn that
// ends in time costs a set and a take. Imports: the actors room and the
// bottom floor.
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
  constructor(
    readonly deadline: number,
    private readonly act: Activation,
    private readonly letter: Letter,
    private readonly maxTurnMs: number,
    private readonly owner: TurnDeadlines,
  ) {}
  expire(): void {
    this.owner.expired(this.act, this.letter, this.maxTurnMs);
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

  /** A turn's handler returned a promise at `started` (performance.now()): returns its ticket (0: it has no deadline). */
  start(act: Activation, letter: Letter, started: number): number {
    const ms = (act.instance.constructor as ActorClass).maxTurnMs ?? this.maxTurnMs;
    if (ms <= 0) return 0;
    const turn = (this.#turns = (this.#turns + 1) >>> 0 || 1); // within the SlotTable's 32-bit ids; 0 is "no deadline"
    this.#running.set(turn, new RunningTurn(started + ms, act, letter, ms, this));
    return turn;
  }

  /** The turn's promise settled: false when its deadline passed first (what it came to is ignored). */
  end(turn: number): boolean {
    return turn === 0 || this.#running.take(turn) !== undefined;
  }

  /** A turn ran past its deadline: its caller gets TURN_TIMEOUT, and the activation goes as after a crash. */
  expired(act: Activation, letter: Letter, maxTurnMs: number): void {
    const { metrics, log, host } = this.node;
    metrics.turnTimeouts++;
    metrics.error("TURN_TIMEOUT");
    log.warn({ pid: act.pid, maxTurnMs }, "mesh: a turn ran too long; its activation was dropped");
    this.node.settle(
      letter,
      new MeshError(
        "TURN_TIMEOUT",
        `${act.pid}'s ${letter.kind.name} turn ran over ${maxTurnMs} ms (maxTurnMs): the activation was dropped, nothing of the turn was stored, and the next message starts a fresh one`,
      ),
    );
    host.crashed(act);
    host.checkIdle();
  }
}
