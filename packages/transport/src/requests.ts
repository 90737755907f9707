import { Ids, MeshError, SlotTable, TimeoutMap, isBatch, now, quietLogger, readBatch, writeBatch } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import type { Expiring } from "@mesh/core/internal";
import { createInbox } from "nats";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "nats";
import { FrameQueue } from "./frame-queue.js";
import { MessageTicks } from "./message-ticks.js";
import { promptWrite } from "./prompt-write.js";
import type { PromptWrite } from "./prompt-write.js";
import { Backlog, FRAME_COST, PROBE_TOKEN } from "./backlog.js";
import type { ActorName, FlowWindow, OutboundReport } from "./backlog.js";

/** The request met NATS "no responders": nobody subscribes to the subject, so it was never delivered. */
export class NoResponders extends Error {
  override readonly name = "NoResponders";
}

/** A request waiting for its reply. */
export interface PendingRequest extends Expiring {
  /** The reply arrived, in a message handled at `at` (`performance.now()`, one clock read a message). */
  reply(data: Uint8Array, at: number): void;
  /** NoResponders (never delivered), or the publish failed (PAYLOAD_TOO_LARGE, NODE_UNAVAILABLE). */
  fail(err: Error): void;
  /** The batch it went in: Requests' own, kept here so that its reply finds it without a look-up (declare it for a stable shape). */
  sentIn?: unknown;
  /** Until when it may wait for room on the way (flow control); `deadline` when not given. */
  readonly waitUntil?: number;
  /** Its envelope again, once it waited for room: the time left is less than when it was first encoded. */
  envelopeNow?(): Uint8Array;
  /** Where flow control counted it, and what that window had sent with it: Requests' own (declare them for a stable shape). */
  window?: FlowWindow;
  mark?: number;
}

/**
 * A batch that was sent with calls in it: if NATS answers "no responders", none of them was delivered.
 * Kept until each of its calls has its reply, or until the last deadline (kept to the deadline always, a
 * caller at 128 calls in flight held about 4,500 batches, and its sweeps read them all).
 */
class SentBatch implements Expiring {
  /** Its calls without a reply yet. */
  left: number;
  constructor(
    readonly n: number,
    readonly ids: number[],
    /** The latest deadline of its calls: after it, nobody waits for the batch's fate. */
    readonly deadline: number,
  ) {
    this.left = ids.length;
  }
  /** Its reply subject's last token. */
  get token(): string {
    return BATCH_TOKEN + this.n.toString(36);
  }
  expire(): void {}
}

/** The reply-subject token of a batch starts with this; a call's token is its id in base 36 (lower case). */
const BATCH_TOKEN = "B";
/** The reply-subject token of a message of casts alone: where the owner sends overload notices (PROTOCOL.md). */
const NOTICE_TOKEN = "_o";
const EMPTY = new Uint8Array(0);
/**
 * From this many calls in flight, a caller sends them in two halves (frame-queue.ts): a tick's batch for one
 * node is split into messages of at most half the calls in flight (casts ride along, uncounted), and the
 * owner serves one half while the other is on its way (message-ticks.ts). Measured at 64 in flight, halves of 32 gained nothing (README, "What
 * the speed section shows").
 */
const HALVES_FROM = 128;

/** Flow control of what this node sends (backlog.ts): the limit per node it sends to, and how long a cast waits for room. */
export interface OutboundLimits {
  /** Bytes sent to one node and not yet read by it (each message also counts FRAME_COST); Infinity: no limit, nothing counted. */
  readonly maxBytes: number;
  readonly castWaitMs: number;
}

/**
 * Request/reply over one reply subscription (`<inbox>.*`) with our own
 * correlation ids and one sweeping timer for all deadlines: no promise, timer
 * or subscription per request (nats.js's `request()` has them; `npm run bench`
 * measures both).
 *
 * Calls and casts to the same subject in the same tick leave as one batch
 * (docs/PROTOCOL.md, "Batches"), with the reply subject `<inbox>.B<n>`; a tick
 * with a single frame for a subject sends it as a plain envelope with the
 * reply subject `<inbox>.<id>`. Replies come back plain or batched, on any of
 * these subjects. Each call keeps its own deadline and outcome.
 */
export class Requests {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #sub: Subscription;
  readonly #pending = new TimeoutMap<number, PendingRequest>(10, new SlotTable());
  /** By batch number (the token's). */
  readonly #batches = new TimeoutMap<number, SentBatch>(10, new SlotTable());
  readonly #outbound: FrameQueue;
  /** Writes a lone call at once (prompt-write.ts). */
  readonly #writeNow: PromptWrite;
  /** Reply messages read together are handled a tick apart: the calls the first one's callers send next leave first. */
  readonly #replies = new MessageTicks<Msg>(
    (msg) => this.#onReply(msg),
    (err) => this.log.error({ err: (err as Error).message }, "mesh: a reply message could not be read"),
  );
  readonly #backlog: Backlog | undefined;
  readonly #castReply: string;
  /** An owner's overload notice arrived (on `<inbox>._o`). */
  onNotice: ((data: Uint8Array) => void) | undefined;
  /** Call ids, never one still pending (core/ids.ts). */
  readonly #ids = new Ids();
  readonly #pendingHas = (id: number) => this.#pending.get(id) !== undefined;
  /** Batch numbers (their reply tokens), never one still waited on. */
  readonly #batchNumbers = new Ids();
  readonly #batchHas = (n: number) => this.#batches.get(n) !== undefined;

  constructor(
    nc: NatsConnection,
    private readonly log: Logger = quietLogger,
    /** The most bytes one NATS message may have. */
    maxPayload: number = nc.info?.max_payload ?? 1024 * 1024,
    /** Where replies come: `<inboxPrefix>.<random>.<token>`. @default "_INBOX" */
    inboxPrefix?: string,
    /** Flow control; none: nothing is counted and nothing waits. */
    limits?: OutboundLimits,
  ) {
    this.#nc = nc;
    this.#writeNow = promptWrite(nc);
    this.#inbox = `${createInbox(inboxPrefix)}.`;
    this.#castReply = this.#inbox + NOTICE_TOKEN;
    this.#sub = nc.subscribe(`${this.#inbox}*`, {
      callback: (err, msg) => {
        if (err) this.log.warn({ err: err.message }, "mesh: the reply subscription failed");
        else this.#replies.take(msg);
      },
    });
    this.#outbound = new FrameQueue(
      maxPayload,
      (subject, ids, envelopes, start, end) => this.#sendGroup(subject, ids, envelopes, start, end),
      {
        flushing: () => this.#backlog?.flushing(),
        flushed: () => this.#backlog?.flushed(),
        calls: () => (this.#pending.size >= HALVES_FROM ? Math.ceil(this.#pending.size / 2) : Infinity),
      },
    );
    this.#backlog =
      limits === undefined || limits.maxBytes === Infinity
        ? undefined
        : new Backlog(
            limits.maxBytes,
            limits.castWaitMs,
            (subject, token) => this.#publish(subject, EMPTY, this.#inbox + token, []),
            () => this.#outbound.schedule(),
          );
  }

  /** In-flight requests, and sends waiting for room. */
  get size(): number {
    return this.#pending.size + (this.#backlog?.waiting ?? 0);
  }

  /** What flow control counts now; undefined without a limit. */
  outbound(): OutboundReport | undefined {
    return this.#backlog?.report();
  }

  /** The connection was re-established: nothing sent before is outstanding any more (nats.js dropped what it had not written). */
  reconnected(): void {
    this.#backlog?.reset();
  }

  /**
   * Sends a call envelope to `subject` at the end of this tick, batched with
   * the other frames for that subject; `pending` learns the outcome exactly
   * once: `reply`, `fail` (no responders, or a publish NATS refused), or
   * `expire` once its deadline passed.
   */
  call(subject: string, envelope: Uint8Array, pending: PendingRequest, actor: ActorName | undefined): void {
    const b = this.#backlog;
    if (b === undefined) return this.#sendCall(subject, envelope, pending, undefined);
    const cost = envelope.length + FRAME_COST;
    // A forward, a hand-over (no actor) never waits.
    const window = actor === undefined ? b.force(subject, cost) : b.admit(subject, cost);
    if (window !== undefined) return this.#sendCall(subject, envelope, pending, window);
    // No room on the way to that node: it waits for room until it is due (backlog.ts), then fails with OVERLOADED.
    b.wait(subject, "call", actor!, cost, pending.waitUntil ?? pending.deadline, {
      go: (w) => {
        let current: Uint8Array;
        try {
          current = pending.envelopeNow?.() ?? envelope;
        } catch (err) {
          return pending.fail(err as Error);
        }
        this.#sendCall(subject, current, pending, w);
      },
      refuse: (err) => pending.fail(err),
    });
  }

  #sendCall(subject: string, envelope: Uint8Array, pending: PendingRequest, window: FlowWindow | undefined): void {
    if (window !== undefined) {
      pending.window = window;
      pending.mark = this.#backlog!.mark(window);
    }
    const id = this.#id();
    // A lone call (none in flight, nothing waiting to leave for its node) leaves now, written at once
    // (prompt-write.ts): its batch would hold it alone, and the batcher's bookkeeping and the wait for the end
    // of the tick were about 2 µs of a sequential remote call (README, "What the speed section shows"). What
    // follows in this tick is batched after it.
    const lone = this.#pending.size === 0 && this.#outbound.idle(subject);
    this.#pending.set(id, pending);
    if (lone && this.#sendNow(subject, envelope, id)) return;
    this.#outbound.add(subject, id, envelope);
  }

  /** Publishes call `id` now, as a plain envelope; false when NATS refused it (it is queued then, and fails at the flush as before). */
  #sendNow(subject: string, envelope: Uint8Array, id: number): boolean {
    try {
      this.#nc.publish(subject, envelope, { reply: this.#inbox + id.toString(36) });
    } catch {
      return false;
    }
    this.#writeNow(); // outside the try: a throw after the publish must not queue the call a second time
    return true;
  }

  /**
   * Sends a cast envelope to `subject` at the end of this tick, batched
   * likewise. Returns undefined when it went, or, when the way to that node
   * is full (backlog.ts), a promise that resolves once it went and rejects
   * with OVERLOADED when no room came within the cast's wait. Throws
   * NODE_UNAVAILABLE when the connection is closed.
   */
  cast(subject: string, envelope: Uint8Array, actor: ActorName): Promise<void> | undefined {
    this.#checkOpen(subject);
    const b = this.#backlog;
    const cost = envelope.length + FRAME_COST;
    if (b === undefined || b.admit(subject, cost) !== undefined) return void this.#outbound.add(subject, 0, envelope);
    return new Promise((resolve, reject) =>
      b.wait(subject, "cast", actor, cost, performance.now() + b.castWaitMs, {
        go: () => resolve(this.#outbound.add(subject, 0, envelope)),
        refuse: reject,
      }),
    );
  }

  /** A cast that goes now whatever the backlog (a forward, a hand-over, a migration); it is counted. Throws NODE_UNAVAILABLE when the connection is closed. */
  castNow(subject: string, envelope: Uint8Array): void {
    this.#checkOpen(subject);
    this.#backlog?.force(subject, envelope.length + FRAME_COST);
    this.#outbound.add(subject, 0, envelope);
  }

  #checkOpen(subject: string): void {
    if (this.#nc.isClosed()) throw new MeshError("NODE_UNAVAILABLE", `cannot publish to ${subject}: the connection is closed`);
  }

  /** Sends `data` to `subject` now, as one plain request (for JetStream, which knows no batches). */
  request(subject: string, data: Uint8Array, pending: PendingRequest, headers?: MsgHdrs): void {
    const id = this.#id();
    this.#pending.set(id, pending);
    this.#publish(subject, data, this.#inbox + id.toString(36), [id], headers);
  }

  /** Fails every pending request with `err` and stops listening. */
  close(err: Error): void {
    this.#backlog?.close(err instanceof MeshError ? err : new MeshError("STOPPED", err.message));
    this.#outbound.flush();
    for (const pending of this.#pending.clear()) pending.fail(err);
    this.#batches.clear();
    this.#sub.unsubscribe();
  }

  /** Ids are unsigned 32-bit, never 0 (a cast's frame id), and never one a call still waiting holds. */
  #id(): number {
    return this.#ids.next(this.#pendingHas);
  }

  /** One group of frames for `subject`: a plain envelope when it is alone, else a batch. */
  #sendGroup(subject: string, ids: number[], envelopes: Uint8Array[], start: number, end: number): void {
    if (end - start === 1) {
      const id = ids[start]!;
      this.#publish(subject, envelopes[start]!, id === 0 ? this.#castReply : this.#inbox + id.toString(36), id === 0 ? [] : [id]);
      return;
    }
    const calls: number[] = [];
    const pendings: PendingRequest[] = [];
    let deadline = 0;
    for (let i = start; i < end; i++) {
      const id = ids[i]!;
      const pending = id === 0 ? undefined : this.#pending.get(id);
      if (pending === undefined) continue;
      calls.push(id);
      pendings.push(pending);
      deadline = Math.max(deadline, pending.deadline);
    }
    let reply = this.#castReply;
    if (calls.length > 0) {
      const batch = new SentBatch(this.#batchNumbers.next(this.#batchHas), calls, deadline);
      for (const pending of pendings) pending.sentIn = batch;
      this.#batches.set(batch.n, batch);
      reply = this.#inbox + batch.token;
    }
    this.#publish(subject, writeBatch(ids, envelopes, start, end), reply, calls);
  }

  #publish(subject: string, data: Uint8Array, reply: string, calls: number[], headers?: MsgHdrs): void {
    try {
      this.#nc.publish(subject, data, headers === undefined ? { reply } : { reply, headers });
    } catch (err) {
      const failure = publishError(err, subject);
      if (calls.length === 0) this.log.warn({ subject, err: failure.message }, "mesh: casts not sent");
      for (const id of calls) this.#pending.take(id)?.fail(failure);
    }
  }

  #onReply(msg: Msg): void {
    // An exception must not escape into nats.js: it would stop the connection's reader.
    try {
      const data = msg.data;
      const at = now();
      if (isBatch(data)) {
        readBatch(data, (id, envelope) => this.#reply(this.#taken(id), envelope, at));
        return;
      }
      const token = msg.subject.slice(this.#inbox.length);
      const noResponders = data.length === 0 && msg.headers?.code === 503;
      if (token.startsWith("_")) {
        // "No responders" to casts (their node is gone) comes back on `_o` too: nothing to read.
        if (token === NOTICE_TOKEN) {
          if (!noResponders) this.onNotice?.(data);
        } else if (token.startsWith(PROBE_TOKEN)) this.#backlog?.answered(token, noResponders);
        return;
      }
      if (token.startsWith(BATCH_TOKEN)) {
        // On a batch's subject: no responders (nothing was delivered), or one
        // plain envelope that answers every call of the batch still waiting
        // (the receiver could not read the batch to its end).
        for (const id of this.#batches.take(parseInt(token.slice(BATCH_TOKEN.length), 36))?.ids ?? []) {
          const pending = this.#pending.take(id);
          if (noResponders) pending?.fail(new NoResponders(`no responders on ${msg.subject}`));
          else this.#reply(pending, data, at);
        }
        return;
      }
      const pending = this.#taken(parseInt(token, 36));
      if (noResponders) pending?.fail(new NoResponders(`no responders on ${msg.subject}`));
      else this.#reply(pending, data, at);
    } catch (err) {
      this.log.error({ subject: msg.subject, err: (err as Error).message }, "mesh: a reply message could not be read");
    }
  }

  /** The request `id`, no longer pending; its batch goes once all of the batch's calls have their replies. */
  #taken(id: number): PendingRequest | undefined {
    const pending = this.#pending.take(id);
    if (pending?.window !== undefined) this.#backlog?.confirmed(pending.window, pending.mark!);
    const batch = pending?.sentIn as SentBatch | undefined;
    if (batch !== undefined && --batch.left === 0) this.#batches.take(batch.n);
    return pending;
  }

  /** Hands a reply to its request; none when it came late (the caller timed out already). */
  #reply(pending: PendingRequest | undefined, data: Uint8Array, at: number): void {
    try {
      pending?.reply(data, at);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, "mesh: a reply could not be handled");
    }
  }
}

/** Maps an error thrown by `publish` to a MeshError. */
export function publishError(err: unknown, subject: string): MeshError {
  const code = (err as { code?: string }).code;
  if (code === "MAX_PAYLOAD_EXCEEDED")
    return new MeshError("PAYLOAD_TOO_LARGE", `message to ${subject} exceeds the NATS server's max_payload`, { cause: err });
  return new MeshError("NODE_UNAVAILABLE", `cannot publish to ${subject}: ${(err as Error).message}`, { cause: err });
}
