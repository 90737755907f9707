import { MeshError } from "@mesh/core";
import type { WireRequest } from "@mesh/core/internal";
import { NoResponders } from "@mesh/transport";
import type { FlowWindow, PendingRequest } from "@mesh/transport";
import type { Histogram } from "../operations/metrics.js";
import type { ReplyTo } from "../types.js";

/** How long past a call's time its caller waits for the owner's own TIMEOUT, at most (and a fifth of the time). */
export const REPLY_GRACE_MS = 100;

/** A request with its shard and the owner it is routed to. */
export interface Routed extends WireRequest {
  shard: number;
  owner: string;
  /** The id's XXH32, when routing computed it here (the actor table's look-up reuses it). */
  hash?: number;
}

/** What a remote call needs from its node when the owner turns out to be gone. */
export interface Rerouter {
  reroute(call: RemoteCall): void;
  /** The call's envelope with the time it has left now. */
  encodeNow(call: RemoteCall): Uint8Array;
}

/**
 * A call on its way to another node, for a local caller (its sink settles a
 * promise) or for a remote one whose call this node forwards (its sink is the
 * original NATS reply). The sink learns the outcome exactly once: the owner's
 * reply, TIMEOUT at the deadline, or, when the owner had no responders (the
 * call was never delivered), the outcome on the owner it is re-routed to.
 */
export class RemoteCall implements PendingRequest, ReplyTo {
  /** Times it was re-routed to another owner. */
  reroutes = 0;
  sentIn: unknown = undefined;
  window: FlowWindow | undefined = undefined;
  mark = 0;
  readonly #sentAt: number;
  /**
   * When this node gives up: a little after the call's own time (`budgetEnd`), which the owner is given as its
   * budget, so that the owner's TIMEOUT, which says what the actor was busy with, arrives first.
   */
  readonly deadline: number;

  constructor(
    readonly request: Routed,
    /** When the call's time is up (`performance.now()`): what is left of it goes to the owner. */
    readonly budgetEnd: number,
    readonly sink: ReplyTo,
    private readonly rerouter: Rerouter,
    private readonly latency?: Histogram,
    /** When it was sent (`performance.now()`), if the caller read the clock already. */
    sentAt = performance.now(),
  ) {
    this.#sentAt = sentAt;
    this.deadline = budgetEnd + Math.min(REPLY_GRACE_MS, Math.max(0, budgetEnd - this.#sentAt) / 5);
  }

  /** It waits for room on the way (flow control) until its own time is up, not the grace after it. */
  get waitUntil(): number {
    return this.budgetEnd;
  }

  /** It waited for room: its envelope with what is left of its time. */
  envelopeNow(): Uint8Array {
    return this.rerouter.encodeNow(this);
  }

  /** The owner's reply envelope arrived, in a message handled at `at`. */
  reply(data: Uint8Array, at: number): void {
    this.latency?.observe(at - this.#sentAt);
    this.sink.bytes(data);
  }

  /** Handed on again (forwarded or re-routed): that owner's reply envelope. */
  bytes(data: Uint8Array): void {
    this.sink.bytes(data);
  }

  /** Re-routed to this node: the local actor answered. */
  succeed(pid: string, result: unknown, shared?: boolean): void {
    this.sink.succeed(pid, result, shared);
  }

  /** No responders: re-route. Anything else is the outcome. */
  fail(err: Error): void {
    if (err instanceof NoResponders) this.rerouter.reroute(this);
    else this.sink.fail(err);
  }

  expire(): void {
    this.sink.fail(new MeshError("TIMEOUT", `no reply from node ${this.request.owner} within ${this.request.timeoutMs} ms`));
  }
}
