// What a node reads of one capability's reminders at a scan: the directories
// of the slots from the capability's lowest one to the horizon's, then the
// pages of its own shards they name (after a view change, only those of
// shards it did not own at its last scan). Its settled pages that are empty,
// and settled directories that name no shard, are purged, and the lowest
// slot moves up past them, batch by batch. Cost: one read per slot from the
// lowest to the horizon's, plus one per page of its own shards there, each
// returning what that page holds.
import { SETTLED_SLOTS, hasShard, pageKey, slotOf } from "./reminder-entry.js";
import type { Reminder } from "./reminder-entry.js";
import { settled } from "./reminder-pages.js";
import type { ReminderPages } from "./reminder-pages.js";

/** One scan of a node, across its capabilities. */
export interface Scan {
  readonly now: number;
  /** Reminders due by then are held. */
  readonly horizon: number;
  /** After a view change: shards owned at the last scan are not read again. */
  readonly moved: boolean;
  /** Pages read in full, and the entries they held (`<page key>/<id>`). */
  readonly read: Set<string>;
  readonly seen: Set<string>;
  /** (capability.shard) owned now, with a page in a slot read. */
  readonly owned: Set<string>;
}

/** What a scan needs of the node's reminders. */
export interface ScanHost {
  readonly pages: ReminderPages;
  readonly shards: number;
  owns(capability: string, shard: number): boolean;
  /** (capability.shard) owned at the last scan. */
  ownedBefore(mine: string): boolean;
  /** An entry read at `revision`, due within the horizon. */
  hold(reminder: Reminder, shard: number, slot: number, id: string, revision: number): void;
  /** An entry that is not (any more) due within the horizon. */
  drop(key: string): void;
}

/** Where a reminder is held: its page and its id there. */
export const positionOf = (capability: string, shard: number, slot: number, id: string) => `${pageKey(capability, shard, slot)}/${id}`;

/**
 * Directories read at once. After a long outage of the whole cluster the lowest slot is far behind (a week is
 * 60,480 slots): read all at once, the requests timed out and every scan failed; in batches, each batch's
 * settled slots are swept and the lowest slot raised before the next, so even a scan that fails keeps what it did.
 */
export const DIRS_AT_ONCE = 256;

export async function scanCapability(host: ScanHost, capability: string, s: Scan): Promise<void> {
  const { pages } = host;
  let low = await pages.low(capability, slotOf(s.now) - SETTLED_SLOTS);
  const last = slotOf(s.horizon);
  /** While true, every settled slot read so far had no directory, or its directory was swept: the lowest slot may move past them. */
  let sweeping = true;
  for (let first = low; first <= last; first += DIRS_AT_ONCE) {
    const slots = Array.from({ length: Math.min(DIRS_AT_ONCE, last - first + 1) }, (_, i) => first + i);
    const dirs = await Promise.all(slots.map((slot) => pages.dir(capability, slot)));
    const work: Promise<void>[] = [];
    for (const [i, slot] of slots.entries()) {
      const bits = dirs[i];
      if (bits === undefined) continue;
      for (let shard = 0; shard < host.shards; shard++) {
        if (bits[shard >> 3] === 0) {
          shard |= 7; // none in this byte
          continue;
        }
        if (!hasShard(bits, shard) || !host.owns(capability, shard)) continue;
        const mine = `${capability}.${shard}`;
        s.owned.add(mine);
        if (!(s.moved && host.ownedBefore(mine) && !settled(slot, s.now))) work.push(readPage(host, capability, shard, slot, s));
      }
    }
    await Promise.all(work);
    if (!sweeping) continue;
    // Settled directories that name no shard any more go; the lowest slot moves up to the first that stays.
    let lowest = slotOf(s.now) - SETTLED_SLOTS;
    for (const [i, slot] of slots.entries()) {
      if (!settled(slot, s.now)) break;
      if (dirs[i] === undefined || (await pages.sweepDir(capability, slot))) continue;
      lowest = slot;
      sweeping = false;
      break;
    }
    if (sweeping) lowest = Math.min(lowest, slots.at(-1)! + 1);
    if (lowest > low) await pages.raiseLow(capability, (low = lowest));
  }
}

async function readPage(host: ScanHost, capability: string, shard: number, slot: number, s: Scan): Promise<void> {
  const page = await host.pages.page(capability, shard, slot);
  s.read.add(pageKey(capability, shard, slot));
  for (const [id, r] of page.value) {
    const key = positionOf(capability, shard, slot, id);
    s.seen.add(key);
    if (r.runAt <= s.horizon) host.hold(r, shard, slot, id, page.revision);
    else host.drop(key);
  }
  if (page.value.size === 0 && settled(slot, s.now)) await host.pages.sweep(capability, shard, slot);
}
