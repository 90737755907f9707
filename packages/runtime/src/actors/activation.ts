import { MeshError } from "@mesh/core";
import { checkAcross, copyAcross, decodeReply, messageOf, replyError } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import type { Expiring } from "@mesh/core/internal";
import type { GroupCommit } from "../state/group-commit.js";
import type { Scheduled } from "../timers/scheduler.js";
import { tracing, within } from "../operations/tracing.js";
import type { Context } from "../operations/tracing.js";
import type { OutMessage } from "../state/record.js";
import type { NodeMetrics } from "../operations/metrics.js";
import type {
  Actor,
  ActorClass,
  CallContext,
  CallResult,
  DeactivateReason,
  MeshRequest,
  RefOptions,
  RemindOptions,
  ReplyTo,
  TimerOptions,
} from "../types.js";
import { publishHeaders, turnContext } from "./turn-spans.js";
import { ActorRef } from "./ref.js";

/** What waits in all of a node's mailboxes: letters, and bytes of those that came from the wire. */
export interface MailboxLoad {
  letters: number;
  bytes: number;
}

/** What an activation's context asks of its node: timers, reminders, calls to other actors (with its call chain), publishing. */
export interface ContextHost {
  /** The node's id (one field for all its activations). */
  nodeId: string;
  /** The node's mailbox load, which every mailbox keeps up to date. */
  readonly load: MailboxLoad;
  setTimer(act: Activation, name: string, ms: number, options?: TimerOptions): void;
  clearTimer(act: Activation, name: string): boolean;
  call<R>(act: Activation, request: MeshRequest): Promise<CallResult<R>>;
  cast(act: Activation, request: MeshRequest): Promise<void>;
  remind(act: Activation, name: string, options: RemindOptions): Promise<void>;
  forget(act: Activation, name: string): Promise<void>;
  /** Checks a message a turn publishes (ctx.publish). Throws BAD_REQUEST. */
  outgoing(subject: string, data: unknown, headers: Record<string, string> | undefined): OutMessage;
}

/** An actor's stream events: the sequence it applied per subscription (plain actors), and what its current turn publishes. */
export interface ActorEvents {
  applied: Map<string, number> | undefined;
  outbox: OutMessage[] | undefined;
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

/** Letters made in this process: the last one's id. */
let lettersMade = 0;

/** A message waiting in a mailbox or running its turn. */
export class Letter implements Expiring {
  /** Sequential, wrapping at 2^32: its key while the node watches its deadline (a SlotTable, see slot-table.ts). */
  readonly id = (lettersMade = (lettersMade + 1) >>> 0);
  settled = false;
  /** Its size on the wire, for a call or cast from another node or the ingress (0 from this process). */
  bytes = 0;
  /** The span its turn's span goes under (the caller's, or the remote hop's), while tracing is on. */
  readonly trace: Context | undefined = tracing.on ? tracing.parent : undefined;
  constructor(
    readonly cast: boolean,
    readonly payload: unknown,
    readonly initArg: unknown,
    /** `performance.now()` time after which the caller has given up (Infinity for casts). */
    readonly deadline: number,
    readonly timeoutMs: number,
    readonly reply: ReplyTo,
    private readonly metrics?: NodeMetrics,
    /** A turn the node gives itself: a timer ("timer", payload: its name), a reminder ("reminder", payload: { name, info }), or a stream event ("event", payload: a MeshEvent). */
    readonly system?: "timer" | "reminder" | "event",
    /** Calls between actors: the actors whose turns wait on this call. */
    readonly chain?: readonly string[],
  ) {}

  /** A cast's letter (`bytes`: its size, when it came from the wire). */
  static cast(payload: unknown, initArg: unknown, bytes: number): Letter {
    const letter = new Letter(true, payload, initArg, Infinity, 0, NO_REPLY);
    letter.bytes = bytes;
    return letter;
  }

  /** The caller's deadline passed: it gets TIMEOUT, and the letter will not run. */
  expire(): void {
    if (!this.settled) this.metrics?.error("TIMEOUT");
    this.fail(new MeshError("TIMEOUT", `no reply within ${this.timeoutMs} ms`));
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

const DEAD = 1;
const USED = 2;
const CLEARING = 4;

/**
 * One live actor instance: its pid, its mailbox, and whether it holds the
 * turn. `busy` is true while a handler (or onActivate) runs; letters that
 * arrive meanwhile wait in the mailbox, in order. It is also the CallContext
 * handlers receive, so an idle actor costs one object besides its own.
 */
export class Activation implements CallContext {
  busy = false;
  /** Why it ends once the current message is done (it is out of the actor table already). */
  leaving: DeactivateReason | undefined;
  /** Durable actors: the commits of its state (set once the state is loaded). */
  commits: GroupCommit | undefined;
  /** The passivation tick of its last turn (see also `used`). */
  lastTick = 0;
  /** `dead`, `used` and `clearing` in one field: 16 bytes less per actor than three (bench: bytes per idle actor). */
  #flags = USED;
  /** Its timers by name; undefined while it never set one. */
  timers: Map<string, Scheduled> | undefined;
  /** The call chain of the turn it runs: the actors waiting on it (for ctx.call). */
  chain: readonly string[] | undefined;
  /** Stream events it applied and what its turn publishes; undefined until it handles an event or publishes (most actors). */
  events: ActorEvents | undefined;
  /** Waiting letters; undefined while none ever waited (most actors). */
  #queue: Letter[] | undefined;
  readonly pid: string;

  constructor(
    readonly instance: Actor,
    readonly capability: string,
    readonly actorType: string,
    readonly id: string,
    readonly shard: number,
    incarnation: number,
    private readonly host: ContextHost,
  ) {
    // join() builds one flat string; a template literal would keep a tree of string pieces alive.
    this.pid = [host.nodeId, "/", actorType, "/", id, "#", incarnation].join("");
  }

  /** The node it lives on. */
  get nodeId(): string {
    return this.host.nodeId;
  }

  /** It ended: it takes no more turns. */
  get dead(): boolean {
    return (this.#flags & DEAD) !== 0;
  }
  set dead(on: boolean) {
    this.#flags = on ? this.#flags | DEAD : this.#flags & ~DEAD;
  }

  /** A turn ran since the eviction hand passed (passivation.ts). */
  get used(): boolean {
    return (this.#flags & USED) !== 0;
  }
  set used(on: boolean) {
    this.#flags = on ? this.#flags | USED : this.#flags & ~USED;
  }

  /** The current turn called clearState(). */
  get clearing(): boolean {
    return (this.#flags & CLEARING) !== 0;
  }
  set clearing(on: boolean) {
    this.#flags = on ? this.#flags | CLEARING : this.#flags & ~CLEARING;
  }

  /** The context of the turn it runs (its span active while tracing is on), for a handler's own spans. */
  get traceContext(): Context {
    return turnContext(this);
  }

  call<R = unknown>(request: MeshRequest): Promise<CallResult<R>> {
    return tracing.on ? fromTurn(this, this.host, request, this.host.call<R>) : this.host.call<R>(this, request);
  }

  cast(request: MeshRequest): Promise<void> {
    return tracing.on ? fromTurn(this, this.host, request, this.host.cast) : this.host.cast(this, request);
  }

  ref<C extends ActorClass>(actor: C, id: string, options: RefOptions = {}): ActorRef<InstanceType<C>> {
    return new ActorRef<InstanceType<C>>({ call: (r) => this.call(r), cast: (r) => this.cast(r) }, actor, id, options);
  }

  remind(name: string, options: RemindOptions): Promise<void> {
    return this.host.remind(this, name, options);
  }

  forget(name: string): Promise<void> {
    return this.host.forget(this, name);
  }

  setTimer(name: string, ms: number, options?: TimerOptions): void {
    this.host.setTimer(this, name, ms, options);
  }

  clearTimer(name: string): boolean {
    return this.host.clearTimer(this, name);
  }

  publish(subject: string, data: unknown, headers?: Record<string, string>): void {
    const message = this.host.outgoing(subject, data, tracing.on ? publishHeaders(this, subject, headers) : headers);
    const events = (this.events ??= { applied: undefined, outbox: undefined });
    (events.outbox ??= []).push(message);
  }

  /** What the turn that just ended published; the next turn starts with nothing. */
  takeOutbox(): OutMessage[] | undefined {
    const out = this.events?.outbox;
    if (out !== undefined) this.events!.outbox = undefined;
    return out;
  }

  clearState(): void {
    if (this.commits === undefined)
      throw new MeshError("BAD_REQUEST", `clearState() is for durable actors (static durable = true); ${this.actorType} is not durable`);
    this.clearing = true;
  }

  /** Runs the instance's onDeactivate, if it has one, for at most `timeoutMs`; a failure is logged, never thrown. */
  async deactivate(reason: DeactivateReason, timeoutMs: number, log: Logger): Promise<void> {
    if (typeof this.instance.onDeactivate !== "function") return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.instance.onDeactivate(reason),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`onDeactivate took over ${timeoutMs} ms`)), timeoutMs))),
      ]);
    } catch (err) {
      log.warn({ pid: this.pid, err: messageOf(err) }, "mesh: onDeactivate failed");
    } finally {
      clearTimeout(timer);
    }
  }

  /** How many letters wait. */
  get waiting(): number {
    return this.#queue?.length ?? 0;
  }

  enqueue(letter: Letter): void {
    (this.#queue ??= []).push(letter);
    this.#count(letter, 1);
  }

  /** Puts a letter back at the head of the mailbox (its turn waits for the lease). */
  requeue(letter: Letter): void {
    (this.#queue ??= []).unshift(letter);
    this.#count(letter, 1);
  }

  /** The next waiting letter, if any. */
  dequeue(): Letter | undefined {
    const letter = this.#queue?.shift();
    if (letter !== undefined) this.#count(letter, -1);
    return letter;
  }

  /** Removes and returns every waiting letter. */
  drain(): Letter[] {
    const all = this.#queue ?? [];
    this.#queue = undefined;
    for (const letter of all) this.#count(letter, -1);
    return all;
  }

  #count(letter: Letter, sign: 1 | -1): void {
    const load = this.host.load;
    load.letters += sign;
    load.bytes += sign * letter.bytes;
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
 * class that shares values, the value itself once checked. Throws BAD_REPLY.
 */
export function replyAcross(pid: string, result: unknown, shared: boolean): unknown {
  return shared ? checkAcross(result, "BAD_REPLY", `the reply of ${pid}`) : copyAcross(result, "BAD_REPLY", `the reply of ${pid}`);
}

/** A call or cast a turn makes while tracing is on: its span goes under the turn's (turn-spans.ts). */
function fromTurn<T>(
  act: Activation,
  host: ContextHost,
  request: MeshRequest,
  send: (this: ContextHost, act: Activation, request: MeshRequest) => T,
): T {
  return within(turnContext(act), () => send.call(host, act, request));
}

/** True for a promise or any other thenable. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}
