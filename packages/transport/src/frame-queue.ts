// The batcher: frames bound for the same place in the same tick leave as one
// NATS message. The first frame of a tick schedules one flush, when the
// tick's work is done (a microtask, queued before nats.js's own flush of its
// socket buffer, so the batch goes out in the same write); never a timer, so
// a lone frame waits for nothing. Groups are split so that no batch passes
// the payload limit, nor the most calls its sender wants in one message (a
// caller sends what it has in flight in two halves, so that the owner serves
// one while the other is on its way back; message-ticks.ts keeps them apart).
import { BATCH_HEAD_BYTES, FRAME_HEAD_BYTES } from "@mesh/core/internal";
import { microtask } from "./microtask.js";

/** Frames queued for one destination. */
interface Queue {
  ids: number[];
  envelopes: Uint8Array[];
}

/** Sends one group: frames `start..end` of a destination's queue, which fit in one message. */
export type SendGroup = (key: string, ids: number[], envelopes: Uint8Array[], start: number, end: number) => void;

/** What a frame queue's owner is told, and asked, as it flushes. */
export interface FlushOptions {
  /** Told at the start of each flush (before anything is sent). */
  readonly flushing?: () => void;
  /** Told at the end of each flush, once everything queued then was sent. */
  readonly flushed?: () => void;
  /** Asked at each flush: the most calls (frames with an id) one message may carry; casts never split a group (none: only the byte limit splits). */
  readonly calls?: () => number;
}

export class FrameQueue {
  #queues = new Map<string, Queue>();
  #scheduled = false;
  /** A flush is sending: frames it took may not have left yet. */
  #sending = false;
  readonly #flush = () => this.flush();

  constructor(
    /** The most bytes one batch may have. */
    private readonly maxBytes: number,
    private readonly send: SendGroup,
    private readonly options: FlushOptions = {},
  ) {}

  /** Queues a frame for `key` (a subject, or a caller's reply prefix); it leaves at the end of this tick. */
  add(key: string, id: number, envelope: Uint8Array): void {
    let q = this.#queues.get(key);
    if (q === undefined) this.#queues.set(key, (q = { ids: [], envelopes: [] }));
    q.ids.push(id);
    q.envelopes.push(envelope);
    this.schedule();
  }

  /** True when nothing for `key` waits to leave (none queued, and no flush under way): a frame sent now keeps its order. */
  idle(key: string): boolean {
    return !this.#sending && !this.#queues.has(key);
  }

  /** Makes sure a flush comes at the end of this tick (one may have nothing to send but its hooks). */
  schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      microtask(this.#flush);
    }
  }

  /** Sends everything queued now, in groups under the limit. */
  flush(): void {
    this.#scheduled = false;
    this.options.flushing?.();
    if (this.#queues.size > 0) this.#sendAll(this.options.calls?.() ?? Infinity);
    this.options.flushed?.();
  }

  #sendAll(calls: number): void {
    const queues = this.#queues;
    this.#queues = new Map();
    const outer = this.#sending; // a flush from within a send (close)
    this.#sending = true;
    try {
      for (const [key, q] of queues) this.#sendQueue(key, q, calls);
    } finally {
      this.#sending = outer;
    }
  }

  #sendQueue(key: string, q: Queue, calls: number): void {
    let start = 0;
    let size = BATCH_HEAD_BYTES;
    let inGroup = 0; // calls in the group: casts (id 0) have no reply to overlap, and never split a group
    for (let i = 0; i < q.envelopes.length; i++) {
      const frame = FRAME_HEAD_BYTES + q.envelopes[i]!.length;
      const call = q.ids[i] !== 0;
      if (i > start && (size + frame > this.maxBytes || (call && inGroup === calls))) {
        this.send(key, q.ids, q.envelopes, start, i);
        start = i;
        size = BATCH_HEAD_BYTES;
        inGroup = 0;
      }
      size += frame;
      if (call) inGroup++;
    }
    this.send(key, q.ids, q.envelopes, start, q.envelopes.length);
  }
}
