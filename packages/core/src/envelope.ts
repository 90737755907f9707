// Wire envelopes on a node's own subject (`<prefix>.node.<nodeId>`), msgpack
// arrays, position by position (docs/PROTOCOL.md is the reference):
//
//   request: [1, kind, capability, actorType, id, payload, initArg, timeoutMs, hops]
//            kind 0 = call (request/reply), 1 = cast (publish, no reply);
//            initArg nil when absent; timeoutMs is the caller's budget (0 for casts);
//            hops counts forwards between nodes.
//   reply:   [1, 0, pid, result]          the call succeeded
//            [1, 1, code, message]        the call failed with a MeshError code
//
// Arrays, not maps: no key strings to write or read on the hot path.
import { Decoder, Encoder } from "@msgpack/msgpack";
import { ErrorCode, MeshError, isErrorCode } from "./errors.js";

/** The envelope layout version; the first element of every envelope. */
export const WIRE_VERSION = 1;

export const Kind = { CALL: 0, CAST: 1 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** A call or cast on its way to the owner node. */
export interface WireRequest {
  kind: Kind;
  capability: string;
  actorType: string;
  id: string;
  payload: unknown;
  initArg: unknown;
  timeoutMs: number;
  hops: number;
}

/** What came back from the owner: a result, or a MeshError. */
export type WireReply = { ok: true; pid: string; result: unknown } | { ok: false; code: ErrorCode; message: string };

const encoder = new Encoder();
const decoder = new Decoder();

/** Encodes a request; throws BAD_REQUEST when the payload or initArg cannot be encoded. */
export function encodeRequest(r: WireRequest): Uint8Array {
  try {
    return encoder.encode([WIRE_VERSION, r.kind, r.capability, r.actorType, r.id, r.payload, r.initArg ?? null, r.timeoutMs, r.hops]);
  } catch (err) {
    throw new MeshError("BAD_REQUEST", `payload or initArg cannot be encoded: ${messageOf(err)}`, { cause: err });
  }
}

/** Decodes a request; throws BAD_REQUEST with the reason when the bytes are not one. */
export function decodeRequest(bytes: Uint8Array): WireRequest {
  const e = decode(bytes, "request");
  if (e.length !== 9) throw bad("request", `expected an array of 9 elements, got ${e.length}`);
  const [, kind, capability, actorType, id, payload, initArg, timeoutMs, hops] = e;
  if (kind !== Kind.CALL && kind !== Kind.CAST) throw bad("request", `unknown kind ${String(kind)}`);
  if (typeof capability !== "string") throw bad("request", "capability must be a string");
  if (typeof actorType !== "string" || actorType === "") throw bad("request", "actor type must be a non-empty string");
  if (typeof id !== "string") throw bad("request", "id must be a string");
  if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) throw bad("request", "timeoutMs must be a number >= 0");
  if (typeof hops !== "number" || !(hops >= 0)) throw bad("request", "hops must be a number >= 0");
  return { kind, capability, actorType, id, payload, initArg: initArg ?? undefined, timeoutMs, hops };
}

/** Encodes a successful reply; throws BAD_REPLY when the result cannot be encoded. */
export function encodeResult(pid: string, result: unknown): Uint8Array {
  try {
    return encoder.encode([WIRE_VERSION, 0, pid, result]);
  } catch (err) {
    throw new MeshError("BAD_REPLY", `the reply of ${pid} cannot be encoded: ${messageOf(err)}`, { cause: err });
  }
}

/** Encodes a failed reply. Errors that are not MeshErrors travel as INTERNAL. */
export function encodeError(err: unknown): Uint8Array {
  const code = err instanceof MeshError ? err.code : ErrorCode.INTERNAL;
  return encoder.encode([WIRE_VERSION, 1, code, messageOf(err)]);
}

/** Decodes a reply; throws BAD_REPLY when the bytes are not one. */
export function decodeReply(bytes: Uint8Array): WireReply {
  const e = decode(bytes, "reply");
  if (e.length === 4 && e[1] === 0 && typeof e[2] === "string") return { ok: true, pid: e[2], result: e[3] };
  if (e.length === 4 && e[1] === 1 && isErrorCode(e[2]) && typeof e[3] === "string") return { ok: false, code: e[2], message: e[3] };
  throw new MeshError("BAD_REPLY", "malformed reply envelope");
}

/** The MeshError a failed reply stands for. */
export function replyError(reply: { code: ErrorCode; message: string }): MeshError {
  return new MeshError(reply.code, reply.message);
}

function decode(bytes: Uint8Array, what: "request" | "reply"): unknown[] {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (err) {
    throw bad(what, `not msgpack (${messageOf(err)})`);
  }
  if (!Array.isArray(value)) throw bad(what, "expected a msgpack array");
  if (value[0] !== WIRE_VERSION) throw bad(what, `unsupported envelope version ${String(value[0])}`);
  return value;
}

function bad(what: "request" | "reply", reason: string): MeshError {
  return new MeshError(what === "request" ? "BAD_REQUEST" : "BAD_REPLY", `malformed ${what} envelope: ${reason}`);
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
