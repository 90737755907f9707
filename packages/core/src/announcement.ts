// Membership messages, JSON so that `nats sub 'mesh.cluster.>'` shows them as
// they are (docs/PROTOCOL.md is the reference).
import { MeshError } from "./errors.js";
import { isToken } from "./tokens.js";

/** What a node says about itself in heartbeats and discovery. */
export interface Announcement {
  /** Layout version, 1. */
  v: 1;
  /** The node id: unique in the cluster, a valid subject token. */
  node: string;
  /** Random per start of the process: tells a restarted node from its previous life. */
  instance: string;
  /** Capabilities the node registered, sorted. */
  capabilities: string[];
  /** Actor types the node can host, sorted. */
  actorTypes: string[];
  /** Shard count; nodes with different counts refuse each other. */
  shards: number;
  /** Placement strategy name; nodes with different names refuse each other. */
  strategy: string;
  /** The announcing package version, for operators. */
  version: string;
  /** The version of the application the node runs (`appVersion`); absent from nodes of older Mesh versions. */
  app?: string;
  /** The wire protocol the node speaks (PROTOCOL); absent: 1, a Mesh before live migration. */
  protocol?: number;
  /** True: the node places by placement keys (placement-keys.ts). Absent: a Mesh before them; while one is in the view, every node places by node id. */
  keys?: boolean;
  /** The key placement ranks the node under; absent: its node id. */
  key?: string;
  /** True: the node owns no shard until a leaving member names it heir (it joined a cluster running older code). */
  standby?: boolean;
  /** Only from a leaving node (no capabilities): the standby that takes its key. */
  heir?: string;
  /** Shards (`<capability>/<shard>`) the node gives up: it met state stored by newer code there (STATE_TOO_NEW); they go to the next key. */
  yields?: string[];
  /** The node's heartbeat interval in ms: it is dropped after max(nodeTimeoutMs, its nodeTimeoutMs, 3 x heartbeatMs) of silence. */
  heartbeatMs: number;
  /** The node's own nodeTimeoutMs, which its lease counts on (absent from a Mesh before it was announced): peers wait at least that long. */
  nodeTimeoutMs?: number;
  /** Only in answers to `discover`: every node the answering node knows, so the asker can wait for each. */
  members?: string[];
  /**
   * Only in answers to `discover`: how many times the answering node removed
   * the asker's instance from its view (silent past the node timeout, or the
   * store's verdict). A node that re-validates its lease learns from
   * it whether another node may have taken its shards meanwhile.
   */
  removals?: number;
  /**
   * Where the JetStream quorum keeps the node's record (`<prefix>_nodes`): the
   * revision of it last stored. Peers remove such a node only by deleting its
   * record at a revision they saw unchanged for the node timeout.
   */
  rev?: number;
}

/**
 * The wire protocol this Mesh speaks: 2 added live migration (request kind 3)
 * and the announcement's `app` and `protocol`. A node takes members that speak
 * it or the one before; it refuses the others (docs/PROTOCOL.md). Placement
 * keys came within protocol 2, as optional fields an older node ignores
 * (`keys` says a node knows them).
 */
export const PROTOCOL = 2;

/** Why a member cannot be in `self`'s view (its protocol, shard count or strategy differ), with the figures; undefined when it can. */
export function incompatible(a: Announcement, self: Announcement): { message: string; fields: object } | undefined {
  const protocol = a.protocol ?? 1;
  if (protocol !== PROTOCOL && protocol !== PROTOCOL - 1)
    return {
      message: `mesh: refused a node that speaks wire protocol ${protocol}; this node speaks ${PROTOCOL} and ${PROTOCOL - 1}`,
      fields: { node: a.node, protocol, ours: [PROTOCOL, PROTOCOL - 1] },
    };
  if (a.shards !== self.shards || a.strategy !== self.strategy)
    return {
      message: "mesh: refused a node whose shard count or placement strategy differs from ours",
      fields: { node: a.node, shards: a.shards, strategy: a.strategy, ours: { shards: self.shards, strategy: self.strategy } },
    };
  return undefined;
}

/** Whether two announcements of one instance route alike: the same capabilities, actor types and placement (else the view changes). */
export function sameMembership(a: Announcement, b: Announcement): boolean {
  const same = (x: readonly string[], y: readonly string[]) => x.join(",") === y.join(",");
  return (
    same(a.capabilities, b.capabilities) &&
    same(a.actorTypes, b.actorTypes) &&
    same(a.yields ?? [], b.yields ?? []) &&
    a.key === b.key &&
    a.standby === b.standby &&
    a.heir === b.heir
  );
}

/** A graceful goodbye. */
export interface Leave {
  v: 1;
  node: string;
  instance: string;
}

const json = new TextEncoder();
const text = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return json.encode(JSON.stringify(value));
}

function parse(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text.decode(bytes));
  } catch {
    throw new MeshError("BAD_REQUEST", `malformed ${what}: not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MeshError("BAD_REQUEST", `malformed ${what}: not an object`);
  return value as Record<string, unknown>;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** Parses and checks an announcement; throws BAD_REQUEST saying what is wrong. */
export function decodeAnnouncement(bytes: Uint8Array): Announcement {
  return checkAnnouncement(parse(bytes, "announcement"));
}

/** Checks an announcement already parsed (a node's record keeps one); throws BAD_REQUEST saying what is wrong. */
export function checkAnnouncement(value: unknown): Announcement {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MeshError("BAD_REQUEST", "malformed announcement: not an object");
  const a = value as Record<string, unknown>;
  const fail = (field: string): never => {
    throw new MeshError("BAD_REQUEST", `malformed announcement: bad or missing "${field}"`);
  };
  if (a.v !== 1) fail("v");
  if (!isToken(a.node)) fail("node");
  if (typeof a.instance !== "string") fail("instance");
  if (!isStringArray(a.capabilities) || !a.capabilities.every(isToken)) fail("capabilities");
  if (!isStringArray(a.actorTypes)) fail("actorTypes");
  if (!Number.isInteger(a.shards)) fail("shards");
  if (typeof a.strategy !== "string") fail("strategy");
  if (typeof a.version !== "string") fail("version");
  if (a.app !== undefined && typeof a.app !== "string") fail("app");
  if (a.protocol !== undefined && !(Number.isInteger(a.protocol) && (a.protocol as number) > 0)) fail("protocol");
  if (a.keys !== undefined && typeof a.keys !== "boolean") fail("keys");
  if (a.key !== undefined && !isToken(a.key)) fail("key");
  if (a.standby !== undefined && typeof a.standby !== "boolean") fail("standby");
  if (a.heir !== undefined && !isToken(a.heir)) fail("heir");
  if (a.yields !== undefined && !(isStringArray(a.yields) && a.yields.every((y) => /^[^/]+\/\d+$/.test(y)))) fail("yields");
  if (typeof a.heartbeatMs !== "number" || !(a.heartbeatMs > 0)) fail("heartbeatMs");
  if (a.nodeTimeoutMs !== undefined && !(typeof a.nodeTimeoutMs === "number" && a.nodeTimeoutMs > 0 && a.nodeTimeoutMs <= 2 ** 31 - 1))
    fail("nodeTimeoutMs");
  if (a.members !== undefined && !isStringArray(a.members)) fail("members");
  if (a.removals !== undefined && !(Number.isInteger(a.removals) && (a.removals as number) >= 0)) fail("removals");
  if (a.rev !== undefined && !(Number.isInteger(a.rev) && (a.rev as number) > 0)) fail("rev");
  return a as unknown as Announcement;
}

/** Parses and checks a leave message; throws BAD_REQUEST saying what is wrong. */
export function decodeLeave(bytes: Uint8Array): Leave {
  const l = parse(bytes, "leave");
  if (l.v !== 1 || !isToken(l.node) || typeof l.instance !== "string") throw new MeshError("BAD_REQUEST", "malformed leave message");
  return l as unknown as Leave;
}
