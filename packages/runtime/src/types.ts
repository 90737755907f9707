// The bottom floor: the public types that several rooms share (the actor
// contract, calls, references, timers and reminders). It imports nothing of
// the runtime, so every room may import it and no import circle can form
// through it. Logic lives in the rooms; only types live here.

import type { Context } from "@opentelemetry/api";

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
   * The OpenTelemetry context of this turn, its span active while tracing is
   * on (docs/observability.md "Traces"): start a handler's own spans under it
   * (`tracer.startSpan(name, {}, ctx.traceContext)`). With tracing off, the
   * active context.
   */
  readonly traceContext: Context;
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
  ref<C extends ActorClass>(actor: C, id: string, options?: RefOptions): Ref<InstanceType<C>>;
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
  /**
   * Publishes a message to JetStream subject `subject` as part of this turn
   * (docs/events.md "Events out"): `data` as it is (bytes), UTF-8 (a string)
   * or JSON (anything else). A durable actor's messages are stored with its
   * state in the same commit and published after it, at least once, with a
   * message id the stream uses to drop duplicates; nothing is published if
   * the turn fails or does not commit. A plain actor's are published after
   * the turn. The reply waits until JetStream has them. Throws BAD_REQUEST
   * for a bad subject, header or data.
   */
  publish(subject: string, data: unknown, headers?: Record<string, string>): void;
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
  /**
   * Handles an event of a stream the class subscribes to (`static events`),
   * as a turn in the mailbox, one at a time and in stream order for this id
   * (docs/events.md). Throwing crashes the actor, and the event is retried
   * with backoff, then dead-lettered.
   */
  handleEvent?(event: StreamEvent, ctx: CallContext): unknown;
  /** Runs once, after the constructor, before the first message. Throwing fails the activation. */
  onActivate?(): unknown;
  /** Runs once when the activation ends without a crash (see DeactivateReason). Changes it makes to a durable `state` are not stored. */
  onDeactivate?(reason: DeactivateReason): unknown;
  /**
   * What of a plain actor moves to its new owner when its shard moves or its node stops (live migration): a value of
   * the value model. @default the instance's own enumerable fields (not `#private` ones)
   */
  dehydrate?(): unknown;
  /** Takes what dehydrate() returned, on the new owner, instead of onActivate. @default the fields are assigned to the new instance */
  rehydrate?(data: any): unknown;
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
  /** The most messages that may wait in one actor's mailbox; past it a call or cast is refused with OVERLOADED (docs/behaviour.md). @default the node's maxMailbox (1000) */
  readonly maxMailbox?: number;
  /** The longest a turn of this class may run (0: no limit); past it the turn fails with TURN_TIMEOUT and the activation is dropped (docs/behaviour.md). @default the node's maxTurnMs (10000) */
  readonly maxTurnMs?: number;
  /** The JetStream streams whose events this class handles with handleEvent (docs/events.md). */
  readonly events?: EventSubscription | readonly EventSubscription[];
  /** False: a plain actor of this class starts afresh on its new owner instead of moving with its state (a class holding sockets, say). @default true */
  readonly migrate?: boolean;
  /**
   * Durable classes: the version of the shape of `state` this code reads and
   * writes, stored with it. A state stored by an older version is passed
   * through `migrateState` as it is loaded; one stored by a newer version is
   * never read (STATE_TOO_NEW). A positive integer (docs/state.md "State versions"). @default 1
   */
  readonly stateVersion?: number;
  /** Durable classes with a `stateVersion` above 1: turns a state stored by version `fromVersion` (1 for one stored before any) into this version's. May be async; a throw fails the activation with BAD_STATE. */
  migrateState?(stored: any, fromVersion: number): unknown;
  readonly name: string;
}

/** A stream event, as handleEvent receives it. */
export interface StreamEvent {
  /** The subscription it came through: `<capability>.<actorType>.<name>`. */
  readonly subscription: string;
  readonly stream: string;
  /** Its stream sequence: for one actor id, each event's is higher than the one before. */
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** The message's headers (the first value of each). */
  readonly headers: Readonly<Record<string, string>>;
  /** When the stream stored it (epoch ms). */
  readonly time: number;
  /** `data` as UTF-8 text. */
  text(): string;
  /** `data` parsed as JSON. Throws when it is not JSON. */
  json<T = unknown>(): T;
}

/** Where a subscription reads the actor id of each event: a subject token (0 is the first; -1 the last), a header, or a function. */
export type EventKey =
  | { token: number }
  | { header: string }
  | ((event: { subject: string; headers: Readonly<Record<string, string>> }) => string);

/** A class's subscription to a JetStream stream (`static events`, docs/events.md). */
export interface EventSubscription {
  /** The stream, which must exist when the node starts (unless `waitForStream`). */
  stream: string;
  /**
   * The stream may be created after the node starts: a missing one does not fail `Mesh.start`; it is logged at
   * error level once (to stderr with no logger), and the dispatchers begin once it exists. @default false
   */
  waitForStream?: boolean;
  /** Only its messages on this subject (wildcards allowed). @default every message of the stream */
  subject?: string;
  /** Where each event's actor id comes from. */
  key: EventKey;
  /** Names the subscription (its progress is kept under this name): 1-128 of A-Z a-z 0-9 _ -. @default the stream's name */
  name?: string;
  /** The capability the actors are called under. @default the first of the class's `static capabilities` */
  capability?: string;
  /** A new subscription starts at the stream's first message ("all") or after its last ("new"). @default "all" */
  start?: "all" | "new";
  /** Deliveries of one event before it is dead-lettered. @default 5 */
  maxDeliveries?: number;
  /** The first retry's delay; it doubles with each delivery, up to 10 s. @default 100 */
  backoffMs?: number;
  /**
   * Where dead letters go: a subject some stream must capture (checked at start). By default Mesh's own stream
   * `<prefix>_dead_letters` keeps them (created when missing). @default "<prefix>.events.dead.<actorType>"
   */
  deadLetter?: string;
  /** After a dead letter, the key goes on with its next event ("skip") or stops until the dispatcher restarts ("stop"). @default "skip" */
  onDeadLetter?: "skip" | "stop";
  /** Events read but not yet handled, at most. @default 1024 */
  maxInFlight?: number;
  /** Dispatchers that share the stream's keys by hash, each on the node that owns it. @default 1 */
  partitions?: number;
}

/** What a call resolves with: the activation's pid and the handler's reply. */
export interface CallResult<R = unknown> {
  pid: string;
  result: R;
}

/**
 * Where the outcome of a call goes: a promise (local caller), a NATS reply
 * (remote caller), or a call on its way elsewhere. `bytes` takes an owner's
 * reply envelope as it is, when the call was sent on to another node.
 */
export interface ReplyTo {
  /** `shared`: the actor's class shares values (`static shareValues`): an in-process receiver takes `result` without a copy. */
  succeed(pid: string, result: unknown, shared?: boolean): void;
  fail(err: Error): void;
  bytes(data: Uint8Array): void;
}

/** A call or cast: which actor, which id, under which capability, with what payload. */
export interface MeshRequest {
  /** The actor class, or its actor type name. */
  actor: ActorClass | string;
  /** The actor id: any string of at most 1024 characters. */
  id: string;
  /** What the handler receives. Must be msgpack-encodable when the owner is another node. */
  payload?: unknown;
  /** The capability whose nodes may own the actor (part of its identity). @default the first of the class's `static capabilities`; required otherwise */
  capability?: string;
  /** Handed to the constructor when this call activates the actor; ignored once it lives. */
  initArg?: unknown;
  /** This call's timeout in ms (calls only). @default the node's callTimeoutMs */
  timeoutMs?: number;
}

/** The payload `handleCall` of actor `A` takes. */
export type CallPayload<A> = A extends { handleCall(payload: infer P, ...rest: any[]): unknown } ? P : never;
/** What a call to actor `A` resolves to: its handleCall's return value, awaited. */
export type CallReply<A> = A extends { handleCall(...args: any[]): infer R } ? Awaited<R> : never;
/** The payload a cast to actor `A` takes: handleCast's, else handleCall's. */
export type CastPayload<A> = A extends { handleCast(payload: infer P, ...rest: any[]): unknown } ? P : CallPayload<A>;

// eslint-disable-next-line @typescript-eslint/no-unused-vars -- only its type is used, as a unique marker
declare const inferred: unique symbol;
/** The default of `mesh.call`'s reply type parameter: "infer it from the class". */
export type Inferred = typeof inferred;

/** A request to an actor of `C` (a class or a type name) whose payload type comes from the class's handleCall (or handleCast, with `Cast`). */
export type TypedRequest<C, Cast extends boolean = false> = Omit<MeshRequest, "actor" | "payload"> & {
  actor: C;
  payload?: C extends ActorClass ? (Cast extends true ? CastPayload<InstanceType<C>> : CallPayload<InstanceType<C>>) : unknown;
};

/** What a call to `C` resolves to: the class's handleCall reply, or `unknown` for a type name. */
export type ReplyOf<C> = C extends ActorClass ? CallReply<InstanceType<C>> : unknown;

/** Options of a reference. */
export interface RefOptions {
  /** The capability whose nodes may own the actor. @default the first of the class's `static capabilities` */
  capability?: string;
  /** Handed to the constructor when a message activates the actor. */
  initArg?: unknown;
}

/** Options of `ctx.setTimer`. */
export interface TimerOptions {
  /** Fire again every `ms` after each firing, until cleared or the activation ends. @default false */
  every?: boolean;
}

/** When a reminder is due: at a time, or after a delay; and whether it repeats. */
export interface RemindOptions {
  /** The time it is due (epoch ms, or a Date). */
  at?: number | Date;
  /** Due this long from now. */
  afterMs?: number;
  /** After each firing, due again this much later. @default it fires once */
  everyMs?: number;
}

/** What handleReminder learns besides the name. */
export interface ReminderInfo {
  /** When it was due (epoch ms). */
  due: number;
  /** How late it runs: now - due, in ms. */
  late: number;
  /** Earlier turns of this firing that failed (0 the first time). */
  failures: number;
}

/** A typed handle on one actor (`mesh.ref`, `ctx.ref`): its calls and casts take the class's payload types. */
export interface Ref<A> {
  readonly id: string;
  /** Calls the actor; resolves to its reply. Rejects with a MeshError, as `mesh.call` does. */
  call(payload: CallPayload<A>, options?: { timeoutMs?: number }): Promise<CallReply<A>>;
  /** Casts to the actor; resolves once the message is on its way, as `mesh.cast` does. */
  cast(payload: CastPayload<A>): Promise<void>;
}
