// Letters: what waits in a mailbox or runs a turn, made by one named factory
// per kind of turn (turn-kind.ts), and the replies that settle a caller in
// this process. A letter keeps its kind, its caller, its deadline and its call
// chain wherever it goes. Imports: the actors room, the bottom floor.
import { MeshError } from "@mesh/core";
import { checkAcross, checkValue, copyAcross, copyValue, decodeReply, now, replyError, valueRefused } from "@mesh/core/internal";
import type { Expiring } from "@mesh/core/internal";
import { tracing } from "../operations/tracing.js";
import type { Context } from "../operations/tracing.js";
import type { NodeMetrics } from "../operations/metrics.js";
import type { ActorClass, CallResult, ReminderInfo, ReplyTo, StreamEvent } from "../types.js";
import { TurnKinds } from "./turn-kind.js";
import type { TurnKind } from "./turn-kind.js";

/** An actor's address on a node: the four things that name one actor and its shard. */
export interface Address {
  readonly capability: string;
  readonly actorType: string;
  readonly id: string;
  readonly shard: number;
  /** The id's XXH32 (the shard is this modulo the shard count), when the router computed it: the actor table's look-up reuses it. */
  readonly hash?: number;
}

/**
 * A ReplyTo that settles a promise with a CallResult: the caller is in this
 * process, so it gets its own copy of the result (BAD_REPLY when the value
 * model refuses it, as on the wire). It also decodes a remote owner's reply envelope.
 */
export class PromiseReply implements ReplyTo {
  constructor(
    readonly resolve: (result: CallResult) => void,
    readonly reject: (err: Error) => void,
  ) {}
  succeed(pid: string, result: unknown, shared = false): void {
    let copy: unknown;
    try {
      copy = replyAcross(pid, result, shared);
    } catch (err) {
      return this.reject(err as Error);
    }
    this.resolve({ pid, result: copy });
  }
  fail(err: Error): void {
    this.reject(err);
  }
  bytes(data: Uint8Array): void {
    try {
      const reply = decodeReply(data);
      if (reply.ok) this.resolve({ pid: reply.pid, result: reply.result });
      else this.reject(replyError(reply));
    } catch (err) {
      this.reject(err as Error);
    }
  }
}

/** Nobody waits for a cast's outcome. */
export const NO_REPLY: ReplyTo = { succeed() {}, fail() {}, bytes() {} };

/** A reminder's turn: which reminder, and how it stands. */
export interface ReminderTurn {
  readonly name: string;
  readonly info: ReminderInfo;
  /** The occurrence's ticket: it runs only if the actor's record names it (timers/reminders.ts). */
  readonly ticket: number;
  /** The ticket the record names once it ran: the next occurrence's, or 0 (none: a one-shot reminder). */
  readonly next: number;
}

/** What a letter whose turn ended waits on (its state's commit, its messages): a TIMEOUT says so. */
export function afterTurn(pid: string, what: string): { busyNote(): string } {
  return { busyNote: () => `${pid}'s turn had ended; it was still ${what}` };
}

/** Letters made in this process: the last one's id. */
let lettersMade = 0;

/** A message waiting in a mailbox or running its turn. Made by the factories below, one per kind. */
export class Letter implements Expiring {
  /** Sequential, wrapping at 2^32: its key while the node watches its deadline (timeout-set.ts) and its running turn. */
  readonly id = (lettersMade = (lettersMade + 1) >>> 0);
  settled = false;
  /** Its size on the wire, for a message from another node or the ingress (0 from this process). */
  bytes = 0;
  /** The activation it waits on, once watched (its own, while its turn runs): a TIMEOUT says what that one was busy with. */
  waitsOn: { busyNote(): string } | undefined = undefined;
  /**
   * When its turn went async, while it runs (turn-deadline.ts): whole milliseconds of `performance.now()` as an
   * int32, which wraps (ages are taken `| 0`): a small integer is kept in the letter, where a fraction would be a
   * number allocated with each letter.
   */
  turnStarted = 0;
  /** The span its turn's span goes under (the caller's, or the remote hop's), while tracing is on. */
  readonly trace: Context | undefined = tracing.on ? tracing.parent : undefined;

  private constructor(
    readonly kind: TurnKind,
    /** A call's or cast's payload; a timer's ActorTimer; a reminder's ReminderTurn; an event's StreamEvent. */
    readonly payload: unknown,
    readonly initArg: unknown,
    /** `performance.now()` time after which the caller has given up (Infinity when nobody waits). */
    readonly deadline: number,
    readonly timeoutMs: number,
    readonly reply: ReplyTo,
    private readonly metrics: NodeMetrics | undefined,
    /** Calls between actors: the actors whose turns wait on this call. */
    readonly chain: readonly string[] | undefined,
  ) {}

  /** A call: `reply` learns its outcome; the caller gives up at `deadline`. */
  static call(c: {
    payload: unknown;
    initArg: unknown;
    deadline: number;
    timeoutMs: number;
    reply: ReplyTo;
    metrics: NodeMetrics;
    chain?: readonly string[] | undefined;
    bytes?: number;
  }): Letter {
    const letter = new Letter(TurnKinds.call, c.payload, c.initArg, c.deadline, c.timeoutMs, c.reply, c.metrics, c.chain);
    if (c.bytes !== undefined) letter.bytes = c.bytes;
    return letter;
  }

  /** A cast (`bytes`: its size, when it came from the wire). */
  static cast(c: { payload: unknown; initArg: unknown; bytes?: number }): Letter {
    const letter = new Letter(TurnKinds.cast, c.payload, c.initArg, Infinity, 0, NO_REPLY, undefined, undefined);
    if (c.bytes !== undefined) letter.bytes = c.bytes;
    return letter;
  }

  /** A firing of one of the actor's timers. */
  static timer(timer: { readonly name: string }): Letter {
    return new Letter(TurnKinds.timer, timer, undefined, Infinity, 0, NO_REPLY, undefined, undefined);
  }

  /** The turn of a due reminder: `reply` succeeds once it (and its commit) is done. */
  static reminder(c: { turn: ReminderTurn; timeoutMs: number; reply: ReplyTo; metrics: NodeMetrics }): Letter {
    return new Letter(TurnKinds.reminder, c.turn, undefined, now() + c.timeoutMs, c.timeoutMs, c.reply, c.metrics, undefined);
  }

  /** A stream event's turn: `reply` succeeds with true when applied now, false when applied before. */
  static event(c: { event: StreamEvent; timeoutMs: number; reply: ReplyTo; metrics: NodeMetrics; bytes?: number }): Letter {
    const letter = new Letter(TurnKinds.event, c.event, undefined, now() + c.timeoutMs, c.timeoutMs, c.reply, c.metrics, undefined);
    if (c.bytes !== undefined) letter.bytes = c.bytes;
    return letter;
  }

  /** The caller's deadline passed: it gets TIMEOUT, and the letter will not run. */
  expire(): void {
    if (!this.settled) this.metrics?.error("TIMEOUT");
    this.fail(new MeshError("TIMEOUT", `no reply within ${this.timeoutMs} ms${this.waitsOn ? `: ${this.waitsOn.busyNote()}` : ""}`));
  }

  succeed(pid: string, result: unknown, shared?: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.reply.succeed(pid, result, shared);
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reply.fail(err);
  }
}

/**
 * A payload or initArg from a caller in this process, as the actor gets it:
 * its own copy (or, for a class that shares values, the value once checked).
 * `initArg` undefined or null stays undefined. Throws BAD_REQUEST.
 */
export function incomingAcross(shared: boolean, value: unknown, what: "payload" | "initArg"): unknown {
  if (what === "initArg" && (value === undefined || value === null)) return undefined;
  return shared ? checkAcross(value, "BAD_REQUEST", what) : copyAcross(value, "BAD_REQUEST", what);
}

/**
 * What a caller in this process receives as a reply: its own copy, or, for a
 * class that shares values, the value itself once checked. Throws BAD_REPLY,
 * which names `from`'s pid (asked for only then: an activation may build it on asking).
 */
export function replyAcross(from: string | { readonly pid: string }, result: unknown, shared: boolean): unknown {
  try {
    if (!shared) return copyValue(result);
    checkValue(result);
    return result;
  } catch (err) {
    throw valueRefused(err, "BAD_REPLY", `the reply of ${typeof from === "string" ? from : from.pid}`);
  }
}

/**
 * A reply that leaves after its turn (once the turn's state is stored, or its
 * messages published), as the turn left it: copied now, so that the turns that
 * run meanwhile cannot change what the caller receives (BAD_REPLY, when the
 * value model refuses it, is kept for then too). A class that shares values
 * shares the reply as it is when it leaves.
 */
export function replyAsLeft(pid: string, result: unknown, shared: boolean): (letter: Letter) => void {
  if (shared || typeof result !== "object" || result === null) return (letter) => letter.succeed(pid, result, shared);
  let copy: unknown;
  try {
    copy = replyAcross(pid, result, false);
  } catch (err) {
    return (letter) => letter.fail(err as Error);
  }
  return (letter) => letter.succeed(pid, copy, true); // the copy is the caller's own: checked, not copied again
}

/** True when the activation's class shares values with local callers (`static shareValues`): its replies are not copied. */
export function sharesValues(act: { instance: object }): boolean {
  return (act.instance.constructor as ActorClass).shareValues === true;
}

/** How an actor stands in a call chain (a letter's `chain`): its whole identity. */
export function chainKey(act: { capability: string; actorType: string; id: string }): string {
  return `${act.capability}/${act.actorType}/${act.id}`;
}

/** CALL_CYCLE for a call whose chain (`cycle`: chain keys) comes back to its last actor, whose turn waits on this call. */
export function callCycle(cycle: readonly string[]): MeshError {
  const self = cycle.at(-1);
  return new MeshError(
    "CALL_CYCLE",
    `call cycle: ${cycle.join(" → ")} (${self} is waiting on this call; make its class reentrant to let it in)`,
  );
}
