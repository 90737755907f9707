// Passivation: actors idle for their idleTimeoutMs leave memory, and beyond
// maxActors the least recently used idle ones are evicted. One timer per node,
// whatever the number of actors: it advances a tick counter and sweeps the
// actor tables, and each turn stamps its actor with the current tick and a
// used mark (two field writes, no clock read), so 1,000,000 actors cost one timer, as 10 do.
import type { IdTable } from "@mesh/core/internal";
import type { Activation } from "./activation.js";

/** One table of activations (a type under one capability), as the sweep sees it. */
export interface SweptType {
  readonly activations: IdTable<Activation>;
  /** How long an actor of this type may stay idle (Infinity: for ever). */
  readonly idleTimeoutMs: number;
}

/** How the sweep ends an actor: "idle" or "evicted". */
export type EndActor = (act: Activation, reason: "idle" | "evicted") => void;

/** The longest and shortest tick: idle actors leave between idleTimeoutMs and idleTimeoutMs + one tick. */
const MAX_TICK_MS = 10_000;
/** The most busy actors makeRoom passes over for one new actor. */
const MAKE_ROOM_STEPS = 256;
const MIN_TICK_MS = 10;

/** True when an actor can leave without anyone waiting on it: no turn, no letter, no commit. */
export function isIdle(act: Activation): boolean {
  return !act.busy && act.waiting === 0 && !act.commits?.busy;
}

export class Passivation {
  /** The current tick; turns copy it into `act.lastTick`. */
  tick = 0;
  readonly tickMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Where the eviction hand starts: the type after the one it last took from. */
  #hand = 0;

  /**
   * `types`: the tables to sweep, a live list that grows as tables are made.
   * The tick is a tenth of the shortest finite of `idleTimeouts` (between
   * 10 ms and 10 s); with no finite timeout there is no timer at all (the
   * cap needs none).
   */
  constructor(
    private readonly types: readonly SweptType[],
    idleTimeouts: readonly number[],
    readonly maxActors: number,
    private readonly end: EndActor,
  ) {
    const shortest = Math.min(...idleTimeouts);
    this.tickMs = Number.isFinite(shortest) ? Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(shortest / 10))) : 1000;
    if (Number.isFinite(shortest)) {
      this.#timer = setInterval(() => this.#sweep(), this.tickMs);
      this.#timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /**
   * Makes room for one more actor when `live` is at the cap: evicts an idle
   * actor not used since the hand last passed it (CLOCK, an approximation of
   * least recently used at O(1) amortized: each turn sets `act.used`, and the
   * hand, which goes round each table's activations in the order they came
   * and stays where it stopped, clears it). Looks at
   * most MAKE_ROOM_STEPS busy actors per type; returns false when it found
   * none idle, and the cap is then exceeded until the next new actor finds
   * one, or the idle timeout ends some.
   */
  makeRoom(live: number): boolean {
    if (live < this.maxActors) return true;
    for (let n = 0; n < this.types.length; n++) {
      const type = this.types[(this.#hand + n) % this.types.length]!;
      // Twice round: the first pass may only clear the marks (each paid for by the turn that set it). Busy actors are
      // passed over at most MAKE_ROOM_STEPS times: when none is idle (a burst of activations, each in its first turn), a
      // new actor costs a bounded look, not one over every live actor.
      const table = type.activations;
      let busy = 0;
      for (let steps = 2 * table.positions; steps > 0; steps--) {
        if (table.hand >= table.positions) table.hand = 0;
        const act = table.at(table.hand++);
        if (act === undefined) continue;
        const idle = isIdle(act);
        if (!idle && ++busy > MAKE_ROOM_STEPS) break;
        if (!act.used && idle) {
          this.#hand = (this.#hand + n + 1) % this.types.length;
          this.end(act, "evicted");
          return true;
        }
        act.used = false;
      }
    }
    return false;
  }

  #sweep(): void {
    this.tick++;
    this.types.forEach((type) => {
      const idleTicks = Math.ceil(type.idleTimeoutMs / this.tickMs);
      if (idleTicks === Infinity) return;
      // An actor last used in tick t has been idle at least (tick - t - 1) ticks.
      for (const act of type.activations.values()) {
        if (this.tick - act.lastTick > idleTicks && isIdle(act)) this.end(act, "idle");
      }
    });
  }
}
