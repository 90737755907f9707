import { MeshError, TimeoutMap, quietLogger } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import type { Expiring } from "@mesh/core/internal";
import { createInbox } from "nats";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "nats";

/** The request met NATS "no responders": nobody subscribes to the subject, so it was never delivered. */
export class NoResponders extends Error {
  override readonly name = "NoResponders";
}

/** A request waiting for its reply. */
export interface PendingRequest extends Expiring {
  /** The reply arrived. */
  reply(data: Uint8Array): void;
  /** NoResponders (never delivered), or the publish failed (PAYLOAD_TOO_LARGE, NODE_UNAVAILABLE). */
  fail(err: Error): void;
}

/**
 * Request/reply over one reply subscription (`<inbox>.*`) with our own
 * correlation ids and one sweeping timer for all deadlines: no promise, timer
 * or subscription per request (nats.js's `request()` has them; `npm run bench`
 * measures both).
 */
export class Requests {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #sub: Subscription;
  readonly #pending = new TimeoutMap<string, PendingRequest>();
  #next = 0;

  constructor(
    nc: NatsConnection,
    private readonly log: Logger = quietLogger,
  ) {
    this.#nc = nc;
    this.#inbox = `${createInbox()}.`;
    this.#sub = nc.subscribe(`${this.#inbox}*`, { callback: (_err, msg) => this.#onReply(msg) });
  }

  /** In-flight requests. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Sends `data` to `subject`; `pending` learns the outcome exactly once:
   * `reply`, `fail` (no responders, or a publish NATS refused), or `expire`
   * once its deadline passed.
   */
  send(subject: string, data: Uint8Array, pending: PendingRequest, headers?: MsgHdrs): void {
    const id = (this.#next++).toString(36);
    this.#pending.set(id, pending);
    try {
      this.#nc.publish(subject, data, headers === undefined ? { reply: this.#inbox + id } : { reply: this.#inbox + id, headers });
    } catch (err) {
      this.#pending.take(id);
      pending.fail(publishError(err, subject));
    }
  }

  /** Fails every pending request with `err` and stops listening. */
  close(err: Error): void {
    for (const pending of this.#pending.clear()) pending.fail(err);
    this.#sub.unsubscribe();
  }

  #onReply(msg: Msg): void {
    const pending = this.#pending.take(msg.subject.slice(this.#inbox.length));
    if (pending === undefined) return; // late: the caller timed out already
    // An exception must not escape into nats.js: it would stop the connection's reader.
    try {
      if (msg.data.length === 0 && msg.headers?.code === 503) pending.fail(new NoResponders(`no responders on ${msg.subject}`));
      else pending.reply(msg.data);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, "mesh: a reply could not be handled");
    }
  }
}

/** Maps an error thrown by `publish` to a MeshError. */
export function publishError(err: unknown, subject: string): MeshError {
  const code = (err as { code?: string }).code;
  if (code === "MAX_PAYLOAD_EXCEEDED") return new MeshError("PAYLOAD_TOO_LARGE", `message to ${subject} exceeds the NATS server's max_payload`, { cause: err });
  return new MeshError("NODE_UNAVAILABLE", `cannot publish to ${subject}: ${(err as Error).message}`, { cause: err });
}
