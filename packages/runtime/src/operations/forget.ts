// An operator ends an actor's live activation, on whichever node holds it:
// `<prefix>.cluster.forget`: its stored state was deleted (`mesh state
// delete`); every node ends its live activation of that actor before its next
// turn, so the next message starts from the initial state.
// `<prefix>.cluster.reset` (`mesh actor reset`): the activation is dropped,
// and the turn it is in, if any, is abandoned as at its deadline.
// The body is JSON: {"capability": "cart", "actorType": "cart", "id": "cart-1"} (docs/PROTOCOL.md).
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { checkId, checkToken, messageOf } from "@mesh/core/internal";
import type { Msg } from "nats";
import type { Subjects } from "@mesh/transport";
import { refusesReply } from "../calls/nats-reply.js";
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

/** What an operator's message does to the live activation (Supervisor.end). */
export type OperatorEnd = "forget" | "reset";

const ENDED: Record<OperatorEnd, string> = {
  forget: "mesh: state deleted by an operator; the activation ends",
  reset: "mesh: an operator reset the actor; its activation was dropped",
};

/**
 * A node's answer to a forget or reset message: its live activation of the
 * actor, if any, ends; a request gets `{"node", "ended"}`. Bad messages are
 * logged and dropped.
 */
export function serveForget(
  msg: Msg,
  how: OperatorEnd,
  actors: { end(capability: string, actorType: string, id: string, how: OperatorEnd): boolean },
  p: { replies: Replies; subjects: Subjects; nodeId: string; log: Logger },
): void {
  const { replies, nodeId, log } = p;
  if (refusesReply(msg, p.subjects, log)) return;
  try {
    const { capability, actorType, id } = decodeForget(msg.data);
    const ended = actors.end(capability, actorType, id, how);
    if (ended) log.info({ capability, actorType, id }, ENDED[how]);
    if (msg.reply) replies.respond(msg, new TextEncoder().encode(JSON.stringify({ node: nodeId, ended })));
  } catch (err) {
    log.warn({ subject: msg.subject, err: messageOf(err) }, `mesh: refused a message on the ${how} subject`);
  }
}
