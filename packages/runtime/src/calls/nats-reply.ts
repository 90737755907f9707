// The replies a node sends over NATS: to remote callers, and to the tools and
// nodes that ask it something. Nothing here may throw into a nats.js callback.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { BATCH_HEAD_BYTES, FRAME_HEAD_BYTES, encodeError, encodeResult, messageOf, writeBatch } from "@mesh/core/internal";
import { FrameQueue, promptWrite } from "@mesh/transport";
import type { PromptWrite, Subjects } from "@mesh/transport";
import type { Msg, NatsConnection } from "nats";
import type { ReplyTo } from "../types.js";

/**
 * True (and logged) when a request's reply subject is not an inbox (Subjects.answers): the request is refused
 * and never answered, so that nobody has a node write to a subject of their choosing with its permissions.
 */
export function refusesReply(msg: Msg, subjects: Subjects, log: Logger): boolean {
  if (!msg.reply || subjects.answers(msg.reply)) return false;
  log.warn({ subject: msg.subject, reply: msg.reply }, "mesh: refused a request whose reply subject is not an inbox");
  return true;
}

/**
 * A remote caller that sent batches: replies to its calls are batched per
 * tick and sent to the reply subject of one of its batches (they share the
 * prefix, the subject without its last token, and it reads replies on all).
 */
export interface Caller {
  readonly prefix: string;
}

/**
 * Encodes and sends a node's replies within its payload limit; replies to batched calls leave batched. A reply
 * envelope is at most the limit less a batch's framing (10 bytes), so that it fits in a batch alone.
 */
export class Replies {
  readonly #batched: FrameQueue;
  /** Per caller prefix, the reply subject its replies go to (the latest batch's). */
  readonly #subjects = new Map<string, string>();
  /** The most bytes a reply envelope may have. */
  readonly #limit: number;
  /** Writes a plain reply at once (prompt-write.ts). */
  readonly #writeNow: PromptWrite;

  constructor(
    private readonly nc: NatsConnection,
    maxPayload: number,
    private readonly log: Logger,
  ) {
    this.#limit = maxPayload - BATCH_HEAD_BYTES - FRAME_HEAD_BYTES;
    this.#writeNow = promptWrite(nc);
    this.#batched = new FrameQueue(maxPayload, (prefix, ids, envelopes, start, end) => this.#sendBatch(prefix, ids, envelopes, start, end));
  }

  /** The caller behind a batch's reply subject. */
  caller(replySubject: string): Caller {
    const prefix = replySubject.slice(0, replySubject.lastIndexOf(".") + 1);
    this.#subjects.set(prefix, replySubject);
    return { prefix };
  }

  /** Queues the reply envelope of call `id` for `caller`: it leaves, batched, at the end of this tick. */
  frame(caller: Caller, id: number, envelope: Uint8Array): void {
    this.#batched.add(caller.prefix, id, envelope);
  }

  #sendBatch(prefix: string, ids: number[], envelopes: Uint8Array[], start: number, end: number): void {
    const subject = this.#subjects.get(prefix)!; // one entry per caller node: kept for replies that come in later ticks
    try {
      this.nc.publish(subject, writeBatch(ids, envelopes, start, end));
    } catch (err) {
      this.log.warn({ subject, err: messageOf(err) }, "mesh: could not send a batch of replies");
    }
  }

  /** Encodes a successful reply; an unencodable or oversized one becomes an error reply. */
  encode(pid: string, result: unknown): Uint8Array {
    try {
      const bytes = encodeResult(pid, result);
      if (bytes.length > this.#limit) {
        throw new MeshError("PAYLOAD_TOO_LARGE", `the reply of ${pid} is ${bytes.length} bytes encoded; the limit is ${this.#limit}`);
      }
      return bytes;
    } catch (err) {
      this.log.warn({ pid, err: messageOf(err) }, "mesh: reply not sent");
      return this.error(err);
    }
  }

  /** Encodes a failed reply within the limit (a message too long for it is cut). */
  error(err: unknown): Uint8Array {
    return encodeError(err, this.#limit);
  }

  /** A reply envelope from elsewhere (a forwarded call's owner), or PAYLOAD_TOO_LARGE in its place when it does not fit. */
  passOn(data: Uint8Array): Uint8Array {
    if (data.length <= this.#limit) return data;
    return this.error(new MeshError("PAYLOAD_TOO_LARGE", `the reply is ${data.length} bytes; the limit is ${this.#limit}`));
  }

  /** Sends a plain reply, written at once (prompt-write.ts: the first in a tick), logging (never throwing) when NATS refuses it. */
  respond(msg: Msg, bytes: Uint8Array): void {
    try {
      msg.respond(bytes);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, "mesh: could not send a reply");
      return;
    }
    this.#writeNow();
  }
}

/** Where a remote caller's outcome goes: the reply subject of its NATS message. */
export class NatsReply implements ReplyTo {
  constructor(
    private readonly msg: Msg,
    private readonly replies: Replies,
  ) {}
  succeed(pid: string, result: unknown): void {
    this.replies.respond(this.msg, this.replies.encode(pid, result));
  }
  fail(err: Error): void {
    this.replies.respond(this.msg, this.replies.error(err));
  }
  /** A forwarded call's reply, passed on as it is. */
  bytes(data: Uint8Array): void {
    this.replies.respond(this.msg, data);
  }
}

/** Where the outcome of a call that came in a batch goes: a frame in the batched replies to its caller. */
export class FrameReply implements ReplyTo {
  constructor(
    private readonly caller: Caller,
    private readonly id: number,
    private readonly replies: Replies,
  ) {}
  succeed(pid: string, result: unknown): void {
    this.replies.frame(this.caller, this.id, this.replies.encode(pid, result));
  }
  fail(err: Error): void {
    this.replies.frame(this.caller, this.id, this.replies.error(err));
  }
  bytes(data: Uint8Array): void {
    this.replies.frame(this.caller, this.id, this.replies.passOn(data));
  }
}
