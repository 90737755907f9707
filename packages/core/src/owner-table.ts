import { MeshError } from "./errors.js";
import type { PlacementFn } from "./placement.js";
import { keyHolders, placementKeys } from "./placement-keys.js";
import type { KeyHolders, PlacedMember } from "./placement-keys.js";

/**
 * The owner of every shard of one capability, computed once per membership
 * change so that routing a call is an array index.
 */
export class OwnerTable {
  readonly #owners: Uint16Array;
  /** The node that holds each of `nodes` (placement-keys.ts): the key's own node, unless a node inherited it. */
  readonly holders: readonly string[];
  /** The yields it was made with, as one string (RoutingTable keeps a table while they do not change). */
  yields = "";

  /** `nodes`: the placement keys, sorted, unique and non-empty (at most 65,535); `holders`, when given, the node of each. */
  constructor(
    readonly capability: string,
    readonly nodes: readonly string[],
    shards: number,
    placement: PlacementFn,
    holders?: readonly string[],
    /**
     * holder → shards it yields: such a shard goes to the keys held by newer code than that holder, else to the next key
     * whose holder does not yield it (the first choice when all do).
     */
    yields?: KeyHolders["yields"],
  ) {
    this.holders = holders ?? nodes;
    const index = new Map(nodes.map((node, i) => [node, i]));
    this.#owners = new Uint16Array(shards);
    const yielding = (key: string) => yields?.get(this.holders[index.get(key) ?? -1] ?? "");
    for (let shard = 0; shard < shards; shard++) {
      let owner = placement(shard, capability, nodes);
      const gives = yields !== undefined && yields.size > 0 ? yielding(owner) : undefined;
      if (gives?.shards.has(shard) === true) {
        const newer = gives.newer.filter((k) => yielding(k)?.shards.has(shard) !== true);
        const rest = newer.length > 0 ? newer : nodes.filter((k) => yielding(k)?.shards.has(shard) !== true);
        if (rest.length > 0) owner = placement(shard, capability, rest);
      }
      const i = index.get(owner);
      if (i === undefined) {
        throw new MeshError(
          "INTERNAL",
          `placement returned ${JSON.stringify(owner)} for shard ${shard} of "${capability}", which is not one of its nodes`,
        );
      }
      this.#owners[shard] = i;
    }
  }

  /** The node that owns `shard`. */
  owner(shard: number): string {
    return this.holders[this.#owners[shard]!]!;
  }

  /** How many shards each node owns. */
  shardCounts(): Map<string, number> {
    const counts = new Map<string, number>(this.holders.map((n) => [n, 0]));
    for (const i of this.#owners) counts.set(this.holders[i]!, counts.get(this.holders[i]!)! + 1);
    return counts;
  }
}

/**
 * The cluster's routing state: which nodes registered which capabilities, and
 * an owner table per capability, built lazily and dropped when membership changes.
 */
export class RoutingTable {
  #capabilities = new Map<string, readonly string[]>();
  #domains = new Map<string, KeyHolders>();
  #tables = new Map<string, OwnerTable>();
  #all: readonly string[] = [];

  constructor(
    readonly shards: number,
    readonly placement: PlacementFn,
  ) {}

  /** Replaces the membership: each member's id, the capabilities it registered, and its placement key, standby and heir (placement-keys.ts). */
  setMembers(members: Iterable<PlacedMember>): void {
    const list = [...members];
    const byCapability = new Map<string, string[]>();
    for (const { node, capabilities } of list) {
      for (const capability of capabilities) {
        let nodes = byCapability.get(capability);
        if (!nodes) byCapability.set(capability, (nodes = []));
        nodes.push(node);
      }
    }
    const keys = placementKeys(list);
    const next = new Map<string, readonly string[]>();
    const domains = new Map<string, KeyHolders>();
    for (const [capability, nodes] of byCapability) {
      next.set(capability, [...new Set(nodes)].sort());
      domains.set(capability, keyHolders(capability, list, keys));
    }
    // Keep the owner tables whose keys, holders and yields did not change.
    const tables = new Map<string, OwnerTable>();
    for (const [capability, table] of this.#tables) {
      const domain = domains.get(capability);
      const same = domain !== undefined && sameList(table.nodes, domain.keys) && sameList(table.holders, domain.holders);
      if (same && table.yields === yieldsOf(domain)) tables.set(capability, table);
    }
    this.#capabilities = next;
    this.#domains = domains;
    this.#tables = tables;
    this.#all = [...next.keys()].sort();
  }

  /** Sorted ids of the nodes that registered `capability` (empty when none). */
  nodesFor(capability: string): readonly string[] {
    return this.#capabilities.get(capability) ?? [];
  }

  /** Every capability some node registered, sorted. */
  allCapabilities(): readonly string[] {
    return this.#all;
  }

  /** The owner table of `capability`, or undefined when no node registered it. */
  table(capability: string): OwnerTable | undefined {
    let table = this.#tables.get(capability);
    if (table === undefined) {
      const domain = this.#domains.get(capability);
      if (domain === undefined) return undefined;
      table = new OwnerTable(capability, domain.keys, this.shards, this.placement, domain.holders, domain.yields);
      table.yields = yieldsOf(domain);
      this.#tables.set(capability, table);
    }
    return table;
  }

  /** The owner of (`capability`, `shard`), or undefined when no node registered the capability. */
  owner(capability: string, shard: number): string | undefined {
    return this.table(capability)?.owner(shard);
  }
}

/** A domain's yields as one string, to tell whether a table still applies. */
const yieldsOf = (domain: KeyHolders) =>
  [...domain.yields].map(([holder, y]) => `${holder}:${[...y.shards].sort((a, b) => a - b).join(",")}>${y.newer.join(",")}`).join(";");

function sameList(a: readonly string[], b: readonly string[] | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
