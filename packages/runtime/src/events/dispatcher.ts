// One dispatcher: reads one partition of a subscription's stream from its
// floor (the sequence below which every event is done), and sends each event
// to its actor through the node's call path, one at a time per actor id and
// in stream order, many ids at once; retries a failing event with backoff,
// dead-letters it after maxDeliveries, and stores the floor as it moves
// (docs/events.md "How events are dispatched"). Imports: the events room and
// the bottom floor.
import { MeshError, shardFor } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { readLatest } from "@mesh/transport";
import type { Logger } from "@mesh/core";
import type { JetStreamClient, JetStreamManager, KV, MsgHdrs, NatsConnection } from "nats";
import type { ReplyTo } from "../types.js";
import { MAX_BACKOFF_MS } from "./subscription.js";
import type { ResolvedSubscription } from "./subscription.js";
import type { WireEvent } from "./event.js";
import { Attempt, PendingEvent } from "./delivery.js";
import { publishDeadLetter } from "./dead-letters.js";
import { StreamReader, firstValues, storedTimeAt as timeAt } from "./stream-reader.js";
import { decodeFloor, encodeFloor } from "./floor-record.js";
import type { Passed } from "./floor-record.js";
import { currentLayout, ofLayout } from "./layout-record.js";
import type { Layout, StreamNow } from "./layout-record.js";
import type { Outcomes } from "./delivery.js";

/** What one subscription did on this node (metrics, `mesh events`). */
export interface SubscriptionCounts {
  handled: number;
  /** Events an actor had applied already (a redelivery after a failure or a move). */
  duplicates: number;
  /** Deliveries after the first. */
  redeliveries: number;
  deadLetters: number;
}

/** What a dispatcher works with. */
export interface DispatcherParts {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The progress bucket: `<subscription>.<partition>` → the floor. */
  readonly floors: KV;
  /** Its name, to read floors from its stream leader (readLatest). */
  readonly floorsBucket: string;
  readonly log: Logger;
  readonly callTimeoutMs: number;
  /** Where this node's replies come (its consumers' messages come under it too). */
  readonly inboxPrefix: string | undefined;
  /** Sends an event to its actor; `reply` succeeds with true when applied now, false when it was before. Returns the node it went to. */
  deliver(sub: ResolvedSubscription, id: string, event: WireEvent, timeoutMs: number, reply: ReplyTo): string | undefined;
  /** Its stream was deleted and made again while it read: it stopped, with nothing stored; another one starts in its place. */
  remake(d: Dispatcher): void;
}

/** Errors that say nothing about the event: its delivery is retried without counting. */
// prettier-ignore
const TRANSIENT = new Set(["NO_NODES", "NODE_UNAVAILABLE", "STOPPED", "OVERLOADED", "STORAGE_UNAVAILABLE", "STATE_CONFLICT", "STATE_TOO_NEW"]);

/**
 * Events read and not done, at most: twice maxInFlight, and no fewer than
 * MIN_READ_AHEAD (the reader asks for more when half is free: each pull should
 * ask for many). Read ahead, events are sent as answers come back. More costs
 * the collector: 8 x maxInFlight read ahead made the bench's events into plain
 * actors on two nodes 15% slower.
 */
const READ_AHEAD_PER_IN_FLIGHT = 2;
const MIN_READ_AHEAD = 1024;

/** Events read since the floor, at most, per event in flight: an event that takes long holds the floor, not the others. */
const WINDOW_PER_IN_FLIGHT = 16;

/** How often a moved floor is stored. */
const FLOOR_EVERY_MS = 200;

export class Dispatcher implements Outcomes {
  /** The sequence below which (and at which) every event is done. */
  floor = 0;
  /** When the stream stored the event at the floor (epoch ms; 0: unknown). */
  #floorTime = 0;
  /**
   * The partition's events the floor passed, of every node that ran it: stored with the floor, so they survive
   * the node (an event done above the stored floor is done again by the next owner, and counted once, then).
   */
  passed: Passed = { applied: 0, dead: 0 };
  /** The subscription's layout its floor belongs to (layout-record.ts); undefined until it is loaded. */
  #layout: Layout | undefined;
  #storedFloor = -1;
  /** Messages the stream holds past the last one read. */
  #pending = 0;
  /** Events read, in stream order, from the first not done. */
  #read: PendingEvent[] = [];
  #head = 0;
  /** Per actor id: its events not done, the first one in flight. */
  readonly #keys = new Map<string, PendingEvent[]>();
  /** Ids that stopped at a dead letter (onDeadLetter "stop"). */
  readonly #stopped = new Set<string>();
  /** Attempts sent whose outcome has not come back. */
  readonly #sends = new Set<Attempt>();
  /** The last sequence read: a reader made again after an error goes on after it. */
  #lastRead = 0;
  #reader: StreamReader | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running = true;
  #done: Promise<void> | undefined;
  /** Why it is not reading, if it is not. */
  error: string | undefined;

  constructor(
    readonly sub: ResolvedSubscription,
    readonly partition: number,
    private readonly p: DispatcherParts,
    private readonly counts: SubscriptionCounts,
  ) {
    this.#wireStream = sub.stream === sub.name ? null : sub.stream;
    // Never more than the window: room is the smaller of the two, and a stopped reader waits for half of it.
    this.#readAhead = Math.min(
      Math.max(READ_AHEAD_PER_IN_FLIGHT * sub.maxInFlight, MIN_READ_AHEAD),
      WINDOW_PER_IN_FLIGHT * sub.maxInFlight,
    );
  }

  /** Events read and not done, at most (READ_AHEAD_PER_IN_FLIGHT, within the window). */
  readonly #readAhead: number;

  /** The stream's name on the wire: nil when it is the subscription's name (PROTOCOL.md "Events"). */
  readonly #wireStream: string | null;

  /** Its key in the progress bucket. */
  get key(): string {
    return `${this.sub.id}.${this.partition}`;
  }

  /** Events read and not yet done, and messages of the stream not yet read. */
  get lag(): number {
    return this.inFlight + this.#pending;
  }

  /** Events read and not done (sent, waiting to be sent or for their retry, or behind an earlier event of their id). */
  inFlight = 0;

  /** Events first of their id, waiting for one of the maxInFlight sends (from #readyHead on). */
  #ready: PendingEvent[] = [];
  #readyHead = 0;

  /** Events read since the floor (done or not): bounded, so that one stuck event cannot hold the whole stream in memory. */
  get #window(): number {
    return this.#read.length - this.#head;
  }

  /** Starts reading; retries every second while the stream or the bucket does not answer. */
  start(): void {
    this.#done = this.#loop();
  }

  /** Stops reading, waits up to `timeoutMs` for the events in flight, and stores the floor. */
  async stop(timeoutMs: number): Promise<void> {
    this.#running = false;
    this.#reader?.stop();
    const deadline = performance.now() + timeoutMs;
    while (this.#sends.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.#done;
    clearInterval(this.#timer);
    await this.#storeFloor().catch(() => {});
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      try {
        await this.#consume();
        return;
      } catch (err) {
        if (!this.#running) return;
        this.#cannotRead(err as Error);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Reading failed (`err`; undefined: it reads again): said, and shown (`mesh events`). */
  #cannotRead(err: Error | undefined): void {
    this.error = err === undefined ? undefined : messageOf(err);
    if (err === undefined) return;
    this.p.log.warn(
      { subscription: this.sub.id, partition: this.partition, err: this.error },
      "mesh: event dispatcher cannot read its stream; retrying",
    );
  }

  /**
   * Reads the stream from after the last event read, asking for no more than
   * there is room for: what is read and not done stays within the read-ahead
   * (and the window) however fast the stream grows.
   */
  async #consume(): Promise<void> {
    // The stream's size says the lag before the first event is read; it fails here when the stream is missing or refused.
    const { state, created } = await this.p.jsm.streams.info(this.sub.stream);
    const { stream, subject: filter } = this.sub;
    const storedTimeAt = (seq: number) => timeAt(this.p, { stream, filter, seq });
    const createdNow = async () => (await this.p.jsm.streams.info(stream)).created;
    if (this.#layout === undefined) await this.#loadFloor({ epoch: created, state, storedTimeAt, createdNow });
    else if (this.#layout.epoch !== created) return this.#recreated(); // while it could not read it
    this.#pending = Math.max(0, state.last_seq - Math.max(this.floor, this.#lastRead));
    this.#timer ??= setInterval(() => {
      void this.#storeFloor().catch((err: unknown) =>
        this.p.log.warn({ subscription: this.sub.id, err: messageOf(err) }, "mesh: cannot store an event floor"),
      );
      void this.#checkPending();
    }, FLOOR_EVERY_MS);
    const reading = {
      room: () => this.#room(),
      take: (seq: number, subject: string, data: Uint8Array, headers: MsgHdrs | undefined, time: number, pending: number) =>
        this.#take(seq, subject, data, headers, time, pending),
      recreated: () => this.#recreated(),
      failed: (err: Error | undefined) => this.#cannotRead(err),
    };
    // It asks for more once half the read-ahead is free: each pull asks for many.
    const reader = await StreamReader.open(
      this.p.nc,
      this.p.jsm,
      this.sub.stream,
      this.sub.subject,
      this.p.inboxPrefix,
      this.#readAhead / 2,
      reading,
      { from: Math.max(this.floor, this.#lastRead) + 1, epoch: created },
    );
    if (!this.#running) return reader.stop();
    this.#reader = reader;
    this.error = undefined;
  }

  /** Events it may read now: what the read-ahead and the window leave. */
  #room(): number {
    return Math.min(this.#readAhead - this.inFlight, WINDOW_PER_IN_FLIGHT * this.sub.maxInFlight - this.#window);
  }

  /**
   * Reads the stored floor when it belongs to the layout (its generation and count); else (a new subscription,
   * or a new partition count) starts from the layout's floor, which the first timer tick stores for it.
   */
  async #loadFloor(stream: StreamNow): Promise<void> {
    const layout = await currentLayout(this.p, this.sub, stream);
    // From the stream leader: a replica behind the last floor stored would send events applied already again.
    const entry = await readLatest(this.p.jsm, this.p.floorsBucket, this.key);
    const own = entry?.value === undefined ? undefined : decodeFloor(entry.value);
    if (ofLayout(own, layout)) {
      ({ floor: this.floor, passed: this.passed, time: this.#floorTime } = own);
      this.#storedFloor = this.floor;
    } else {
      this.floor = layout.from;
      this.#floorTime = 0;
      this.passed = { applied: 0, dead: 0 };
      this.#storedFloor = -1;
    }
    this.#layout = layout;
  }

  /**
   * Idle with messages said to be pending: asks the consumer. The count a message carries can be
   * stale when the stream grew as it was read (nats-server 2.9), and no later message corrects it.
   */
  async #checkPending(): Promise<void> {
    const read = this.#lastRead;
    const name = this.#reader?.name;
    if (this.inFlight > 0 || this.#pending === 0 || !name) return;
    const info = await this.p.jsm.consumers.info(this.sub.stream, name).catch(() => undefined);
    if (info !== undefined && this.#lastRead === read) this.#pending = info.num_pending;
  }

  async #storeFloor(): Promise<void> {
    const floor = this.floor;
    if (floor === this.#storedFloor || this.#layout === undefined) return; // not loaded: nothing of its own to store
    await this.p.floors.put(this.key, encodeFloor(floor, this.passed, this.#layout, this.#floorTime));
    this.#storedFloor = Math.max(this.#storedFloor, floor);
  }

  /** An event read: queued behind its id's earlier ones, sent if it is the first. */
  #take(seq: number, subject: string, data: Uint8Array, msgHeaders: MsgHdrs | Error | undefined, time: number, pending: number): void {
    if (seq <= this.floor || seq <= this.#lastRead) return;
    this.#lastRead = seq;
    this.#pending = pending;
    const unreadable = msgHeaders instanceof Error;
    const headers = msgHeaders === undefined || unreadable ? null : firstValues(msgHeaders);
    let id: string | undefined;
    let bad: MeshError | undefined;
    try {
      if (unreadable) throw new MeshError("BAD_REQUEST", `its headers cannot be read: ${msgHeaders.message}`);
      id = this.sub.keyOf(subject, headers ?? {});
    } catch (err) {
      bad = err as MeshError;
    }
    // Nothing of the message is kept (the bench's GC time halved: events wait for remote answers).
    const event = new PendingEvent(seq, id, subject, new Uint8Array(data), headers, time, bad);
    this.#read.push(event);
    this.inFlight++;
    // Another partition's id (an event without one is partition 0's to dead-letter).
    if (this.sub.partitions > 1 && (id === undefined ? 0 : shardFor(id, this.sub.partitions)) !== this.partition) {
      event.outcome = "other";
      return this.#finish(event);
    }
    if (id === undefined) return void this.#deadLetter(event, bad!);
    const queue = this.#keys.get(id);
    if (queue !== undefined) return void queue.push(event);
    this.#keys.set(id, [event]);
    this.#send(event);
  }

  /** Sends the event to its actor, or queues it until fewer than maxInFlight are sent. */
  #send(event: PendingEvent): void {
    if (!this.#running) return;
    if (this.#sends.size >= this.sub.maxInFlight) return void this.#ready.push(event);
    event.deliveries++;
    if (event.deliveries > 1) this.counts.redeliveries++;
    const wire: WireEvent = [this.sub.name, this.#wireStream, event.seq, event.subject, event.data, event.headers, event.time];
    if (this.#layout!.era > 0) wire.push(this.#layout!.era);
    const attempt = new Attempt(event, this);
    this.#sends.add(attempt);
    attempt.owner = this.p.deliver(this.sub, event.id!, wire, this.p.callTimeoutMs, attempt);
  }

  /** The stream has another creation time: this dispatcher stops, sends and stores nothing more, and the one made in its place judges it (layout-record.ts). */
  #recreated(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#reader?.stop();
    clearInterval(this.#timer);
    this.p.remake(this);
  }

  /** Connected to NATS again: reads on with a new consumer. */
  reconnected(): void {
    this.#reader?.reconnected();
  }

  /** Nodes left the view: what was sent to them gets no answer, so it goes again now (not counted as a delivery). */
  nodesGone(inView: (node: string) => boolean): void {
    for (const attempt of [...this.#sends]) {
      if (attempt.owner === undefined || inView(attempt.owner) || !this.#sends.delete(attempt)) continue;
      attempt.event.deliveries--;
      this.#send(attempt.event);
    }
  }

  /** The first event waiting for a send (the queue is compacted as it drains). */
  #nextReady(): PendingEvent {
    const ready = this.#ready;
    const next = ready[this.#readyHead++]!;
    if (this.#readyHead === ready.length) {
      this.#ready = [];
      this.#readyHead = 0;
    } else if (this.#readyHead > 1024 && this.#readyHead * 2 > ready.length) {
      this.#ready = ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }
    return next;
  }

  /** A delivery's outcome: applied (now, or before: a duplicate), or failed with `err`. */
  outcome(attempt: Attempt, applied: boolean, err: Error | undefined): void {
    if (!this.#sends.delete(attempt)) return; // given up: its node left the view
    const event = attempt.event;
    if (this.#readyHead < this.#ready.length) this.#send(this.#nextReady());
    if (err !== undefined) return this.#failed(event, err);
    if (applied) this.counts.handled++;
    else this.counts.duplicates++;
    this.#finish(event);
  }

  #failed(event: PendingEvent, err: unknown): void {
    if (!this.#running) return;
    const transient = err instanceof MeshError && TRANSIENT.has(err.code);
    if (transient) event.deliveries--; // not the event's fault: it does not count
    if (!transient && event.deliveries >= this.sub.maxDeliveries) return void this.#deadLetter(event, err);
    const delay = Math.min(this.sub.backoffMs * 2 ** Math.min(event.failures++, 20), MAX_BACKOFF_MS);
    setTimeout(() => this.#send(event), delay);
  }

  /**
   * Publishes the event with why it failed to the dead-letter subject (its id: the subscription and
   * sequence, so a stream keeps one copy), then moves on (or stops the id, onDeadLetter "stop").
   */
  async #deadLetter(event: PendingEvent, err: unknown): Promise<void> {
    const { js, log } = this.p;
    const sent = await publishDeadLetter(event, err, { js, sub: this.sub, log, running: () => this.#running, era: this.#layout!.era });
    if (!sent) return;
    this.counts.deadLetters++;
    event.outcome = "dead";
    this.p.log.warn({ subscription: this.sub.id, seq: event.seq, id: event.id, err: messageOf(err) }, "mesh: event dead-lettered");
    if (this.sub.onDeadLetter === "stop" && event.id !== undefined) return void this.#stopped.add(event.id);
    this.#finish(event);
  }

  /** An event is done: the next of its id goes, and the floor moves past what is done. */
  #finish(event: PendingEvent): void {
    event.done = true;
    this.inFlight--;
    if (event.id !== undefined) {
      const queue = this.#keys.get(event.id);
      if (queue?.[0] === event) {
        queue.shift();
        if (queue.length > 0) this.#send(queue[0]!);
        else this.#keys.delete(event.id);
      }
    }
    const read = this.#read;
    while (this.#head < read.length && read[this.#head]!.done) {
      const passed = read[this.#head++]!;
      this.floor = passed.seq;
      this.#floorTime = passed.time;
      if (passed.outcome !== "other") this.passed[passed.outcome]++;
    }
    if (this.#head > 1024 && this.#head * 2 > read.length) {
      this.#read = read.slice(this.#head);
      this.#head = 0;
    }
    this.#reader?.more();
  }
}
