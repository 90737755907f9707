// The presence probe (docs/PROTOCOL.md): an empty request on a node's subject.
// Claiming a node id (no two live nodes may serve one), and telling a member
// that died from one that is slow (discovery need not wait for the first).
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { NatsConnection } from "nats";
import { classifyNatsError } from "./jetstream.js";
import type { Subjects } from "./subjects.js";

/**
 * Throws CONNECTION_FAILED when a live node already serves `nodeId`: an empty
 * request on its node subject (a presence probe, PROTOCOL.md) is answered by
 * any node subscribed there. "No responders" means the id is free. No answer
 * within `timeoutMs` means a holder that does not answer (a frozen process, a
 * connection the server has not yet found dead): logged, and the id is taken.
 */
export async function claimNodeId(nc: NatsConnection, subjects: Subjects, nodeId: string, timeoutMs: number, log: Logger): Promise<void> {
  try {
    await nc.request(subjects.node(nodeId), new Uint8Array(0), { timeout: timeoutMs });
  } catch (err) {
    if (classifyNatsError(err) === "no-responders") return; // nobody serves this id
    log.warn(
      { node: nodeId, err: messageOf(err) },
      "mesh: a subscriber on this node's subject did not answer the presence probe; starting anyway",
    );
    return;
  }
  throw new MeshError(
    "CONNECTION_FAILED",
    `another live node already uses the node id "${nodeId}" (it answered on ${subjects.node(nodeId)}); give every node its own nodeId`,
  );
}

/** True when a process serving `nodeId`'s subject answers a presence probe within `timeoutMs`. */
export async function answersProbe(nc: NatsConnection, subjects: Subjects, nodeId: string, timeoutMs: number): Promise<boolean> {
  try {
    await nc.request(subjects.node(nodeId), new Uint8Array(0), { timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}

/**
 * True when no process serves `nodeId`'s subject now (the server answers "no responders" at once: the node
 * died, or the server closed its connection). Discovery does not wait for it; it removes nobody. False when
 * anything answers, or nothing within `timeoutMs`.
 */
export async function isGone(nc: NatsConnection, subjects: Subjects, nodeId: string, timeoutMs: number): Promise<boolean> {
  try {
    await nc.request(subjects.node(nodeId), new Uint8Array(0), { timeout: timeoutMs });
    return false;
  } catch (err) {
    return classifyNatsError(err) === "no-responders";
  }
}
