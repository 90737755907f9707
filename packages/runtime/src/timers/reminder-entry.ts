// A reminder as it is stored (docs/PROTOCOL.md "Reminders"): its entry, the
// keys of its layout (pages by shard and time slot, a directory per slot, the
// lowest slot in use), its bucket, when it is due, and how a node paces turns.
import { Encoder } from "@msgpack/msgpack";
import { MeshError, keyToken } from "@mesh/core";
import { decodeValue } from "@mesh/core/internal";
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
   * The occurrence's ticket (epoch ms, its page's time): the actor's record
   * names the ticket of its reminder's live occurrence, and an entry whose
   * ticket it does not name runs nothing (it was replaced, forgotten, or ran).
   * LEGACY_TICKET: stored before tickets.
   */
  ticket: number;
}

/** The ticket of a reminder stored in the layout before pages: it runs unless the record names a ticket, or FORGOTTEN. */
export const LEGACY_TICKET = 0;

/** Tickets are times (ms) from 2001 on; what a record holds below it is the number of an occurrence applied before tickets. */
export const TICKET_MIN = 1e12;

/** What a record holds for a reminder forgotten while it named no ticket: a reminder stored before tickets does not run. */
export const FORGOTTEN = -1;

/**
 * Whether an entry of ticket `ticket` runs, when the actor's record holds
 * `current` for its name: the ticket it names; for a legacy entry, none (or
 * an occurrence number from before tickets).
 */
export function reminderLive(current: number | undefined, ticket: number): boolean {
  if (ticket !== LEGACY_TICKET) return current === ticket;
  return current === undefined || (current > 0 && current < TICKET_MIN);
}

/** A page holds the reminders of one shard whose ticket falls in one slot of this many ms. */
export const SLOT_MS = 10_000;

/** The slot of a time. */
export const slotOf = (ms: number): number => Math.floor(ms / SLOT_MS);

/**
 * Slots this far behind a node's clock get no more writes (a reminder is
 * written in the slot of max(its time, now)): a node may sweep them, and
 * nodes' clocks must agree within this (60 s).
 */
export const SETTLED_SLOTS = 6;

/** The key of a page: the reminders of (capability, shard) in `slot`. */
export const pageKey = (capability: string, shard: number, slot: number): string => `${capability}.${shard}.p${slot}`;

/** The key of a slot's directory: a bitmap of the shards that may have a page in it. */
export const dirKey = (capability: string, slot: number): string => `${capability}.d${slot}`;

/** The key of a capability's lowest slot: no directory below it is stored. */
export const lowKey = (capability: string): string => `${capability}.low`;

/** An occurrence's key within its page: `<type token>.<id token>.<name token>.<ticket>` (the one it replaces stays beside it until the turn that replaced it committed). */
export const entryKey = (actorType: string, id: string, name: string, ticket: number): string =>
  `${keyToken(actorType)}.${keyToken(id)}.${keyToken(name)}.${ticket}`;

const encoder = new Encoder();

type Tuple = [actorType: string, id: string, name: string, due: number, runAt: number, every: number, failures: number, ticket: number];

/** A page's value: msgpack of a map, entry key -> [actorType, id, name, due, runAt, every, failures, ticket]. */
export function encodePage(entries: ReadonlyMap<string, Reminder>): Uint8Array {
  const o: { [id: string]: Tuple } = {};
  for (const [k, r] of entries) o[k] = [r.actorType, r.id, r.name, r.due, r.runAt, r.every, r.failures, r.ticket];
  return encoder.encode(o);
}

/** Reads a page of `capability`. Throws for bytes that are not one. */
export function decodePage(capability: string, bytes: Uint8Array): Map<string, Reminder> {
  const o = decodeValue(bytes) as { [id: string]: Tuple };
  const entries = new Map<string, Reminder>();
  for (const [k, [actorType, id, name, due, runAt, every, failures, ticket]] of Object.entries(o))
    entries.set(k, { capability, actorType, id, name, due, runAt, every, failures, ticket });
  return entries;
}

/** Whether a directory's bitmap names `shard` (bit shard % 8 of byte shard / 8). */
export const hasShard = (bits: Uint8Array, shard: number): boolean => (bits[shard >> 3]! & (1 << (shard & 7))) !== 0;

/** A directory's bitmap with `shard` named or not. */
export function withShard(bits: Uint8Array, shard: number, on: boolean): Uint8Array {
  const next = bits.slice();
  if (on) next[shard >> 3]! |= 1 << (shard & 7);
  else next[shard >> 3]! &= ~(1 << (shard & 7));
  return next;
}

/** Backoff after a failed turn: 1 s, 2 s, 4 s, … at most 60 s. */
export const backoffMs = (failures: number) => Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1));

/**
 * The most reminder turns under way at once on a node, whatever is due (fewer
 * under a live-actor cap: half of it). npm run bench, 50,000 missed reminders
 * worked through on two nodes, 512 against 64: calls to other actors meanwhile
 * p50 13.5 / p99 909 ms against 3.1 / 31 ms, all fired after 8.8 s against
 * 11.7 s; 100,000 due at once: 14.2 s against 16.1 s (raw KV CAS 17.7k/s and
 * 13.6k/s in those runs).
 */
const REMINDER_TURNS = 64;

/** How many reminder turns a node runs at once under `maxActors`: the rest wait for one to end, in due order. */
export function reminderTurns(maxActors: number): number {
  return Math.max(1, Math.min(REMINDER_TURNS, Math.floor(maxActors / 2)));
}

/** Keys of the layout before pages, one per reminder (`<capability>.<shard>.<type>.<id>.<name>`): read once to move them into pages. */
export const legacyKeys = (capability: string): string => `${capability}.*.*.*.*`;

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
