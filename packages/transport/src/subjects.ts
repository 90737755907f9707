import { MeshError, isToken } from "@mesh/core";

/**
 * Every subject Mesh uses, under a prefix (default `mesh`):
 *
 *   <prefix>.node.<nodeId>         a node's own subject: calls (requests) and casts (publishes)
 *   <prefix>.cluster.heartbeat     periodic announcements of every node
 *   <prefix>.cluster.discover      "who is there?": every member answers with its announcement
 *   <prefix>.cluster.leave         a node's goodbye on a graceful stop
 */
export class Subjects {
  readonly heartbeat: string;
  readonly discover: string;
  readonly leave: string;
  readonly #node: string;

  /** `prefix` is one or more tokens joined by dots; throws BAD_REQUEST otherwise. */
  constructor(readonly prefix = "mesh") {
    if (typeof prefix !== "string" || !prefix.split(".").every(isToken)) {
      throw new MeshError("BAD_REQUEST", `prefix must be subject tokens joined by dots, got ${JSON.stringify(prefix)}`);
    }
    this.heartbeat = `${prefix}.cluster.heartbeat`;
    this.discover = `${prefix}.cluster.discover`;
    this.leave = `${prefix}.cluster.leave`;
    this.#node = `${prefix}.node.`;
  }

  /** The subject of node `nodeId` (a valid token, checked by the caller). */
  node(nodeId: string): string {
    return this.#node + nodeId;
  }
}
