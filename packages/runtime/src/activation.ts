import { MeshError } from "@mesh/core";
import type { Expiring } from "@mesh/core/internal";
import type { Actor, CallContext } from "./actor.js";

/** What a call resolves with: the activation's pid and the handler's reply. */
export interface CallResult<R = unknown> {
  pid: string;
  result: R;
}

/** A message waiting in a mailbox or running its turn. */
export class Letter implements Expiring {
  settled = false;
  constructor(
    readonly cast: boolean,
    readonly payload: unknown,
    readonly initArg: unknown,
    /** `performance.now()` time after which the caller has given up (Infinity for casts). */
    readonly deadline: number,
    readonly timeoutMs: number,
    readonly resolve: (result: CallResult) => void,
    readonly reject: (err: Error) => void,
  ) {}

  /** The caller's deadline passed: it gets TIMEOUT, and the letter will not run. */
  expire(): void {
    this.fail(new MeshError("TIMEOUT", `no reply within ${this.timeoutMs} ms`));
  }

  succeed(result: CallResult): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(result);
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}

/**
 * One live actor instance: its pid, its mailbox, and whether it holds the turn.
 * `busy` is true while a handler (or onActivate) runs; letters that arrive
 * meanwhile wait in `queue`, in order.
 */
export class Activation {
  busy = false;
  dead = false;
  queue: Letter[] = [];
  readonly ctx: CallContext;

  constructor(
    readonly instance: Actor,
    readonly actorType: string,
    readonly id: string,
    readonly shard: number,
    readonly pid: string,
    nodeId: string,
  ) {
    this.ctx = { id, actorType, pid, shard, nodeId };
  }
}

/** True for a promise or any other thenable. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}
