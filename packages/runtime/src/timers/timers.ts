// Actor timers (ctx.setTimer): in memory, per activation, on the node's one
// scheduler. A firing is a turn in the actor's mailbox (handleTimer), like a
// message; timers end with the activation. At most one firing of a timer waits
// in the mailbox: a repeating timer faster than its actor's turns skips the
// firings that come while one waits (else it would fill the mailbox without
// limit: timer turns are never refused). A firing whose timer was cleared or
// set again before its turn came does not run.
import { MeshError } from "@mesh/core";
import { MAX_TIMEOUT_MS, isTimeout } from "../options.js";
import type { TimerOptions } from "../types.js";
import type { Scheduled, Scheduler } from "./scheduler.js";

/** What timers belong to: an activation, as the timers see it (they need nothing else of it). */
export interface TimerOwner {
  readonly instance: object;
  readonly actorType: string;
  readonly gone: boolean;
  /** Its timers by name; undefined while it never set one. */
  timers: Map<string, Scheduled> | undefined;
}

/** One timer of one activation. */
export class ActorTimer<O extends TimerOwner = TimerOwner> implements Scheduled {
  index = -1;
  /** A firing of it waits in the mailbox. */
  waiting = false;
  constructor(
    readonly act: O,
    readonly name: string,
    public due: number,
    readonly everyMs: number | undefined,
    private readonly timers: Timers<O>,
  ) {}
  fire(): void {
    this.timers.fired(this);
  }

  /** Its firing's turn comes: true when it runs (the timer is still the one of its name); a one-shot timer is then done. */
  runs(): boolean {
    this.waiting = false;
    const timers = this.act.timers;
    if (this.act.gone || timers?.get(this.name) !== this) return false;
    if (this.everyMs === undefined) timers.delete(this.name);
    return true;
  }
}

/** The timers of a node's activations: set, clear, fire (as a turn), end with the activation. */
export class Timers<O extends TimerOwner> {
  constructor(
    private readonly scheduler: Scheduler,
    /** Posts a timer's turn to the actor's mailbox (ActorTimer.runs says, when it comes, whether it runs). */
    private readonly turn: (act: O, timer: ActorTimer<O>) => void,
  ) {}

  /** Sets (or resets) timer `name` of `act`. Throws BAD_REQUEST for a bad name or interval, or a class without handleTimer. */
  set(act: O, name: string, ms: number, options: TimerOptions = {}): void {
    if (typeof name !== "string" || name === "") throw new MeshError("BAD_REQUEST", "a timer needs a non-empty string name");
    if (!isTimeout(ms))
      throw new MeshError(
        "BAD_REQUEST",
        `a timer's interval must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${String(ms)}`,
      );
    if (typeof (act.instance as { handleTimer?: unknown }).handleTimer !== "function")
      throw new MeshError("BAD_REQUEST", `${act.actorType} has no handleTimer method to run timer "${name}"`);
    this.#arm(act, name, Date.now() + ms, options.every ? ms : undefined);
  }

  #arm(act: O, name: string, due: number, everyMs: number | undefined): void {
    this.clear(act, name);
    const timer = new ActorTimer(act, name, due, everyMs, this);
    (act.timers ??= new Map()).set(name, timer);
    this.scheduler.add(timer);
  }

  /** Clears timer `name` of `act`; true when there was one. */
  clear(act: O, name: string): boolean {
    const timer = act.timers?.get(name);
    if (timer === undefined) return false;
    act.timers!.delete(name);
    this.scheduler.remove(timer);
    return true;
  }

  /** What an activation that moves takes with it (live migration): each timer's name, time left and interval (0: once). */
  carried(act: O): [name: string, leftMs: number, everyMs: number][] {
    const now = Date.now();
    return [...(act.timers ?? [])].map(([name, t]) => [name, Math.max(1, t.due - now), (t as ActorTimer<O>).everyMs ?? 0]);
  }

  /** The timers an activation brought from its old owner, set again with the time they had left (none for a class without handleTimer). */
  resume(act: O, carried: readonly [string, number, number][]): void {
    if (typeof (act.instance as { handleTimer?: unknown }).handleTimer !== "function") return;
    for (const [name, leftMs, everyMs] of carried)
      if (name !== "" && isTimeout(leftMs) && (everyMs === 0 || isTimeout(everyMs)))
        this.#arm(act, name, Date.now() + leftMs, everyMs > 0 ? everyMs : undefined);
  }

  /** The activation ends: all its timers go. */
  end(act: O): void {
    if (act.timers === undefined) return;
    for (const timer of act.timers.values()) this.scheduler.remove(timer);
    act.timers = undefined;
  }

  fired(timer: ActorTimer<O>): void {
    const { act, name } = timer;
    if (act.gone || act.timers?.get(name) !== timer) return;
    if (timer.everyMs !== undefined) {
      timer.due = Date.now() + timer.everyMs;
      this.scheduler.add(timer);
    }
    if (timer.waiting) return; // the last firing has not run yet: this one is skipped
    timer.waiting = true;
    this.turn(act, timer);
  }
}
