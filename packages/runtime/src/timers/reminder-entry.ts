// A reminder as it is stored (docs/PROTOCOL.md "Reminders"): its entry, its
// key, its bucket, when it is due, and how a node paces their turns.
import { MeshError, keyToken } from "@mesh/core";
import { bucketName } from "@mesh/transport";
import type { RemindOptions } from "../types.js";

/** A stored reminder. */
export interface Reminder {
  capability: string;
  actorType: string;
  id: string;
  name: string;
  /** When this occurrence is due (epoch ms). */
  due: number;
  /** When its next try runs: `due`, or later after failed tries. */
  runAt: number;
  /** 0: once. */
  every: number;
  failures: number;
  /**
   * The occurrence's number, once a failed try moved it on: the revision its
   * entry had when it was first due (a fresh entry's own revision). Revisions
   * only grow, so a later occurrence, or a reminder set again, is never taken
   * for one a durable actor applied.
   */
  occurrence?: number;
}

/** Backoff after a failed turn: 1 s, 2 s, 4 s, … at most 60 s. */
export const backoffMs = (failures: number) => Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));

/** The most reminder turns under way at once on a node, whatever is due (fewer under a live-actor cap: half of it). */
const REMINDER_TURNS = 512;

/** How many reminder turns a node runs at once under `maxActors`: the rest wait for one to end, in due order. */
export function reminderTurns(maxActors: number): number {
  return Math.max(1, Math.min(REMINDER_TURNS, Math.floor(maxActors / 2)));
}

/** The KV key of a reminder: `<capability>.<shard>.<type token>.<id token>.<name token>`. */
export function reminderKey(capability: string, shard: number, actorType: string, id: string, name: string): string {
  return `${capability}.${shard}.${keyToken(actorType)}.${keyToken(id)}.${keyToken(name)}`;
}

/** The default reminders bucket of a cluster (the transport's bucketName): its prefix, dots as underscores, then `_reminders`. */
export function reminderBucket(prefix: string): string {
  return bucketName(prefix, "reminders");
}

export function dueOf(o: RemindOptions): number {
  if (typeof o !== "object" || o === null)
    throw new MeshError("BAD_REQUEST", "remind needs options: { at } or { afterMs }, and optionally everyMs");
  const at = o.at instanceof Date ? o.at.getTime() : o.at;
  if (at !== undefined && o.afterMs !== undefined) throw new MeshError("BAD_REQUEST", "remind takes at or afterMs, not both");
  if (at !== undefined) {
    if (!Number.isFinite(at)) throw new MeshError("BAD_REQUEST", `remind's at must be a time, got ${String(o.at)}`);
    return at;
  }
  if (o.afterMs !== undefined) {
    if (!(Number.isFinite(o.afterMs) && o.afterMs >= 0))
      throw new MeshError("BAD_REQUEST", `remind's afterMs must be a number of milliseconds >= 0, got ${String(o.afterMs)}`);
    return Date.now() + o.afterMs;
  }
  if (o.everyMs !== undefined) return Date.now() + o.everyMs;
  throw new MeshError("BAD_REQUEST", "remind needs { at } or { afterMs } (or { everyMs } alone)");
}
