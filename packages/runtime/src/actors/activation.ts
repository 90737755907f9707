import { MeshError, shardFor } from "@mesh/core";
import type { GroupCommit } from "../state/group-commit.js";
import type { Scheduled } from "../timers/scheduler.js";
import { tracing, within } from "../operations/tracing.js";
import type { Context } from "../operations/tracing.js";
import type { OutMessage } from "../state/record.js";
import type {
  Actor,
  ActorClass,
  CallContext,
  CallResult,
  DeactivateReason,
  MeshRequest,
  RefOptions,
  RemindOptions,
  TimerOptions,
} from "../types.js";
import type { Letter } from "./letter.js";
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
  /** The cluster's shard count. */
  shards: number;
  /** The node's mailbox load, which every mailbox keeps up to date. */
  readonly load: MailboxLoad;
  setTimer(act: Activation, name: string, ms: number, options?: TimerOptions): void;
  clearTimer(act: Activation, name: string): boolean;
  call<R>(act: Activation, request: MeshRequest): Promise<CallResult<R>>;
  cast(act: Activation, request: MeshRequest): Promise<void>;
  remind(act: Activation, name: string, options: RemindOptions): Promise<void>;
  forget(act: Activation, name: string): Promise<void>;
  /** What the activation is busy with, for a caller whose deadline passed (a TIMEOUT's message). */
  busyNote(act: Activation): string;
  /** Checks a message a turn publishes (ctx.publish). Throws BAD_REQUEST. */
  outgoing(subject: string, data: unknown, headers: Record<string, string> | undefined): OutMessage;
}

/** An actor's stream events: the sequence it applied per subscription (plain actors), and what its current turn publishes. */
export interface ActorEvents {
  applied: Map<string, number> | undefined;
  outbox: OutMessage[] | undefined;
}

/**
 * Why an activation leaves (endings.ts says what each does): a reason its
 * onDeactivate is told, or "replaced" (the node lost its lease: no onDeactivate).
 */
export type Ending = DeactivateReason | "replaced";

/** Where an activation is in its life; changed only by the transition methods below. */
export type Phase =
  /** onActivate (or a durable actor's load) runs: letters wait. */
  | "starting"
  /** No turn runs: a letter runs at once. */
  | "idle"
  /** A turn runs (or waits for the lease): letters wait. */
  | "running"
  /** Out of the actor table, finishing its turn; then it is gone and what waits goes on (endings.ts). */
  | "leaving"
  /** Ended: it takes no more turns. */
  | "gone";

const PHASES: readonly Phase[] = ["idle", "starting", "running", "leaving", "gone"];
const IDLE = 0;
const STARTING = 1;
const RUNNING = 2;
const LEAVING = 3;
const GONE = 4;
/** The phase, in the low three bits of #flags. */
const PHASE = 7;
/** Marks beside the phase: a turn ran since the eviction hand passed; the current turn cleared the state. */
const USED = 8;
const CLEARING = 16;
const PID_BUILT = 32; // the pid was built once: the next one built is kept

/** What the activations of one actor type under one capability on one node share (the actor table's slot is one). */
export interface Place {
  readonly capability: string;
  readonly actorType: string;
  readonly host: ContextHost;
  /** `<nodeId>/<actorType>/`, one flat string: the start of every pid of the place. */
  readonly pidPrefix: string;
}

/** The fields of an activation that most never use, kept apart (bench: bytes per idle actor). */
class Rare {
  reason: Ending | undefined = undefined;
  commits: GroupCommit | undefined = undefined;
  timers: Map<string, Scheduled> | undefined = undefined;
  chain: readonly string[] | undefined = undefined;
  events: ActorEvents | undefined = undefined;
  queue: Letter[] | undefined = undefined;
}

/**
 * One live actor instance: its pid, its mailbox, and its phase (starting,
 * idle, running, leaving, gone). While it starts or runs a turn, letters that
 * arrive wait in the mailbox, in order. It is also the CallContext handlers
 * receive, so an idle actor costs one object besides its own: 80 bytes, from
 * 152 when it kept its place, shard and rare fields itself (its methods are
 * not `#` ones: those give each instance a brand field).
 */
export class Activation implements CallContext {
  /** The passivation tick of its last turn (see also `used`). */
  lastTick = 0;
  /** The phase and the marks in one field (bench: bytes per idle actor). */
  #flags = USED;
  /** What few activations have (a reason to leave, commits, timers, events, waiting letters, a call chain); undefined until one does. */
  #rare: Rare | undefined;
  #pid: string | number; // the pid once kept (see pid), else the incarnation

  constructor(
    readonly instance: Actor,
    /** Its capability, type and node: one object for all the activations of a type under a capability. */
    private readonly place: Place,
    readonly id: string,
    incarnation: number,
  ) {
    this.#pid = incarnation;
  }

  /**
   * `<nodeId>/<actorType>/<id>#<incarnation>`. It is built when asked, and kept from the second time on: an actor
   * reached once (its one reply carries the pid) holds no pid string while it idles, 56 of its bytes (bench: bytes per
   * idle actor, creation), and one reached again builds it once more, then keeps it.
   */
  get pid(): string {
    const kept = this.#pid;
    if (typeof kept === "string") return kept;
    const prefix = this.place.pidPrefix;
    if (this.#flags & PID_BUILT) return (this.#pid = [prefix, this.id, "#", kept].join("")); // one flat string
    this.#flags |= PID_BUILT;
    // A tree of string pieces (a third of join()'s cost), which the activation does not keep: three joins to the
    // place's prefix, about 120 bytes of pieces, where six from the node id made about 210 (bench: creation).
    return `${prefix}${this.id}#${kept}`;
  }

  /** The node it lives on. */
  get nodeId(): string {
    return this.place.host.nodeId;
  }

  get capability(): string {
    return this.place.capability;
  }

  /** Its shard, from its id: computed when asked (moves and hand-overs), not kept (bench: bytes per idle actor). */
  get shard(): number {
    return shardFor(this.id, this.place.host.shards);
  }

  get actorType(): string {
    return this.place.actorType;
  }

  private get host(): ContextHost {
    return this.place.host;
  }

  /** Why it leaves (set once it leaves the actor table); what its onDeactivate is told. */
  get reason(): Ending | undefined {
    return this.#rare?.reason;
  }
  set reason(reason: Ending | undefined) {
    this.more().reason = reason;
  }

  /** Durable actors: the commits of its state (set once the state is loaded). */
  get commits(): GroupCommit | undefined {
    return this.#rare?.commits;
  }
  set commits(commits: GroupCommit | undefined) {
    this.more().commits = commits;
  }

  /** Its timers by name; undefined while it never set one. */
  get timers(): Map<string, Scheduled> | undefined {
    return this.#rare?.timers;
  }
  set timers(timers: Map<string, Scheduled> | undefined) {
    this.more().timers = timers;
  }

  /** The call chain of the turn it runs: the actors waiting on it (for ctx.call). Set on every turn, mostly to undefined. */
  get chain(): readonly string[] | undefined {
    return this.#rare?.chain;
  }
  set chain(chain: readonly string[] | undefined) {
    if (chain !== undefined || this.#rare !== undefined) this.more().chain = chain;
  }

  /** Stream events it applied and what its turn publishes; undefined until it handles an event or publishes (most actors). */
  get events(): ActorEvents | undefined {
    return this.#rare?.events;
  }
  set events(events: ActorEvents | undefined) {
    this.more().events = events;
  }

  private more(): Rare {
    return (this.#rare ??= new Rare());
  }

  /** Where it is in its life. */
  get phase(): Phase {
    return PHASES[this.#flags & PHASE]!;
  }

  /** It holds the turn (starting, running, or leaving once its turn ends): a letter that arrives waits. */
  get busy(): boolean {
    const phase = this.#flags & PHASE;
    return phase !== IDLE && phase !== GONE;
  }

  /** It left the actor table and ends once its turn does. */
  get leaving(): boolean {
    return (this.#flags & PHASE) === LEAVING;
  }

  /** It ended: it takes no more turns. */
  get gone(): boolean {
    return (this.#flags & PHASE) === GONE;
  }

  /** idle → starting: onActivate or a durable load runs before any turn. */
  starts(): void {
    this.moveTo(STARTING, 1 << IDLE);
  }

  /**
   * idle, starting or running → running, and marked used (passivation.ts): a
   * turn starts (or waits for the lease at the head of the mailbox). One
   * compare and one write: it runs on every local call.
   */
  runs(): void {
    const now = this.#flags & PHASE;
    if (now > RUNNING) this.refuse(now, RUNNING); // IDLE, STARTING and RUNNING are 0, 1 and 2
    this.#flags = (this.#flags & ~PHASE) | RUNNING | USED;
  }

  /** starting or running → idle: nothing waits. */
  rests(): void {
    const now = this.#flags & PHASE;
    if (now !== RUNNING && now !== STARTING) this.refuse(now, IDLE);
    this.#flags &= ~PHASE; // IDLE is 0
  }

  /**
   * → leaving, for `reason` (it is out of the actor table now). A reason
   * given again replaces the first, except "replaced", which stays: the node
   * lost its lease, so no onDeactivate runs. Returns true when it still
   * holds a turn (it goes once that ends), false when it can go now.
   */
  leaves(reason: Ending): boolean {
    if (this.reason !== "replaced") this.reason = reason;
    const phase = this.#flags & PHASE;
    if (phase === GONE || phase === LEAVING) return phase === LEAVING;
    this.moveTo(LEAVING, (1 << IDLE) | (1 << STARTING) | (1 << RUNNING));
    return phase !== IDLE;
  }

  /** → gone, from any phase (again: nothing). */
  ends(): void {
    this.#flags = (this.#flags & ~PHASE) | GONE;
  }

  private moveTo(phase: number, from: number): void {
    const now = this.#flags & PHASE;
    if ((from & (1 << now)) === 0) this.refuse(now, phase);
    this.#flags = (this.#flags & ~PHASE) | phase;
  }

  private refuse(now: number, phase: number): never {
    throw new MeshError("INTERNAL", `${this.pid}: no transition from ${PHASES[now]} to ${PHASES[phase]}`);
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

  /** What it is busy with, for a caller whose deadline passed (Letter.waitsOn). */
  busyNote(): string {
    return this.host.busyNote(this);
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

  /** How many letters wait. */
  get waiting(): number {
    return this.#rare?.queue?.length ?? 0;
  }

  enqueue(letter: Letter): void {
    (this.more().queue ??= []).push(letter);
    this.count(letter, 1);
  }

  /** Puts a letter back at the head of the mailbox (its turn waits for the lease). */
  requeue(letter: Letter): void {
    (this.more().queue ??= []).unshift(letter);
    this.count(letter, 1);
  }

  /** The next waiting letter, if any. */
  dequeue(): Letter | undefined {
    const letter = this.#rare?.queue?.shift();
    if (letter !== undefined) this.count(letter, -1);
    return letter;
  }

  /** Removes and returns every waiting letter. */
  drain(): Letter[] {
    const all = this.#rare?.queue ?? [];
    if (this.#rare !== undefined) this.#rare.queue = undefined;
    for (const letter of all) this.count(letter, -1);
    return all;
  }

  private count(letter: Letter, sign: 1 | -1): void {
    const load = this.host.load;
    load.letters += sign;
    load.bytes += sign * letter.bytes;
  }
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
