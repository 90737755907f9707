import { MeshError, isToken } from "@mesh/core";
import type { TimerOptions } from "./timers.js";
import type { CallResult } from "./activation.js";
import type { MeshRequest } from "./request.js";
import type { ActorRef, RefOptions } from "./ref.js";
import type { ReminderInfo, RemindOptions } from "./reminders.js";

/** What a handler learns about the activation it runs in. */
export interface CallContext {
  /** The actor id. */
  readonly id: string;
  /** The actor type (`static actorType`, else the class name). */
  readonly actorType: string;
  /** This activation's pid: `<nodeId>/<actorType>/<id>#<incarnation>`. */
  readonly pid: string;
  /** The id's shard. */
  readonly shard: number;
  /** The node the activation lives on. */
  readonly nodeId: string;
  /**
   * Durable actors only: deletes the stored state when this turn commits, and
   * ends the activation after the turn; the next message starts from the
   * class's initial state. Throws BAD_REQUEST for an actor that is not durable.
   */
  clearState(): void;
  /**
   * Sets timer `name` (replacing one of the same name): after `ms`, and with
   * `{ every: true }` every `ms` after that, `handleTimer(name)` runs as a turn
   * in this actor's mailbox. In memory: it ends with the activation
   * (docs/timers.md). Throws BAD_REQUEST for a bad name or interval, or a
   * class without handleTimer.
   */
  setTimer(name: string, ms: number, options?: TimerOptions): void;
  /** Clears timer `name`; true when there was one. */
  clearTimer(name: string): boolean;
  /**
   * Calls another actor, as `mesh.call` does, from this turn. If the target's
   * turn already waits on this call (A calls B, B calls A, directly or through
   * others), it fails at once with CALL_CYCLE naming the chain, unless the
   * target's class is `static reentrant = true`: then the call runs now.
   */
  call<R = unknown>(request: MeshRequest): Promise<CallResult<R>>;
  /** Casts to another actor, as `mesh.cast` does. */
  cast(request: MeshRequest): Promise<void>;
  /** A typed reference to another actor, whose calls carry this turn's chain. */
  ref<C extends ActorClass>(actor: C, id: string, options?: RefOptions): ActorRef<InstanceType<C>>;
  /**
   * Durable actors: stores reminder `name` (replacing one of that name), due
   * `at` a time or `afterMs` from now, and again every `everyMs` if given.
   * When due, the node that owns this actor's shard then activates it and
   * runs `handleReminder(name, info)` as a turn; it outlives this activation,
   * its node and restarts (docs/timers.md). Resolves once stored. Throws
   * BAD_REQUEST for bad options, a class without handleReminder or a plain
   * actor; rejects with STORAGE_UNAVAILABLE.
   */
  remind(name: string, options: RemindOptions): Promise<void>;
  /** Deletes reminder `name`; resolves once stored. */
  forget(name: string): Promise<void>;
}

/**
 * Why an activation ends without crashing: the node stops ("shutdown"), the
 * actor's shard now belongs to another node ("rebalance"), it was idle for its
 * idleTimeoutMs ("idle"), it made room under maxActors ("evicted"), or its
 * state was deleted, by clearState() or by an operator ("cleared").
 */
export type DeactivateReason = "shutdown" | "rebalance" | "idle" | "evicted" | "cleared";

/**
 * An actor: a plain class. Only `handleCall` is required. Handlers may be
 * async; an actor handles one message at a time, and an async handler keeps
 * the turn until its promise settles. A handler that throws crashes the actor.
 */
export interface Actor {
  /** Handles a call; the return value (or what its promise resolves to) is the reply. */
  handleCall(payload: any, ctx: CallContext): unknown;
  /** Handles a cast; without it, casts go to handleCall and its reply is dropped. */
  handleCast?(payload: any, ctx: CallContext): unknown;
  /** Runs when a timer set with ctx.setTimer fires, as a turn in the mailbox. Throwing crashes the actor. */
  handleTimer?(name: string, ctx: CallContext): unknown;
  /** Runs when a reminder set with ctx.remind is due, as a turn in the mailbox. Throwing crashes the actor, and the reminder is retried with backoff. */
  handleReminder?(name: string, info: ReminderInfo, ctx: CallContext): unknown;
  /** Runs once, after the constructor, before the first message. Throwing fails the activation. */
  onActivate?(): unknown;
  /** Runs once when the activation ends without a crash (see DeactivateReason). Changes it makes to a durable `state` are not stored. */
  onDeactivate?(reason: DeactivateReason): unknown;
}

/** An actor class: constructed by Mesh with the id and, on first activation, the caller's initArg. */
export interface ActorClass<A extends Actor = Actor> {
  new (id: string, initArg?: any): A;
  /** The actor type name; defaults to the class name. */
  readonly actorType?: string;
  /** True: the instance's `state` property is stored in JetStream KV after every turn that changes it (docs/state.md). */
  readonly durable?: boolean;
  /** Deactivate an actor of this class after this long without a message (Infinity: never). @default the node's idleTimeoutMs; else 15 minutes for durable classes, never for the others */
  readonly idleTimeoutMs?: number;
  /** True: a call from a turn this actor's own turn waits on runs at once (interleaved) instead of failing with CALL_CYCLE. @default false */
  readonly reentrant?: boolean;
  /**
   * Binds the type to these capabilities: a node refuses it under any other
   * with WRONG_CAPABILITY, before anything is activated, and a call may leave
   * `capability` out (the first one listed is used). @default unbound: any capability reaches it (docs/security.md)
   */
  readonly capabilities?: readonly string[];
  /** The same as `capabilities = [capability]`. */
  readonly capability?: string;
  /**
   * True: local callers and the actor share payloads, initArg and replies
   * instead of each getting a copy (values are still checked against the
   * value model). A promise that the actor never keeps or changes what it
   * receives, and callers never change what it returns (docs/behaviour.md). @default false
   */
  readonly shareValues?: boolean;
  readonly name: string;
}

/** The actor type of a class: its `static actorType`, else its name. Throws BAD_REQUEST when neither is usable. */
export function actorTypeOf(actor: ActorClass | string): string {
  const type = typeof actor === "string" ? actor : typeof actor === "function" ? (actor.actorType ?? actor.name) : undefined;
  if (typeof type !== "string" || type === "") {
    throw new MeshError("BAD_REQUEST", `actor must be an actor class or a non-empty actor type name, got ${describe(actor)}`);
  }
  return type;
}

/** Throws BAD_REQUEST unless `cls` is a class with a handleCall method, and its capabilities (if bound) are capability names. */
export function checkActorClass(cls: unknown): ActorClass {
  if (typeof cls !== "function" || typeof (cls as { prototype?: Actor }).prototype?.handleCall !== "function") {
    throw new MeshError("BAD_REQUEST", `actors must be classes with a handleCall method, got ${describe(cls)}`);
  }
  const bound = boundCapabilities(cls as ActorClass);
  if (bound !== undefined && (bound.length === 0 || !bound.every(isToken))) {
    throw new MeshError("BAD_REQUEST", `${(cls as ActorClass).name}.capabilities must be a non-empty list of capability names (1-128 of A-Z a-z 0-9 _ -), got ${JSON.stringify(bound)}`);
  }
  return cls as ActorClass;
}

/** The capabilities a class binds itself to (`static capabilities`, or `static capability`); undefined when unbound. */
export function boundCapabilities(cls: ActorClass): readonly string[] | undefined {
  if (cls.capabilities !== undefined) return Array.isArray(cls.capabilities) ? cls.capabilities : [cls.capabilities as unknown as string];
  return cls.capability !== undefined ? [cls.capability] : undefined;
}

/** WRONG_CAPABILITY: `actorType` is bound to `allowed` and was asked for under `capability`. */
export function wrongCapability(actorType: string, capability: string, allowed: readonly string[]): MeshError {
  return new MeshError("WRONG_CAPABILITY", `actor type "${actorType}" is bound to the capabilit${allowed.length === 1 ? "y" : "ies"} ${allowed.map((c) => `"${c}"`).join(", ")}; it cannot be reached through "${capability}"`);
}

function describe(value: unknown): string {
  return typeof value === "function" ? `function ${value.name || "(anonymous)"}` : JSON.stringify(value) ?? String(value);
}
