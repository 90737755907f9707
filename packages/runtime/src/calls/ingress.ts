// The ingress: any NATS client (Go, C, Python, the `nats` CLI) calls or casts
// to an actor without this library, in JSON or msgpack (docs/PROTOCOL.md).
import { encode } from "@msgpack/msgpack";
import { ErrorCode, MeshError, isToken } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { cutMessage, decodeStrict, messageOf } from "@mesh/core/internal";
import type { Subjects } from "@mesh/transport";
import { headers } from "nats";
import type { Msg } from "nats";
import type { NodeMetrics } from "../operations/metrics.js";
import type { CallResult, MeshRequest } from "../types.js";
import { endWhenSettled, tracing, within } from "../operations/tracing.js";
import { ingressSpan } from "./call-spans.js";
import { refusesReply } from "./nats-reply.js";

/** What the ingress needs from its node. */
export interface IngressNode {
  call(request: MeshRequest): Promise<CallResult>;
  cast(request: MeshRequest): Promise<void>;
}

const MSGPACK = "application/msgpack";

/**
 * JSON.stringify drops functions and symbols without a word, writes NaN and ±Infinity as null and a binary as an
 * object of its bytes; a reply must not lose or change data silently (a Date is written as its ISO string, as the
 * value model's JSON form: docs/PROTOCOL.md).
 */
function strictJson(this: Record<string, unknown>, key: string, value: unknown): unknown {
  if (typeof value === "function" || typeof value === "symbol") throw new Error(`a ${typeof value} cannot be written as JSON`);
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`${String(value)} cannot be written as JSON`);
  // Before the replacer, a Buffer's toJSON made it { type, data }: the holder still has the binary.
  if (this[key] instanceof Uint8Array) throw new Error("a binary cannot be written as JSON (ask in msgpack)");
  return value;
}
/** Strict: a body that is not UTF-8 is refused, not read with U+FFFD in its place (two bodies would read as one). */
const text = new TextDecoder("utf-8", { fatal: true });
const utf8 = new TextEncoder();

/**
 * Answers `<prefix>.call.<capability>` and `<prefix>.cast.<capability>`: checks
 * each request and calls the actor through the usual routing. The node's
 * NATS service (service.ts) subscribes it in one queue group while the node
 * hosts any capability, so exactly one node takes each request.
 */
export class Ingress {
  constructor(
    private readonly node: IngressNode,
    private readonly subjects: Subjects,
    private readonly maxPayload: number,
    private readonly log: Logger,
    private readonly metrics: NodeMetrics,
  ) {}

  /** Handles one ingress message; never throws. */
  handle(msg: Msg, cast: boolean): void {
    try {
      this.#handle(msg, cast);
    } catch (err) {
      this.log.error({ subject: msg.subject, err: messageOf(err) }, "mesh: an ingress request failed");
    }
  }

  #handle(msg: Msg, cast: boolean): void {
    this.metrics.ingressRequests++;
    if (refusesReply(msg, this.subjects, this.log)) return; // not run: its answer would go where the sender may not write
    let msgpack = false;
    let unreadable: unknown; // headers nats.js does not take (a space in a name): the request is refused, in JSON
    try {
      msgpack = msg.headers?.get("Content-Type") === MSGPACK;
    } catch (err) {
      unreadable = err;
    }
    const reply = (body: object) => {
      if (!msg.reply) return;
      let bytes: Uint8Array;
      try {
        bytes = msgpack ? encode(body) : utf8.encode(JSON.stringify(body, strictJson));
      } catch (err) {
        throw new MeshError("BAD_REPLY", `the reply cannot be encoded as ${msgpack ? "msgpack" : "JSON"}: ${messageOf(err)}`);
      }
      if (bytes.length > this.maxPayload)
        throw new MeshError("PAYLOAD_TOO_LARGE", `the reply is ${bytes.length} bytes; the limit is ${this.maxPayload}`);
      if (msgpack) {
        const h = headers();
        h.set("Content-Type", MSGPACK);
        msg.respond(bytes, { headers: h });
      } else {
        msg.respond(bytes);
      }
    };
    /** A reply whose failure becomes an error reply, and never an exception. */
    const answer = (body: object) => {
      try {
        reply(body);
      } catch (err) {
        fail(err);
      }
    };
    const fail = (err: unknown) => {
      const code = err instanceof MeshError ? err.code : ErrorCode.INTERNAL;
      try {
        const rooted = err instanceof MeshError && err.rootCode !== err.code ? { rootCode: err.rootCode } : {};
        // A message too long for the payload limit is cut (JSON: at most 6 bytes per code unit): the error reply is never lost.
        reply({ ok: false, error: { code, message: cutMessage(messageOf(err), this.maxPayload - 256, 6), ...rooted } });
      } catch (e) {
        this.log.warn({ err: messageOf(e) }, "mesh: could not answer an ingress request");
      }
    };
    let request: MeshRequest;
    try {
      if (unreadable !== undefined) throw new MeshError("BAD_REQUEST", `the headers cannot be read: ${messageOf(unreadable)}`);
      request = this.#parse(msg, msgpack);
    } catch (err) {
      this.log.warn({ subject: msg.subject, err: messageOf(err) }, "mesh: refused an ingress request");
      return fail(err);
    }
    if (cast) this.#traced(msg, "cast", () => this.node.cast(request)).then(() => answer({ ok: true }), fail);
    else
      this.#traced(msg, "call", () => this.node.call(request)).then(
        (r) => answer({ ok: true, pid: r.pid, result: r.result ?? null }),
        fail,
      );
  }

  /** Runs `go` under the ingress span (while tracing is on), which continues the request's `traceparent` header. */
  #traced<T>(msg: Msg, method: "call" | "cast", go: () => Promise<T>): Promise<T> {
    if (!tracing.on) return go();
    const { span, ctx } = ingressSpan(msg.subject, method, msg.headers?.get("traceparent"), msg.headers?.get("tracestate"));
    return endWhenSettled(span, within(ctx, go));
  }

  /** The request in a message; throws BAD_REQUEST or PAYLOAD_TOO_LARGE saying what is wrong. */
  #parse(msg: Msg, msgpack: boolean): MeshRequest {
    if (msg.data.length > this.maxPayload) {
      throw new MeshError("PAYLOAD_TOO_LARGE", `the request is ${msg.data.length} bytes; the limit is ${this.maxPayload}`);
    }
    const capability = this.subjects.ingressCapability(msg.subject);
    if (!isToken(capability))
      throw new MeshError(
        "BAD_REQUEST",
        `the capability in the subject must be one token of A-Z a-z 0-9 _ -, got ${JSON.stringify(capability)}`,
      );
    let body: unknown;
    try {
      body = msgpack ? decodeStrict(msg.data) : JSON.parse(text.decode(msg.data));
    } catch (err) {
      throw new MeshError("BAD_REQUEST", `the body is not ${msgpack ? "msgpack" : "JSON"}: ${messageOf(err)}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new MeshError("BAD_REQUEST", "the body must be an object");
    const { actor, id, payload, initArg, timeoutMs } = body as Record<string, unknown>;
    if (typeof actor !== "string" || actor === "") throw new MeshError("BAD_REQUEST", `"actor" must be a non-empty string`);
    if (typeof id !== "string") throw new MeshError("BAD_REQUEST", `"id" must be a string`);
    if (timeoutMs !== undefined && typeof timeoutMs !== "number") throw new MeshError("BAD_REQUEST", `"timeoutMs" must be a number`);
    return {
      actor,
      id,
      capability,
      payload: payload ?? null,
      initArg: initArg ?? undefined,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    };
  }
}
