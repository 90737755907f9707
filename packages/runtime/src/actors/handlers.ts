// Which handler a letter's turn runs, one entry per kind of turn
// (turn-kind.ts): handleCall, handleCast, handleTimer, handleReminder or
// handleEvent (an event the actor applied already runs nothing). Imports: the
// actors room and the bottom floor.
import type { StreamEvent } from "../types.js";
import type { Activation } from "./activation.js";
import type { Letter, ReminderTurn } from "./letter.js";
import type { TurnKindName } from "./turn-kind.js";

/** An event or reminder turn that found what it brings applied already. */
export const SKIPPED = Symbol("skipped");

/** Where an actor's applied map keeps the last occurrence of reminder `name` it applied (beside the subscriptions' sequences). */
export const reminderApplied = (name: string) => `\u23f0${name}`;

/** What a turn applies once: an event's sequence, a reminder's occurrence; undefined for the other kinds. */
export function occurrenceOf(letter: Letter): { subscription: string; seq: number } | undefined {
  if (letter.kind.name === "event") return letter.payload as StreamEvent;
  if (letter.kind.name !== "reminder") return undefined;
  const turn = letter.payload as ReminderTurn;
  return { subscription: reminderApplied(turn.name), seq: turn.occurrence };
}

/** The stream sequence an actor applied per subscription, and the last occurrence of each reminder: stored with a durable actor's state, in memory for a plain one. */
export function appliedOf(act: Activation): Map<string, number> {
  if (act.commits !== undefined) return act.commits.applied;
  return ((act.events ??= { applied: undefined, outbox: undefined }).applied ??= new Map());
}

/** Runs handleCall with `payload` (a local call's fast path, when it is traced). */
export function callHandler(act: Activation, payload: unknown): unknown {
  return act.instance.handleCall(payload, act);
}

/** The handler of each kind of turn: what it returned (SKIPPED: an event applied before). Throws what the handler throws. */
const HANDLERS: { readonly [N in TurnKindName]: (act: Activation, letter: Letter) => unknown } = {
  call: (act, letter) => act.instance.handleCall(letter.payload, act),
  cast: (act, letter) => (act.instance.handleCast ?? act.instance.handleCall).call(act.instance, letter.payload, act),
  timer: (act, letter) => act.instance.handleTimer!(letter.payload as string, act),
  reminder: (act, letter) => {
    const { name, info, occurrence } = letter.payload as ReminderTurn;
    // Applied already (the node that ran it died before the reminder moved on): nothing runs again.
    if (occurrence <= (appliedOf(act).get(reminderApplied(name)) ?? 0)) return SKIPPED;
    if (typeof act.instance.handleReminder !== "function")
      throw new Error(`${act.actorType} has no handleReminder method for reminder "${name}"`);
    return act.instance.handleReminder(name, info, act);
  },
  event: (act, letter) => {
    const event = letter.payload as StreamEvent;
    // Applied already (a redelivery): answered false, once what applied it is stored.
    if (event.seq <= (appliedOf(act).get(event.subscription) ?? 0)) return SKIPPED;
    if (typeof act.instance.handleEvent !== "function") throw new Error(`${act.actorType} has no handleEvent method`);
    return act.instance.handleEvent(event, act);
  },
};

/** Runs the handler `letter` is for and returns what it returned (SKIPPED: an event applied before). Throws what the handler throws. */
export function runHandler(act: Activation, letter: Letter): unknown {
  return HANDLERS[letter.kind.name](act, letter);
}
