// What a dispatcher holds for one event it read and has not done, and each
// attempt to deliver it: the attempt is where the answer comes back (no
// promise per event) and knows the node it went to, so that an attempt to a
// node that left the view is given up at once rather than at its timeout.
// Imports: the bottom floor.
import type { MeshError } from "@mesh/core";
import { decodeReply, replyError } from "@mesh/core/internal";
import type { ReplyTo } from "../types.js";

/** An event read and not yet done. Nothing of its message is kept: a message's data is a view of the whole buffer it was read in. */
export class PendingEvent {
  done = false;
  /** Its outcome, once done, as the stored totals count it: another partition's (not counted), applied, or dead-lettered. */
  outcome: "other" | "applied" | "dead" = "applied";
  /** Deliveries that count towards maxDeliveries. */
  deliveries = 0;
  /** Failed deliveries, counted or not: the next retry's delay doubles with each. */
  failures = 0;

  constructor(
    readonly seq: number,
    readonly id: string | undefined,
    readonly subject: string,
    /** Its data, copied. */
    readonly data: Uint8Array,
    /** Its headers, read once (for its key, then its delivery); null when it has none. */
    readonly headers: Record<string, string> | null,
    /** When the stream stored it (epoch ms). */
    readonly time: number,
    /** Why its key could not be read (it is dead-lettered at once). */
    readonly bad: MeshError | undefined,
  ) {}
}

/** Where attempts' outcomes go (the dispatcher). */
export interface Outcomes {
  /** Applied (now, or before: a duplicate), or failed with `err`. */
  outcome(attempt: Attempt, applied: boolean, err: Error | undefined): void;
}

/** One delivery of an event. */
export class Attempt implements ReplyTo {
  /** The node it was sent to (undefined: it failed before it was routed). */
  owner: string | undefined;

  constructor(
    readonly event: PendingEvent,
    private readonly to: Outcomes,
  ) {}

  succeed(_pid: string, result: unknown): void {
    this.to.outcome(this, result === true, undefined);
  }

  fail(err: Error): void {
    this.to.outcome(this, false, err);
  }

  bytes(data: Uint8Array): void {
    let reply;
    try {
      reply = decodeReply(data);
    } catch (err) {
      return this.fail(err as Error);
    }
    if (reply.ok) this.succeed(reply.pid, reply.result);
    else this.fail(replyError(reply));
  }
}
