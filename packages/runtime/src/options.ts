import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { DEFAULT_SHARDS, MeshError, quietLogger, resolveStrategy } from "@mesh/core";
import type { Logger, Placement, Strategy } from "@mesh/core";
import { checkToken } from "@mesh/core/internal";
import { DEFAULT_REPLICAS, Subjects, bucketName, defaultServers } from "@mesh/transport";
import type { ConnectionOptions } from "nats";
import { checkActorClass } from "./actors/actor.js";
import type { StorageOptions } from "./state/state-store.js";
import type { ActorClass } from "./types.js";

// The defaults of MeshOptions, each by name: resolveOptions fills them in, and
// nothing else in the runtime has a default of its own for an option.

/** `prefix`: the subject prefix. */
export const DEFAULT_PREFIX = "mesh";
/** `shards`, from @mesh/core (the placement's default). */
export { DEFAULT_SHARDS };
/** `callTimeoutMs`. */
export const DEFAULT_CALL_TIMEOUT_MS = 5000;
/** `heartbeatMs`. */
export const DEFAULT_HEARTBEAT_MS = 1000;
/** `nodeTimeoutMs`: three heartbeats, and never less than this. */
export const MIN_DEFAULT_NODE_TIMEOUT_MS = 3000;
/** `nodeTimeoutMs`: this many heartbeats (at least MIN_DEFAULT_NODE_TIMEOUT_MS). */
export const DEFAULT_NODE_TIMEOUT_HEARTBEATS = 3;
/** `discoveryQuietMs`. */
export const DEFAULT_DISCOVERY_QUIET_MS = 50;
/** `drainTimeoutMs`. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5000;
/** `metricsHost`. */
export const DEFAULT_METRICS_HOST = "127.0.0.1";
/** `storage.timeoutMs`. */
export const DEFAULT_STORAGE_TIMEOUT_MS = 3000;
/** `storage.replicas`, chosen when a bucket is created (the server says whether it is part of a cluster): the transport's DEFAULT_REPLICAS. */
export const DEFAULT_STORAGE_REPLICAS = DEFAULT_REPLICAS;
/** `idleTimeoutMs` for durable classes: a durable actor loses nothing by leaving memory. */
export const DEFAULT_DURABLE_IDLE_TIMEOUT_MS = 15 * 60_000;
/** `idleTimeoutMs` for the other classes: never. */
export const DEFAULT_IDLE_TIMEOUT_MS = Infinity;
/** `maxActors`: no cap. */
export const DEFAULT_MAX_ACTORS = Infinity;
/** `maxMailbox`. */
export const DEFAULT_MAX_MAILBOX = 1000;
/** `maxTurnMs`: 10 s. */
export const DEFAULT_MAX_TURN_MS = 10_000;
/** `standbyMs`: 30 s. */
export const DEFAULT_STANDBY_MS = 30_000;
/** `maxQueuedLetters`. */
export const DEFAULT_MAX_QUEUED_LETTERS = 100_000;
/** `maxQueuedBytes`: 64 MiB. */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** `reminderScanMs`. */
export const DEFAULT_REMINDER_SCAN_MS = 30_000;
/** `maxOutboundBytes`: 256 KiB. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 256 * 1024;

/** Options of `Mesh.start`. Every field is optional. */
export interface MeshOptions {
  /** NATS server URL(s). @default $NATS_URL, else "nats://127.0.0.1:4222" */
  servers?: string | string[];
  /** The actor classes this node can host. @default [] */
  actors?: readonly ActorClass[];
  /** Capabilities to register at start (same as calling registerCapabilities). @default [] */
  capabilities?: readonly string[];
  /** This node's id, unique in the cluster: 1-128 of A-Z a-z 0-9 _ -. @default "<host>-<pid>-<random>" */
  nodeId?: string;
  /** The version of your application this node runs (1-64 printable characters): announced to the cluster and shown by `mesh status`. @default "unversioned" */
  appVersion?: string;
  /**
   * A node whose appVersion is newer than a member's joins as a standby: it
   * owns no shard until a leaving member hands it its shards, or for at most
   * this long (0: never a standby). docs/deploying.md. @default 30000
   */
  standbyMs?: number;
  /** Subject prefix; clusters with different prefixes never meet. @default "mesh" */
  prefix?: string;
  /**
   * Reply subjects this node answers clients' and operators' requests on (the ingress, status, forget, reset), besides the nodes' own inboxes:
   * those that start with one of these, then `.` or `_`. A request with any other reply subject is refused, not
   * run (docs/security.md). @default ["_INBOX"] (the NATS clients' default, and the secure config's `_INBOX_<role>`)
   */
  inboxPrefixes?: string[];
  /** Shard count; must be the same on every node. @default 4096 */
  shards?: number;
  /** Placement strategy; must be the same on every node. @default "rendezvous" */
  strategy?: Strategy;
  /** How long a call waits for its reply before failing with TIMEOUT. @default 5000 */
  callTimeoutMs?: number;
  /** How often the node announces itself. @default 1000 */
  heartbeatMs?: number;
  /** A node silent this long is dropped from the view. @default 3000 */
  nodeTimeoutMs?: number;
  /** Discovery at start ends once no member answered for this long. @default 50 */
  discoveryQuietMs?: number;
  /** Largest encoded request or reply that crosses the wire. @default the NATS server's max_payload (1 MiB by default) */
  maxPayloadBytes?: number;
  /** How long stop() waits for running handlers and in-flight calls. @default 5000 */
  drainTimeoutMs?: number;
  /** Options for the NATS client (auth, TLS, …), passed to nats.js `connect`. Its `inboxPrefix` is where this node's replies come: @default $NATS_INBOX_PREFIX, else "<prefix>.inbox.<nodeId>" */
  nats?: Partial<ConnectionOptions>;
  /** A pino-style logger. @default quiet */
  logger?: Logger;
  /** Serve Prometheus metrics on this port at /metrics (0: a free port; see `mesh.metricsUrl`). @default off */
  metricsPort?: number;
  /** The address the metrics endpoint listens on. @default "127.0.0.1" */
  metricsHost?: string;
  /** Where durable actors' state lives (JetStream KV); used only when a class is durable. */
  storage?: StorageOptions;
  /** Deactivate actors idle this long, for classes that set no `static idleTimeoutMs` (Infinity: never). @default 15 minutes for durable classes, never for the others */
  idleTimeoutMs?: number;
  /** The most live actors this node holds: beyond it, the least recently used idle ones are deactivated ("evicted"). @default no cap */
  maxActors?: number;
  /** The most messages that may wait in one actor's mailbox, for classes that set no `static maxMailbox`; past it a message is refused with OVERLOADED. @default 1000 */
  maxMailbox?: number;
  /** The longest a turn may run, for classes that set no `static maxTurnMs` (0: no limit); past it the turn fails with TURN_TIMEOUT and the activation is dropped (docs/behaviour.md). @default 10000 */
  maxTurnMs?: number;
  /** The most messages that may wait in all this node's mailboxes together. @default 100000 */
  maxQueuedLetters?: number;
  /** The most bytes of messages from other nodes that may wait in this node's mailboxes together. @default 64 MiB */
  maxQueuedBytes?: number;
  /** How often a node reads the reminders of the shards it owns (it also does at once when the view changes); it holds those due within twice this. @default 30000 */
  reminderScanMs?: number;
  /**
   * The most bytes of calls, casts and events this node may have sent to one
   * other node that it has not read yet (each message also counts 128 bytes);
   * past it a send waits for room, then fails with OVERLOADED unsent
   * (docs/behaviour.md "Flow control"). Infinity: no limit. @default 256 KiB
   */
  maxOutboundBytes?: number;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  servers: string | string[];
  actors: readonly ActorClass[];
  capabilities: string[];
  nodeId: string;
  appVersion: string;
  standbyMs: number;
  subjects: Subjects;
  shards: number;
  placement: Placement;
  callTimeoutMs: number;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  discoveryQuietMs: number;
  maxPayloadBytes: number | undefined;
  drainTimeoutMs: number;
  nats: Partial<ConnectionOptions>;
  logger: Logger;
  metricsPort: number | undefined;
  metricsHost: string;
  /** The storage options, with the bucket and the timeout filled in (replicas: chosen when a bucket is created, DEFAULT_STORAGE_REPLICAS). */
  storage: Required<Pick<StorageOptions, "bucket" | "timeoutMs">> & StorageOptions;
  idleTimeoutMs: number | undefined;
  maxActors: number;
  maxMailbox: number;
  maxTurnMs: number;
  maxQueuedLetters: number;
  maxQueuedBytes: number;
  reminderScanMs: number;
  maxOutboundBytes: number;
}

/** Applies defaults and checks every option; throws BAD_REQUEST naming the first bad one. */
export function resolveOptions(o: MeshOptions = {}): ResolvedOptions {
  const ms = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!isTimeout(v))
      throw new MeshError("BAD_REQUEST", `${name} must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${String(value)}`);
    return v;
  };
  const shards = o.shards ?? DEFAULT_SHARDS;
  if (!Number.isInteger(shards) || shards < 1 || shards > 65_536)
    throw new MeshError("BAD_REQUEST", `shards must be an integer from 1 to 65536, got ${String(o.shards)}`);
  if (o.maxPayloadBytes !== undefined && !(Number.isInteger(o.maxPayloadBytes) && o.maxPayloadBytes > 0)) {
    throw new MeshError("BAD_REQUEST", `maxPayloadBytes must be a positive integer, got ${String(o.maxPayloadBytes)}`);
  }
  const heartbeatMs = ms("heartbeatMs", o.heartbeatMs, DEFAULT_HEARTBEAT_MS);
  const subjects = new Subjects(o.prefix ?? DEFAULT_PREFIX, o.inboxPrefixes);
  const actors = (o.actors ?? []).map(checkActorClass);
  for (const cls of actors) if (cls.idleTimeoutMs !== undefined) checkIdleTimeout(cls.idleTimeoutMs, `${cls.name}.idleTimeoutMs`);
  for (const [where, v] of [["maxTurnMs", o.maxTurnMs], ...actors.map((cls) => [`${cls.name}.maxTurnMs`, cls.maxTurnMs] as const)] as const)
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 2 ** 31 - 1))
      throw new MeshError("BAD_REQUEST", `${where} must be a whole number of milliseconds (0: no limit), got ${String(v)}`);
  for (const name of ["maxActors", "maxMailbox", "maxQueuedLetters", "maxQueuedBytes"] as const) {
    const v = o[name];
    if (v !== undefined && !(Number.isInteger(v) && v > 0))
      throw new MeshError("BAD_REQUEST", `${name} must be a positive integer, got ${String(v)}`);
  }
  return {
    servers: o.servers ?? defaultServers(),
    actors,
    capabilities: checkCapabilities(o.capabilities ?? []),
    nodeId: checkToken(o.nodeId ?? defaultNodeId(), "nodeId"),
    appVersion: appVersion(o.appVersion),
    standbyMs: o.standbyMs === 0 ? 0 : ms("standbyMs", o.standbyMs, DEFAULT_STANDBY_MS),
    subjects,
    shards,
    placement: resolveStrategy(o.strategy),
    callTimeoutMs: ms("callTimeoutMs", o.callTimeoutMs, DEFAULT_CALL_TIMEOUT_MS),
    heartbeatMs,
    nodeTimeoutMs: ms(
      "nodeTimeoutMs",
      o.nodeTimeoutMs,
      Math.max(MIN_DEFAULT_NODE_TIMEOUT_MS, heartbeatMs * DEFAULT_NODE_TIMEOUT_HEARTBEATS),
    ),
    discoveryQuietMs: ms("discoveryQuietMs", o.discoveryQuietMs, DEFAULT_DISCOVERY_QUIET_MS),
    maxPayloadBytes: o.maxPayloadBytes,
    drainTimeoutMs: ms("drainTimeoutMs", o.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
    nats: o.nats ?? {},
    logger: o.logger ?? quietLogger,
    metricsPort: checkPort(o.metricsPort),
    metricsHost: o.metricsHost ?? DEFAULT_METRICS_HOST,
    storage: checkStorage(o.storage, subjects.prefix),
    idleTimeoutMs: o.idleTimeoutMs === undefined ? undefined : checkIdleTimeout(o.idleTimeoutMs, "idleTimeoutMs"),
    maxActors: o.maxActors ?? DEFAULT_MAX_ACTORS,
    maxMailbox: o.maxMailbox ?? DEFAULT_MAX_MAILBOX,
    maxTurnMs: o.maxTurnMs ?? DEFAULT_MAX_TURN_MS,
    maxQueuedLetters: o.maxQueuedLetters ?? DEFAULT_MAX_QUEUED_LETTERS,
    maxQueuedBytes: o.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    reminderScanMs: ms("reminderScanMs", o.reminderScanMs, DEFAULT_REMINDER_SCAN_MS),
    maxOutboundBytes: checkOutbound(o.maxOutboundBytes),
  };
}

/** `maxOutboundBytes`: a whole number of bytes, at least 1 KiB, or Infinity. */
function checkOutbound(v: number | undefined): number {
  if (v === undefined) return DEFAULT_MAX_OUTBOUND_BYTES;
  if (v === Infinity || (Number.isInteger(v) && v >= 1024)) return v;
  throw new MeshError("BAD_REQUEST", `maxOutboundBytes must be a whole number of bytes, at least 1024, or Infinity; got ${String(v)}`);
}

/**
 * How long actors of `cls` may stay idle (Infinity: never): the class's
 * `idleTimeoutMs`, else the node's (`nodeIdleTimeoutMs`, as resolved), else
 * DEFAULT_DURABLE_IDLE_TIMEOUT_MS for a durable class and
 * DEFAULT_IDLE_TIMEOUT_MS for the others.
 */
export function idleTimeoutOf(cls: ActorClass, nodeIdleTimeoutMs: number | undefined): number {
  return cls.idleTimeoutMs ?? nodeIdleTimeoutMs ?? (cls.durable === true ? DEFAULT_DURABLE_IDLE_TIMEOUT_MS : DEFAULT_IDLE_TIMEOUT_MS);
}

/** An idle timeout: milliseconds as for any timeout, or Infinity for never. */
function checkIdleTimeout(value: unknown, what: string): number {
  if (value !== Infinity && !isTimeout(value))
    throw new MeshError(
      "BAD_REQUEST",
      `${what} must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, or Infinity, got ${String(value)}`,
    );
  return value as number;
}

function checkStorage(s: StorageOptions = {}, prefix: string): ResolvedOptions["storage"] {
  if (typeof s !== "object" || s === null) throw new MeshError("BAD_REQUEST", "storage must be an object");
  const bucket = s.bucket ?? bucketName(prefix, "state");
  if (!/^[-\w]+$/.test(bucket))
    throw new MeshError("BAD_REQUEST", `storage.bucket must be 1 or more of A-Z a-z 0-9 _ -, got ${JSON.stringify(s.bucket)}`);
  if (s.replicas !== undefined && ![1, 3, 5].includes(s.replicas))
    throw new MeshError("BAD_REQUEST", `storage.replicas must be 1, 3 or 5, got ${String(s.replicas)}`);
  if (s.timeoutMs !== undefined && !isTimeout(s.timeoutMs))
    throw new MeshError(
      "BAD_REQUEST",
      `storage.timeoutMs must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${String(s.timeoutMs)}`,
    );
  return { ...s, bucket, timeoutMs: s.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS };
}

/** The longest timeout or interval Mesh accepts: what a Node.js timer can wait (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** True for a finite number of milliseconds above 0 and at most MAX_TIMEOUT_MS. */
export function isTimeout(value: unknown): value is number {
  return typeof value === "number" && value > 0 && value <= MAX_TIMEOUT_MS;
}

/** Checks, de-duplicates and sorts a capability list; throws BAD_REQUEST. */
export function checkCapabilities(capabilities: readonly string[]): string[] {
  if (!Array.isArray(capabilities)) throw new MeshError("BAD_REQUEST", "capabilities must be an array of strings");
  return [...new Set(capabilities.map((c) => checkToken(c, "capability")))].sort();
}

function checkPort(port: unknown): number | undefined {
  if (port === undefined) return undefined;
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65_535)
    throw new MeshError("BAD_REQUEST", `metricsPort must be an integer from 0 to 65535, got ${String(port)}`);
  return port as number;
}

function defaultNodeId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .slice(0, 64) || "node";
  return `${host}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** The default `appVersion`. */
export const DEFAULT_APP_VERSION = "unversioned";

function appVersion(v: unknown): string {
  if (v === undefined) return DEFAULT_APP_VERSION;
  if (typeof v !== "string" || !/^[\x21-\x7e][\x20-\x7e]{0,63}$/.test(v))
    throw new MeshError("BAD_REQUEST", `appVersion must be 1-64 printable ASCII characters, got ${JSON.stringify(v)}`);
  return v;
}
