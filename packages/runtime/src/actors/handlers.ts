// Which handler a letter's turn runs: handleCall, handleCast, handleTimer,
// handleReminder or handleEvent (an event the actor applied already runs
// nothing). Imports: the actors room and the bottom floor.
import type { ReminderInfo, StreamEvent } from "../types.js";
import type { Activation, Letter } from "./activation.js";

/** An event turn that found its event applied already. */
export const SKIPPED = Symbol("skipped");

/** The stream sequence an actor applied per subscription: stored with a durable actor's state, in memory for a plain one. */
export function appliedOf(act: Activation): Map<string, number> {
  if (act.commits !== undefined) return act.commits.applied;
  return ((act.events ??= { applied: undefined, outbox: undefined }).applied ??= new Map());
}

/** Runs handleCall with `payload` (a local call's fast path, when it is traced). */
export function callHandler(act: Activation, payload: unknown): unknown {
  return act.instance.handleCall(payload, act);
}

/** Runs the handler `letter` is for and returns what it returned (SKIPPED: an event applied before). Throws what the handler throws. */
export function runHandler(act: Activation, letter: Letter): unknown {
  if (letter.system === "reminder") {
    const { name, info } = letter.payload as { name: string; info: ReminderInfo };
    if (typeof act.instance.handleReminder !== "function")
      throw new Error(`${act.actorType} has no handleReminder method for reminder "${name}"`);
    return act.instance.handleReminder(name, info, act);
  }
  if (letter.system === "event") {
    const event = letter.payload as StreamEvent;
    // Applied already (a redelivery): answered false, once what applied it is stored.
    if (event.seq <= (appliedOf(act).get(event.subscription) ?? 0)) return SKIPPED;
    if (typeof act.instance.handleEvent !== "function") throw new Error(`${act.actorType} has no handleEvent method`);
    return act.instance.handleEvent(event, act);
  }
  const handle =
    letter.system === "timer"
      ? act.instance.handleTimer!
      : letter.cast
        ? (act.instance.handleCast ?? act.instance.handleCall)
        : act.instance.handleCall;
  return handle.call(act.instance, letter.payload, act);
}
