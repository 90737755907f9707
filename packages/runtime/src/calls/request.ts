import { MeshError, isToken, shardOfHash, xxh32 } from "@mesh/core";
import type { RoutingTable } from "@mesh/core";
import { Kind, checkId, encodeRequest } from "@mesh/core/internal";
import type { WireRequest } from "@mesh/core/internal";
import { actorTypeOf, wrongCapability } from "../actors/actor.js";
import { boundCapabilities, chosenCapability, reachableUnder } from "../capabilities.js";
import { MAX_TIMEOUT_MS, isTimeout } from "../options.js";
import type { MeshRequest } from "../types.js";
import type { Routed } from "./remote-call.js";

/** What the routing node itself hosts, for NO_NODES messages that say why. */
export interface LocalHosting {
  /** True when this node's `actors` include the actor type. */
  hosts(actorType: string): boolean;
  /** The capabilities this node registered. */
  capabilities(): readonly string[];
}

/**
 * Checks a request and finds its owner in `routes`. Throws BAD_REQUEST (a
 * bad actor, id, capability or timeout) or NO_NODES.
 */
export function routeRequest(
  request: MeshRequest,
  kind: Kind,
  routes: RoutingTable,
  shards: number,
  callTimeoutMs: number,
  local?: LocalHosting,
): Routed {
  if (typeof request !== "object" || request === null) throw new MeshError("BAD_REQUEST", "the request must be an object");
  const timeoutMs = kind === Kind.CAST ? 0 : (request.timeoutMs ?? callTimeoutMs);
  const actorType = actorTypeOf(request.actor);
  const id = checkId(request.id);
  const bound = typeof request.actor === "function" ? boundCapabilities(request.actor) : undefined;
  const capability = chosenCapability(request.capability, bound);
  if (capability === undefined)
    throw new MeshError("BAD_REQUEST", `capability is required: ${actorType} declares none (static capabilities)`);
  if (!reachableUnder(capability, bound)) throw wrongCapability(actorType, capability, bound!);
  const hash = xxh32(id);
  const shard = shardOfHash(hash, shards);
  const owner = routes.owner(capability, shard);
  if (owner === undefined) {
    if (!isToken(capability))
      throw new MeshError("BAD_REQUEST", `capability must be 1-128 of A-Z a-z 0-9 _ -, got ${JSON.stringify(capability)}`);
    throw noNodes(capability, routes, local?.hosts(actorType) ? { actorType, capabilities: local.capabilities() } : undefined);
  }
  if (kind === Kind.CALL && !isTimeout(timeoutMs))
    throw new MeshError("BAD_REQUEST", `timeoutMs must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${String(timeoutMs)}`);
  return { kind, capability, actorType, id, payload: request.payload, initArg: request.initArg, timeoutMs, hops: 0, shard, owner, hash };
}

/** Encodes a request for the wire; throws BAD_REQUEST (unencodable) or PAYLOAD_TOO_LARGE. */
export function encodeWithin(r: WireRequest, maxPayload: number): Uint8Array {
  const bytes = encodeRequest(r);
  if (bytes.length > maxPayload)
    throw new MeshError("PAYLOAD_TOO_LARGE", `the request is ${bytes.length} bytes encoded; the limit is ${maxPayload}`);
  return bytes;
}

/**
 * NO_NODES for `capability`, naming the capabilities the cluster knows, and,
 * when this node hosts the actor type (`hostedHere`), that it registered no
 * such capability.
 */
export function noNodes(
  capability: string,
  routes: RoutingTable,
  hostedHere?: { actorType: string; capabilities: readonly string[] },
): MeshError {
  const known = routes.allCapabilities();
  let message = `no node has registered the capability "${capability}" (the cluster knows ${known.length > 0 ? known.map((c) => `"${c}"`).join(", ") : "no capability"})`;
  if (hostedHere !== undefined) {
    const own =
      hostedHere.capabilities.length > 0
        ? `it registered ${hostedHere.capabilities.map((c) => `"${c}"`).join(", ")}`
        : "it registered none";
    message += `; this node hosts actor type "${hostedHere.actorType}" but registered no capability "${capability}" (${own}): add it to capabilities or registerCapabilities`;
  }
  return new MeshError("NO_NODES", message);
}
