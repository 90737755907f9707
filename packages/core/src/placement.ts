import { MeshError } from "./errors.js";
import { xxh32 } from "./hash.js";

/**
 * Chooses the owner of one shard of one capability among the nodes that
 * registered the capability. `nodes` is sorted and never empty. Must be a pure
 * function: every node evaluates it on its own view and must reach the same answer.
 */
export type PlacementFn = (shard: number, capability: string, nodes: readonly string[]) => string;

/** A built-in strategy name, or a function of your own. */
export type Strategy = "rendezvous" | "modulo" | PlacementFn;

/**
 * Rendezvous (highest-random-weight) placement: the owner of a shard is the
 * node with the highest XXH32(utf8(nodeId), seed = shard); on a tie, the node
 * that sorts first. A join moves about 1/(N+1) of the shards; a leave moves
 * only the leaver's shards.
 */
export const rendezvous: PlacementFn = (shard, _capability, nodes) => {
  let best = nodes[0]!;
  let bestWeight = xxh32(best, shard);
  for (let i = 1; i < nodes.length; i++) {
    const node = nodes[i]!;
    const weight = xxh32(node, shard);
    if (weight > bestWeight) {
      best = node;
      bestWeight = weight;
    }
  }
  return best;
};

/**
 * Modulo placement, the Elixir library's: `nodes[shard % nodes.length]`.
 * Simple, but a join or leave moves most shards (about N/(N+1)).
 */
export const modulo: PlacementFn = (shard, _capability, nodes) => nodes[shard % nodes.length]!;

/** A resolved strategy: the function and the name nodes announce to each other. */
export interface Placement {
  readonly name: string;
  readonly fn: PlacementFn;
}

/**
 * Resolves a strategy option. Nodes with different strategy names refuse each
 * other, so a custom function is named `custom:<function name>`.
 */
export function resolveStrategy(strategy: Strategy = "rendezvous"): Placement {
  if (strategy === "rendezvous") return { name: "rendezvous", fn: rendezvous };
  if (strategy === "modulo") return { name: "modulo", fn: modulo };
  if (typeof strategy === "function") return { name: `custom:${strategy.name || "anonymous"}`, fn: strategy };
  throw new MeshError("BAD_REQUEST", `unknown placement strategy ${JSON.stringify(strategy)}: use "rendezvous", "modulo" or a function`);
}
