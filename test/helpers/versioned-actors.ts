// Two releases of one application, for the rolling deploy test: "VCounter" is
// a durable counter whose v2 changes its state's shape (stateVersion 2, with
// migrateState), and whose answers say which code ran; "Ticker" is a plain
// actor with a repeating timer that counts its ticks in memory.
import type { CallContext } from "@mesh/runtime";

/** v1: `{ count }`. */
export class VCounterV1 {
  static actorType = "VCounter";
  static durable = true;
  static capability = "roll";
  state = { count: 0 };
  handleCall(): { count: number; code: number } {
    this.state.count++;
    return { count: this.state.count, code: 1 };
  }
}

/** v2: `{ total, from }`, migrated from v1's `{ count }` (`from`: the version it was migrated from, 2 for one v2 started). */
export class VCounterV2 {
  static actorType = "VCounter";
  static durable = true;
  static capability = "roll";
  static stateVersion = 2;
  static migrateState(stored: { count: number }, fromVersion: number): { total: number; from: number } {
    return { total: stored.count, from: fromVersion };
  }
  state = { total: 0, from: 2 };
  handleCall(): { count: number; code: number; from: number } {
    this.state.total++;
    return { count: this.state.total, code: 2, from: this.state.from };
  }
}

/** A repeating timer every 100 ms from its first call; a call answers how many ticks it counted. */
export class Ticker {
  static actorType = "Ticker";
  static capability = "roll";
  ticks = 0;
  started = false;
  handleCall(_p: unknown, ctx: CallContext): { ticks: number } {
    if (!this.started) ctx.setTimer("tick", 100, { every: true });
    this.started = true;
    return { ticks: this.ticks };
  }
  handleTimer(): void {
    this.ticks++;
  }
}
