// The replies a node sends over NATS: to remote callers, and to the tools and
// nodes that ask it something. Nothing here may throw into a nats.js callback.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { encodeError, encodeResult, messageOf } from "@mesh/core/internal";
import type { Msg } from "nats";
import type { ReplyTo } from "./activation.js";

/** Encodes and sends a node's replies within its payload limit. */
export class Replies {
  constructor(
    private readonly maxPayload: number,
    private readonly log: Logger,
  ) {}

  /** Encodes a successful reply; an unencodable or oversized one becomes an error reply. */
  encode(pid: string, result: unknown): Uint8Array {
    try {
      const bytes = encodeResult(pid, result);
      if (bytes.length > this.maxPayload) {
        throw new MeshError("PAYLOAD_TOO_LARGE", `the reply of ${pid} is ${bytes.length} bytes encoded; the limit is ${this.maxPayload}`);
      }
      return bytes;
    } catch (err) {
      this.log.warn({ pid, err: messageOf(err) }, "mesh: reply not sent");
      return encodeError(err);
    }
  }

  /** Sends a reply, logging (never throwing) when NATS refuses it. */
  respond(msg: Msg, bytes: Uint8Array): void {
    try {
      msg.respond(bytes);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, "mesh: could not send a reply");
    }
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
    this.replies.respond(this.msg, encodeError(err));
  }
  /** A forwarded call's reply, passed on as it is. */
  bytes(data: Uint8Array): void {
    this.replies.respond(this.msg, data);
  }
}
