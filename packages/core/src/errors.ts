/**
 * Every error Mesh reports carries one of these codes. The same codes travel on
 * the wire (reply envelopes) and are documented in docs/errors.md.
 */
export const ErrorCode = {
  /** No node has registered the capability the request names. */
  NO_NODES: "NO_NODES",
  /** The owner node does not host the requested actor type. */
  UNKNOWN_ACTOR_TYPE: "UNKNOWN_ACTOR_TYPE",
  /** The actor's handler threw (or its promise rejected); the activation was dropped. */
  ACTOR_CRASHED: "ACTOR_CRASHED",
  /** The actor's constructor or onActivate threw; nothing was cached, the next call tries again. */
  ACTIVATION_FAILED: "ACTIVATION_FAILED",
  /** No reply within the call timeout. The call may or may not have run. */
  TIMEOUT: "TIMEOUT",
  /** The actor's turn ran longer than its maxTurnMs: the activation was dropped, nothing of the turn was stored or published, and the next message starts a fresh activation. */
  TURN_TIMEOUT: "TURN_TIMEOUT",
  /** The request is malformed: missing or invalid id, actor, capability, payload or envelope. */
  BAD_REQUEST: "BAD_REQUEST",
  /** The owner node could not be reached (it is gone) and no other owner was found. */
  NODE_UNAVAILABLE: "NODE_UNAVAILABLE",
  /** The encoded request or reply is larger than the configured maximum. */
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  /** The actor's reply could not be encoded for the wire (a function, a symbol, a cycle…). */
  BAD_REPLY: "BAD_REPLY",
  /** A durable actor's commit found the stored revision moved: another activation of the same id committed first. The turn was not stored; the activation was dropped. */
  STATE_CONFLICT: "STATE_CONFLICT",
  /** The state store (JetStream KV) did not answer in time or refused the operation; for durable actors, the turn was not stored and the activation was dropped. */
  STORAGE_UNAVAILABLE: "STORAGE_UNAVAILABLE",
  /** A durable actor's state cannot be stored: msgpack cannot encode it (a function, a cycle, a Map…); the turn was not stored and the activation was dropped. */
  BAD_STATE: "BAD_STATE",
  /** A durable actor's state was stored by newer code (a `stateVersion` above this node's class's): this node does not read it, and nothing was activated. It runs where code of that version runs (docs/state.md "State versions"). */
  STATE_TOO_NEW: "STATE_TOO_NEW",
  /** An actor's call would wait on itself: the target's turn already waits on this call (A calls B, B calls A). The message names the chain. */
  CALL_CYCLE: "CALL_CYCLE",
  /** The node could not connect to NATS (no server answered at the URLs tried, or the server refused the credentials), or another live node already uses its nodeId. The message names the URLs or the node id. */
  CONNECTION_FAILED: "CONNECTION_FAILED",
  /** The actor type is bound to other capabilities (`static capabilities`) than the one the request came through; nothing was activated. The message names the allowed ones. */
  WRONG_CAPABILITY: "WRONG_CAPABILITY",
  /** The actor's mailbox, or the owner node's queues, are full: the call or cast was refused before it was queued and did not run. Retry later, with backoff. */
  OVERLOADED: "OVERLOADED",
  /** The local node is stopping or stopped and takes no new calls. */
  STOPPED: "STOPPED",
  /** A bug or an unexpected failure inside Mesh; the message says what. */
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const codes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** True when `code` is one of Mesh's documented error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && codes.has(code);
}

/**
 * The one error class Mesh throws. `code` says what went wrong, `message`
 * says where. `rootCode` is the code at the bottom of its causes: an
 * ACTOR_CRASHED whose handler failed with an uncaught CALL_CYCLE (or another
 * actor's ACTOR_CRASHED caused by one) has `rootCode` "CALL_CYCLE", the same
 * whether the actors were local or remote; otherwise it is `code`.
 */
export class MeshError extends Error {
  override readonly name = "MeshError";
  readonly rootCode: ErrorCode;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions & { rootCode?: ErrorCode },
  ) {
    super(message, options);
    this.rootCode = options?.rootCode ?? (options?.cause instanceof MeshError ? options.cause.rootCode : code);
  }
}
