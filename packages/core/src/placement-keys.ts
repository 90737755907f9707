// Placement keys (docs/deploying.md "Placement during a roll"): what the
// placement strategy ranks is a key per node, not the node itself. A node's
// key is its id, unless it inherited another: a node of newer code joins as a
// standby (it owns nothing while an older member may leave), and a leaving
// node names a standby its heir, which takes its key, so exactly the
// leaver's shards go to it, once, and to newer code.
import type { Announcement } from "./announcement.js";

/** What placement reads of a member's announcement. */
export type PlacedMember = Pick<Announcement, "node" | "capabilities"> &
  Partial<Pick<Announcement, "keys" | "key" | "standby" | "heir" | "app" | "yields">>;

/** The application version of a member that sets none. */
export const UNVERSIONED = "unversioned";

/**
 * Orders application versions: part by part, runs of digits as numbers and
 * the rest as text ("1.10.0" after "1.9.2"); "unversioned" (or none) before
 * any other. Negative when `a` is older.
 */
export function compareVersions(a: string | undefined, b: string | undefined): number {
  const x = a === undefined || a === UNVERSIONED ? undefined : a;
  const y = b === undefined || b === UNVERSIONED ? undefined : b;
  if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? -1 : 1;
  const px = x.match(/\d+|\D+/g)!;
  const py = y.match(/\d+|\D+/g)!;
  for (let i = 0; i < Math.min(px.length, py.length); i++) {
    const [p, q] = [px[i]!, py[i]!];
    const numeric = /^\d/.test(p) && /^\d/.test(q);
    const c = numeric ? Number(p) - Number(q) || p.length - q.length : p < q ? -1 : p > q ? 1 : 0;
    if (c !== 0) return Math.sign(c);
  }
  return Math.sign(px.length - py.length);
}

/**
 * The key each member places under (undefined: a standby no leaver named); a
 * leaver's own key stays with it until it leaves. While a member does not know
 * placement keys (a Mesh before them), every member places under its node id,
 * as that member does.
 */
export function placementKeys(members: readonly PlacedMember[]): Map<string, string | undefined> {
  const keys = new Map<string, string | undefined>();
  if (members.some((m) => m.keys !== true)) {
    for (const m of members) keys.set(m.node, m.node);
    return keys;
  }
  const inherited = new Map<string, string>();
  // A leaving member (no capabilities) that names a standby heir: the heir places under the leaver's key.
  for (const m of [...members].sort((a, b) => (a.node < b.node ? -1 : 1)))
    if (m.capabilities.length === 0 && m.heir !== undefined && !inherited.has(m.heir)) inherited.set(m.heir, m.key ?? m.node);
  for (const m of members) keys.set(m.node, m.standby === true ? inherited.get(m.node) : (m.key ?? m.node));
  return keys;
}

/** One capability's placement domain: its keys, sorted, the member that holds each, and the shards each holder gives up. */
export interface KeyHolders {
  readonly keys: readonly string[];
  readonly holders: readonly string[];
  /**
   * holder → the shards of this capability it yields (announcement `yields`; none while a member does not know keys),
   * and the keys held by newer code than it, where those shards go first.
   */
  readonly yields: ReadonlyMap<string, { readonly shards: ReadonlySet<number>; readonly newer: readonly string[] }>;
}

/**
 * The keys of `capability` and who holds each: of the members that
 * registered it, those with a key (when none has, every one under its own
 * id); of several under one key, the newest code, then the first id.
 */
export function keyHolders(
  capability: string,
  members: readonly PlacedMember[],
  keys: ReadonlyMap<string, string | undefined>,
): KeyHolders {
  const candidates = members.filter((m) => m.capabilities.includes(capability));
  const keyed = candidates.filter((m) => keys.get(m.node) !== undefined);
  const placed = keyed.length > 0 ? keyed.map((m) => [keys.get(m.node)!, m] as const) : candidates.map((m) => [m.node, m] as const);
  const best = new Map<string, PlacedMember>();
  for (const [key, m] of placed) {
    const held = best.get(key);
    if (held === undefined || compareVersions(m.app, held.app) > 0 || (compareVersions(m.app, held.app) === 0 && m.node < held.node))
      best.set(key, m);
  }
  const sorted = [...best.keys()].sort();
  const yields = new Map<string, { shards: Set<number>; newer: string[] }>();
  const prefix = `${capability}/`;
  if (members.every((m) => m.keys === true))
    for (const m of best.values()) {
      const mine = (m.yields ?? []).filter((y) => y.startsWith(prefix)).map((y) => Number(y.slice(prefix.length)));
      const newer = sorted.filter((k) => compareVersions(best.get(k)!.app, m.app) > 0);
      if (mine.length > 0) yields.set(m.node, { shards: new Set(mine), newer });
    }
  return { keys: sorted, holders: sorted.map((k) => best.get(k)!.node), yields };
}

/**
 * The standby a leaving member hands its key to: of the standbys no other
 * leaver named that share a capability with it, those that registered all of
 * its capabilities first, then the newest code, then the first id. Undefined
 * when there is none (or the leaver hosts nothing).
 */
export function heirFor(leaver: PlacedMember, members: readonly PlacedMember[]): string | undefined {
  if (leaver.capabilities.length === 0 || members.some((m) => m.keys !== true)) return undefined;
  const named = new Set(members.filter((m) => m.node !== leaver.node && m.capabilities.length === 0).map((m) => m.heir));
  const covers = (m: PlacedMember) => leaver.capabilities.every((c) => m.capabilities.includes(c));
  const shares = (m: PlacedMember) => m.capabilities.some((c) => leaver.capabilities.includes(c));
  const standbys = members.filter((m) => m.standby === true && m.node !== leaver.node && !named.has(m.node) && shares(m));
  standbys.sort(
    (a, b) => Number(covers(b)) - Number(covers(a)) || compareVersions(b.app, a.app) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0),
  );
  return standbys[0]?.node;
}
