import type { ActorClass } from "./actor.js";

/** A call or cast: which actor, which id, under which capability, with what payload. */
export interface MeshRequest {
  /** The actor class, or its actor type name. */
  actor: ActorClass | string;
  /** The actor id: any string of at most 1024 characters. */
  id: string;
  /** What the handler receives. Must be msgpack-encodable when the owner is another node. */
  payload?: unknown;
  /** The capability whose nodes may own the actor. */
  capability: string;
  /** Handed to the constructor when this call activates the actor; ignored once it lives. */
  initArg?: unknown;
  /** This call's timeout in ms (calls only). @default the node's callTimeoutMs */
  timeoutMs?: number;
}
