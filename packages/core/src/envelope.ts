// Wire envelopes on a node's own subject (`<prefix>.node.<nodeId>`), msgpack
// arrays, position by position (docs/PROTOCOL.md is the reference):
//
//   request: [1, kind, capability, actorType, id, timeoutMs, hops, initArg, payload]
//            or the same with a 10th element, chain: the actors whose turns
//            wait on this call ("<capability>/<actorType>/<id>", calls between actors);
//            a traced call adds an 11th, its W3C traceparent (the 10th is then
//            the chain or nil), and a 12th, its tracestate, when it has one;
//            kind 0 = call (request/reply), 1 = cast (publish, no reply),
//            2 = event (request/reply: a stream event for handleEvent, docs/events.md);
//            timeoutMs is the caller's budget (0 for casts); hops counts
//            forwards between nodes; initArg nil when absent.
//   reply:   [1, 0, pid, result]          the call succeeded
//            [1, 1, code, message]        the call failed with a MeshError code
//            [1, 1, code, message, root]  the same, whose root cause had another code
//
// Payloads, initArg and results are checked against the value model as they
// are written (value-writer.ts), so a value is refused the same way here as by
// a local call.
//
// Arrays, not maps: no key strings to write or read. The fixed heads are
// written and read by hand (msgpack-head.ts) and only the user's values go
// through the msgpack library; the variable values come last so the head can
// be read without decoding them. Measured here: 0.6 µs to decode a request
// with @msgpack/msgpack alone, against ... with the hand-read head.
import { ErrorCode, MeshError, isErrorCode } from "./errors.js";
import { HeadReader, HeadWriter } from "./msgpack-head.js";
import { MAX_ID_LENGTH, checkId } from "./tokens.js";
import { writeValue } from "./value-writer.js";
import { decodeValue } from "./value-reader.js";

/** The envelope layout version; the first element of every envelope. */
export const WIRE_VERSION = 1;

/** What a request is: a call, a cast, a stream event, or an activation handed to its new owner (live migration). */
export const Kind = { CALL: 0, CAST: 1, EVENT: 2, MIGRATE: 3 } as const;
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
  /** Calls between actors: the actors whose turns wait on this call, outermost first. */
  chain?: readonly string[] | undefined;
  /** The caller's span, as a W3C traceparent, when the call is traced (docs/observability.md). */
  trace?: string | undefined;
  /** The trace's W3C tracestate, when it has one. */
  traceState?: string | undefined;
}

/** What came back from the owner: a result, or a MeshError. */
export type WireReply = { ok: true; pid: string; result: unknown } | { ok: false; code: ErrorCode; message: string; rootCode?: ErrorCode };

const head = new HeadWriter();
const reader = new HeadReader();
const EMPTY = new Uint8Array(0);
const NIL = 0xc0;

/** Encodes a request; throws BAD_REQUEST when the payload or initArg cannot be encoded. */
export function encodeRequest(r: WireRequest): Uint8Array {
  const chained = r.chain !== undefined && r.chain.length > 0;
  const trace = r.trace;
  const w = head.reset();
  w.byte(trace !== undefined ? (r.traceState !== undefined ? 0x9c : 0x9b) : chained ? 0x9a : 0x99);
  w.byte(WIRE_VERSION);
  w.byte(r.kind);
  w.str(r.capability);
  w.str(r.actorType);
  w.str(r.id);
  w.uint(r.timeoutMs);
  w.uint(r.hops);
  if (r.initArg === undefined || r.initArg === null) w.byte(NIL);
  else writeValue(w, r.initArg, "BAD_REQUEST", "initArg");
  writeValue(w, r.payload, "BAD_REQUEST", "payload");
  if (chained) writeValue(w, r.chain, "BAD_REQUEST", "chain");
  if (trace !== undefined) {
    if (!chained) w.byte(NIL);
    w.str(trace);
    if (r.traceState !== undefined) w.str(r.traceState);
  }
  return w.done();
}

/** Decodes a request; throws BAD_REQUEST with the reason when the bytes are not one. */
export function decodeRequest(bytes: Uint8Array): WireRequest {
  // Fast path: the head as this library writes it, and no initArg.
  const r = reader.reset(bytes);
  if (r.byte() === 0x99 && r.byte() === WIRE_VERSION) {
    const kind = r.byte();
    const capability = r.name();
    const actorType = r.name();
    const id = r.str();
    const timeoutMs = r.uint();
    const hops = r.uint();
    if (
      (kind === Kind.CALL || kind === Kind.CAST || kind === Kind.EVENT || kind === Kind.MIGRATE) &&
      capability !== undefined &&
      actorType &&
      id !== undefined &&
      id.length <= MAX_ID_LENGTH && // read strictly: well-formed; a longer one is refused below
      timeoutMs !== undefined &&
      hops !== undefined &&
      r.byte() === NIL
    ) {
      try {
        return { kind, capability, actorType, id, payload: decodeValue(bytes, r.pos), initArg: undefined, timeoutMs, hops };
      } catch {
        // reported by the generic path below
      }
    }
  }
  const e = decode(bytes, "request");
  if (e.length < 9 || e.length > 12) throw bad("request", `expected an array of 9 to 12 elements, got ${e.length}`);
  const [, kind, capability, actorType, id, timeoutMs, hops, initArg, payload, chain, trace, traceState] = e;
  if (kind !== Kind.CALL && kind !== Kind.CAST && kind !== Kind.EVENT && kind !== Kind.MIGRATE)
    throw bad("request", `unknown kind ${String(kind)}`);
  if (typeof capability !== "string") throw bad("request", "capability must be a string");
  if (typeof actorType !== "string" || actorType === "") throw bad("request", "actor type must be a non-empty string");
  if (typeof id !== "string") throw bad("request", "id must be a string");
  checkId(id); // as every entry point checks it: the library reads malformed UTF-8 leniently (a lone surrogate, say)
  if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) throw bad("request", "timeoutMs must be a number >= 0");
  if (typeof hops !== "number" || !(hops >= 0)) throw bad("request", "hops must be a number >= 0");
  if (chain !== undefined && chain !== null && !(Array.isArray(chain) && chain.every((c) => typeof c === "string")))
    throw bad("request", "chain must be an array of strings");
  if ((trace !== undefined && typeof trace !== "string") || (traceState !== undefined && typeof traceState !== "string"))
    throw bad("request", "the trace context must be strings");
  return {
    kind,
    capability,
    actorType,
    id,
    payload,
    initArg: initArg ?? undefined,
    timeoutMs,
    hops,
    ...(Array.isArray(chain) && chain.length > 0 ? { chain: chain as string[] } : {}),
    ...(trace !== undefined ? { trace } : {}),
    ...(traceState !== undefined ? { traceState } : {}),
  };
}

/** Encodes a successful reply; throws BAD_REPLY when the result cannot be encoded. */
export function encodeResult(pid: string, result: unknown): Uint8Array {
  const w = head.reset();
  w.byte(0x94);
  w.byte(WIRE_VERSION);
  w.byte(0);
  w.str(pid);
  writeValue(w, result, "BAD_REPLY", "the reply", pid);
  return w.done();
}

/** Bytes an error envelope takes besides its message, at most (the codes are short ASCII). */
const ERROR_HEAD_BYTES = 128;

/**
 * Encodes a failed reply. Errors that are not MeshErrors travel as INTERNAL. A message that would take the envelope past
 * `maxBytes` is cut (and says so): an error reply is never lost to its size.
 */
export function encodeError(err: unknown, maxBytes = Infinity): Uint8Array {
  const rooted = err instanceof MeshError && err.rootCode !== err.code;
  const message = cutMessage(messageOf(err), maxBytes - ERROR_HEAD_BYTES, 3); // UTF-8: at most 3 bytes per UTF-16 code unit
  const w = head.reset();
  w.byte(rooted ? 0x95 : 0x94);
  w.byte(WIRE_VERSION);
  w.byte(1);
  w.str(err instanceof MeshError ? err.code : ErrorCode.INTERNAL);
  w.str(message);
  if (rooted) w.str(err.rootCode);
  return w.finish(EMPTY);
}

/** Decodes a reply; throws BAD_REPLY when the bytes are not one. */
export function decodeReply(bytes: Uint8Array): WireReply {
  const r = reader.reset(bytes);
  if (r.byte() === 0x94 && r.byte() === WIRE_VERSION && r.byte() === 0) {
    const pid = r.str();
    if (pid !== undefined) {
      try {
        return { ok: true, pid, result: decodeValue(bytes, r.pos) };
      } catch {
        // reported by the generic path below
      }
    }
  }
  const e = decode(bytes, "reply");
  if (e.length === 4 && e[1] === 0 && typeof e[2] === "string") return { ok: true, pid: e[2], result: e[3] };
  if (e.length === 4 && e[1] === 1 && isErrorCode(e[2]) && typeof e[3] === "string") return { ok: false, code: e[2], message: e[3] };
  if (e.length === 5 && e[1] === 1 && isErrorCode(e[2]) && typeof e[3] === "string" && isErrorCode(e[4]))
    return { ok: false, code: e[2], message: e[3], rootCode: e[4] };
  throw new MeshError("BAD_REPLY", "malformed reply envelope");
}

/** The MeshError a failed reply stands for. */
export function replyError(reply: { code: ErrorCode; message: string; rootCode?: ErrorCode }): MeshError {
  return new MeshError(reply.code, reply.message, reply.rootCode ? { rootCode: reply.rootCode } : undefined);
}

function decode(bytes: Uint8Array, what: "request" | "reply"): unknown[] {
  let value: unknown;
  try {
    value = decodeValue(bytes); // the library's reading, but for a leading byte order mark, which it keeps
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

/**
 * An error message that takes at most `maxBytes` bytes once encoded at `bytesPerUnit` bytes per UTF-16 code unit at
 * most (3 in UTF-8, 6 in JSON), or its start and how long it was.
 */
export function cutMessage(message: string, maxBytes: number, bytesPerUnit: number): string {
  if (message.length * bytesPerUnit <= maxBytes) return message;
  const keep = Math.max(0, Math.floor(maxBytes / bytesPerUnit) - 48);
  return `${message.slice(0, keep)}… (cut from ${message.length} characters)`;
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
