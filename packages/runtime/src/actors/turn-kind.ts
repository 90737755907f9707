// What a turn runs for: a call, a cast, a timer, a reminder or a stream
// event. Each letter holds one of the kinds below, and what differs between
// them lives in this table (and in two beside it: which handler runs,
// handlers.ts, and how its span reads, turn-spans.ts), not in `if`s at the
// places that move letters. A letter keeps its kind wherever it goes: queued,
// handed to a fresh activation after a crash, to a new owner on a move, or
// back through the router. Imports: the bottom floor.
import { Kind } from "@mesh/core/internal";

/** What becomes of a letter still waiting when its actor moves to another node. */
export type OnMove =
  /** It goes on to the actor's owner, as a request of this wire kind. */
  | { readonly to: "owner"; readonly wire: Kind }
  /**
   * It runs here if this node owns the actor again; else it fails back to
   * its sender (the reminders room keeps the reminder due, so the new owner
   * fires it): never sent on as a call.
   */
  | { readonly to: "here-or-sender" }
  /** It ends with its activation (a timer belongs to the activation that set it). */
  | { readonly to: "nobody" };

/** What becomes of a letter still waiting when its activation crashes. */
export type OnCrash =
  /** It waits in the mailbox of the fresh activation that replaces the crashed one. */
  | "fresh"
  /** It ends with the crashed activation (a timer ended with it). */
  | "ends";

/** What differs between the kinds of turn. */
interface Traits<N extends string> {
  readonly name: N;
  /** Someone waits for the turn's outcome: the letter is watched for its deadline, and its failures go to that caller. */
  readonly caller: boolean;
  /** A full mailbox (or node limit) may refuse it with OVERLOADED; the node's own turns are never refused. */
  readonly refusable: boolean;
  /** The counter a served turn of this kind adds to. */
  readonly served: "callsServed" | "castsServed" | "timersServed" | "remindersServed" | "eventsServed";
  readonly onMove: OnMove;
  readonly onCrash: OnCrash;
}

/** The kinds of turn, one entry each. */
export const TurnKinds = {
  call: { name: "call", caller: true, refusable: true, served: "callsServed", onMove: { to: "owner", wire: Kind.CALL }, onCrash: "fresh" },
  cast: { name: "cast", caller: false, refusable: true, served: "castsServed", onMove: { to: "owner", wire: Kind.CAST }, onCrash: "fresh" },
  timer: { name: "timer", caller: false, refusable: false, served: "timersServed", onMove: { to: "nobody" }, onCrash: "ends" },
  reminder: {
    name: "reminder",
    caller: true,
    refusable: false,
    served: "remindersServed",
    onMove: { to: "here-or-sender" },
    onCrash: "fresh",
  },
  event: {
    name: "event",
    caller: true,
    refusable: false,
    served: "eventsServed",
    onMove: { to: "owner", wire: Kind.EVENT },
    onCrash: "fresh",
  },
} as const satisfies { readonly [N in string]: Traits<N> };

/** One kind of turn: `kind.name` tells which. */
export type TurnKind = (typeof TurnKinds)[keyof typeof TurnKinds];

/** A kind's name: "call", "cast", "timer", "reminder" or "event". */
export type TurnKindName = TurnKind["name"];
