// What reminders need from their node (ReminderNode), what a reminder's turn
// answers (ReminderOutcome), and a durable actor's record as reminders read
// and change it (ReminderRecord): the seam between the timers room and the
// actors room.
import { MeshError } from "@mesh/core";
import type { ReminderInfo } from "../types.js";
import type { Reminder } from "./reminder-entry.js";

/** What a reminder's turn came to: whether handleReminder ran, and the ticket the actor's record names after it (0: none). */
export interface ReminderOutcome {
  ran: boolean;
  ticket: number;
}

/** What reminders need from their node. */
export interface ReminderNode {
  /** Whether this node owns (capability, shard) in its current view. */
  owns(capability: string, shard: number): boolean;
  /** Resolves once the node's lease holds (re-validating it first when it lapsed); rejects once the node stops. */
  held(): Promise<void>;
  /** Runs handleReminder as a turn of the actor (activating it), if its record names `ticket`, then names `next` (0: none); resolves once the turn (and its commit) is done. */
  fire(reminder: Reminder, shard: number, info: ReminderInfo, occurrence: { ticket: number; next: number }): Promise<ReminderOutcome>;
}

/** A durable actor's record, as reminders use it: the ticket of each reminder's live occurrence. */
export interface ReminderRecord {
  ticket(name: string): number | undefined;
  /** Names `ticket` (0: none) as the live occurrence of `name` from the end of the turn on; `then` runs once its commit landed. */
  note(name: string, ticket: number, then?: () => void): void;
  /** The tickets of `name` whose removal waits for a commit: a new occurrence takes none of them. */
  removing(name: string): Set<number>;
  /** The turn that asked is still running: what it notes goes into its commit. */
  inTurn(): boolean;
}

/** The node's reminders, for a durable actor (else BAD_REQUEST, thrown as the handler's own error). */
export function remindersOf<R>(
  act: { commits?: unknown; actorType: string; instance: object },
  reminders: R | undefined,
  needs?: "handleReminder",
): R {
  if (act.commits === undefined || reminders === undefined)
    throw new MeshError("BAD_REQUEST", `reminders are for durable actors (static durable = true); ${act.actorType} is not durable`);
  if (needs && typeof (act.instance as { handleReminder?: unknown }).handleReminder !== "function")
    throw new MeshError("BAD_REQUEST", `${act.actorType} has no handleReminder method`);
  return reminders;
}
