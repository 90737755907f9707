// `<prefix>.cluster.forget`: an operator deleted an actor's stored state
// (`mesh state delete`); every node ends its live activation of that actor
// before its next turn, so the next message starts from the initial state.
// The body is JSON: {"capability": "cart", "actorType": "cart", "id": "cart-1"} (docs/PROTOCOL.md).
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { checkId, checkToken, messageOf } from "@mesh/core/internal";
import type { Msg } from "nats";
import type { Replies } from "../calls/nats-reply.js";

export interface Forget {
  capability: string;
  actorType: string;
  id: string;
}

/** Decodes a forget message; throws BAD_REQUEST when it is not one. */
export function decodeForget(data: Uint8Array): Forget {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new MeshError("BAD_REQUEST", "a forget message must be JSON");
  }
  const { capability, actorType, id } = (body ?? {}) as Partial<Forget>;
  if (typeof actorType !== "string" || actorType === "")
    throw new MeshError("BAD_REQUEST", "a forget message needs a non-empty string actorType");
  return { capability: checkToken(capability, "capability"), actorType, id: checkId(id) };
}

export function encodeForget(f: Forget): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ capability: f.capability, actorType: f.actorType, id: f.id }));
}

/**
 * A node's answer to a forget message: its live activation of the actor, if
 * any, ends before its next turn; a request gets `{"node", "ended"}`. Bad
 * messages are logged and dropped.
 */
export function serveForget(
  msg: Msg,
  actors: { forget(capability: string, actorType: string, id: string): boolean },
  replies: Replies,
  nodeId: string,
  log: Logger,
): void {
  try {
    const { capability, actorType, id } = decodeForget(msg.data);
    const ended = actors.forget(capability, actorType, id);
    if (ended) log.info({ capability, actorType, id }, "mesh: state deleted by an operator; the activation ends");
    if (msg.reply) replies.respond(msg, new TextEncoder().encode(JSON.stringify({ node: nodeId, ended })));
  } catch (err) {
    log.warn({ subject: msg.subject, err: messageOf(err) }, "mesh: refused a message on the forget subject");
  }
}
