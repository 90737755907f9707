// Which handler a letter's turn runs, one entry per kind of turn
// (turn-kind.ts): handleCall, handleCast, handleTimer, handleReminder or
// handleEvent (an event the actor applied already runs nothing). Imports: the
// actors room and the bottom floor.
import { MeshError } from "@mesh/core";
import { FORGOTTEN, LEGACY_TICKET, reminderLive } from "../timers/reminder-entry.js";
import type { ReminderOutcome, ReminderRecord } from "../timers/reminders.js";
import type { ActorTimer } from "../timers/timers.js";
import type { MeshEvent } from "../events/event.js";
import type { ActorClass } from "../types.js";
import type { Activation } from "./activation.js";
import type { Letter, ReminderTurn } from "./letter.js";
import type { TurnKindName } from "./turn-kind.js";

/** An event or reminder turn that found what it brings applied already. */
export const SKIPPED = Symbol("skipped");

/** Where an actor's applied map keeps the ticket of reminder `name`'s live occurrence (beside the subscriptions' sequences). */
export const reminderApplied = (name: string) => `\u23f0${name}`;

/**
 * What a turn applies once: an event's sequence; for a reminder that ran, the
 * ticket its record names next (0: none), unless the turn set or forgot that
 * reminder itself. Undefined for the other kinds.
 */
export function occurrenceOf(act: Activation, letter: Letter): { subscription: string; seq: number } | undefined {
  if (letter.kind.name === "event") {
    const event = letter.payload as MeshEvent;
    return { subscription: event.appliedKey, seq: event.seq };
  }
  if (letter.kind.name !== "reminder") return undefined;
  const turn = letter.payload as ReminderTurn;
  const subscription = reminderApplied(turn.name);
  // The turn set or forgot this reminder itself: what it noted stands.
  if (!reminderLive(act.commits!.noted(subscription), turn.ticket)) return undefined;
  // A reminder stored before tickets, once: it is FORGOTTEN, so that it does not run again.
  return { subscription, seq: turn.next === 0 && turn.ticket === LEGACY_TICKET ? FORGOTTEN : turn.next };
}

/** A reminder turn's answer to the reminders room: whether it ran, and the ticket the record names after it (0: none). */
export function reminderOutcome(act: Activation, letter: Letter, ran: boolean, applied: { seq: number } | undefined): ReminderOutcome {
  const ticket = applied?.seq ?? act.commits!.noted(reminderApplied((letter.payload as ReminderTurn).name));
  return { ran, ticket: ticket !== undefined && ticket > 0 ? ticket : 0 };
}

/** Per activation's commits and reminder name: the tickets whose removal waits for a commit (a new occurrence never takes one). */
const removing = new WeakMap<object, Map<string, Set<number>>>();

/**
 * Reminder `name` of a durable activation, and its record as the reminders
 * room reads and changes it. Throws BAD_REQUEST outside a turn (a remind
 * after its turn ended would be stored with no commit to name it).
 */
export function reminderOf(
  act: Activation,
  name: string,
): { capability: string; actorType: string; id: string; name: string; record: ReminderRecord } {
  const commits = act.commits!;
  if (!act.busy) throw new MeshError("BAD_REQUEST", `remind and forget are for a turn of ${act.pid}: await them in its handler`);
  const turn = commits.turnsEnded;
  let byName = removing.get(commits);
  if (byName === undefined) removing.set(commits, (byName = new Map()));
  const record: ReminderRecord = {
    ticket: (n) => commits.noted(reminderApplied(n)),
    note: (n, ticket, then) => commits.note(reminderApplied(n), ticket, then),
    // A reentrant class's nested turns end inside its outer one: the outer turn is still running then.
    inTurn: () => !act.gone && act.busy && (commits.turnsEnded === turn || (act.instance.constructor as ActorClass).reentrant === true),
    removing: (n) => {
      let tickets = byName.get(n);
      if (tickets === undefined) byName.set(n, (tickets = new Set()));
      return tickets;
    },
  };
  return { capability: act.capability, actorType: act.actorType, id: act.id, name, record };
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
  timer: (act, letter) => {
    const timer = letter.payload as ActorTimer;
    return timer.runs() ? act.instance.handleTimer!(timer.name, act) : SKIPPED; // cleared, or set again, since it fired
  },
  reminder: (act, letter) => {
    const { name, info, ticket } = letter.payload as ReminderTurn;
    // Not the occurrence the record names (replaced, forgotten, or it ran and its node died before it moved on): nothing runs.
    if (!reminderLive(appliedOf(act).get(reminderApplied(name)), ticket)) return SKIPPED;
    if (typeof act.instance.handleReminder !== "function")
      throw new Error(`${act.actorType} has no handleReminder method for reminder "${name}"`);
    return act.instance.handleReminder(name, info, act);
  },
  event: (act, letter) => {
    const event = letter.payload as MeshEvent;
    // Applied already (a redelivery): answered false, once what applied it is stored.
    if (event.seq <= (appliedOf(act).get(event.appliedKey) ?? 0)) return SKIPPED;
    if (typeof act.instance.handleEvent !== "function") throw new Error(`${act.actorType} has no handleEvent method`);
    return act.instance.handleEvent(event, act);
  },
};

/** Runs the handler `letter` is for and returns what it returned (SKIPPED: an event applied before). Throws what the handler throws. */
export function runHandler(act: Activation, letter: Letter): unknown {
  return HANDLERS[letter.kind.name](act, letter);
}
