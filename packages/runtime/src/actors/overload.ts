// What may wait in mailboxes (docs/behaviour.md "Overload"): a letter that
// would wait past its actor's mailbox, or the node's letters or bytes, is
// refused with OVERLOADED before it is queued. Only the kinds of turn that
// may be refused are (turn-kind.ts): the node's own turns never are.
// Imports: the actors room, operations/metrics.ts, the bottom floor.
import { MeshError } from "@mesh/core";
import type { NodeMetrics } from "../operations/metrics.js";
import type { ActorClass } from "../types.js";
import type { Activation, MailboxLoad } from "./activation.js";
import type { Letter } from "./letter.js";

/** What may wait in mailboxes, and what waits now. */
export interface Limits {
  readonly maxMailbox: number;
  /** The longest a turn may run, for classes without `static maxTurnMs` (0: no limit; turn-deadline.ts). */
  readonly maxTurnMs: number;
  readonly maxQueuedLetters: number;
  readonly maxQueuedBytes: number;
  readonly load: MailboxLoad;
}

/** Why a message was refused with OVERLOADED: the actor's mailbox, or the node's letters or bytes. */
export type Overload = "mailbox" | "letters" | "bytes";

/** OVERLOADED from a mailbox limit: which limit it met (a node's letters or bytes refuse every actor of the node). */
export class Refusal extends MeshError {
  constructor(
    readonly why: Overload,
    message: string,
  ) {
    super("OVERLOADED", message);
  }
}

/** The refusal of a letter that would wait past a limit (counted), or undefined when it may wait. */
export function refusal(act: Activation, letter: Letter, limits: Limits, metrics: NodeMetrics): Refusal | undefined {
  const { load, ...max } = limits;
  const mailbox = (act.instance.constructor as ActorClass).maxMailbox ?? max.maxMailbox;
  let why: Overload;
  let what: string;
  if (act.waiting >= mailbox) {
    why = "mailbox";
    what = `the mailbox of ${act.pid} holds ${act.waiting} messages, its limit`;
  } else if (load.letters >= max.maxQueuedLetters) {
    why = "letters";
    what = `node ${act.nodeId} has ${load.letters} messages waiting, its maxQueuedLetters`;
  } else if (load.bytes + letter.bytes > max.maxQueuedBytes) {
    why = "bytes";
    what = `node ${act.nodeId} has ${load.bytes} bytes of messages waiting, and ${letter.bytes} more would pass its maxQueuedBytes`;
  } else return undefined;
  metrics.overloaded[why]++;
  metrics.error("OVERLOADED");
  return new Refusal(why, `${what}: the ${letter.kind.name} was refused before it was queued and did not run; retry later`);
}
