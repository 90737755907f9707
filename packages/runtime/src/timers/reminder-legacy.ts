// Reminders stored in the layout before pages (one key per reminder,
// `<capability>.<shard>.<type>.<id>.<name>`): each node moves those of its
// capabilities into pages once, at its first scan, with the legacy ticket
// (they run unless the actor's record names a ticket). And what
// `mesh reminders list` reads: every page, and any reminder not moved yet.
import { shardFor } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { decodeValue } from "@mesh/core/internal";
import { readAll } from "@mesh/transport";
import type { KV } from "nats";
import { LEGACY_TICKET, decodePage, entryKey, legacyKeys, slotOf } from "./reminder-entry.js";
import type { Reminder } from "./reminder-entry.js";
import type { ReminderPages } from "./reminder-pages.js";

/** Moves the reminders of `capability` stored one per key into pages (each added unless its page has one of that id), then purges their keys. */
export async function migrateLegacy(kv: KV, capability: string, shards: number, pages: ReminderPages, log: Logger): Promise<void> {
  const legacy: [string, Reminder][] = [];
  await readAll(kv, legacyKeys(capability), (e) => legacy.push([e.key, decodeValue(e.value) as Reminder]));
  if (legacy.length === 0) return;
  const now = Date.now();
  await Promise.all(
    legacy.map(async ([key, old]) => {
      const { actorType, id, name, due, runAt, every, failures } = old;
      const entry: Reminder = { capability, actorType, id, name, due, runAt, every, failures, ticket: LEGACY_TICKET };
      const slot = slotOf(Math.max(runAt, now));
      await pages.change(capability, shardFor(id, shards), slot, entryKey(actorType, id, name, LEGACY_TICKET), { kind: "add", entry });
      await pages.purgeKey(key);
    }),
  );
  log.info({ capability, reminders: legacy.length }, "mesh: reminders stored one per key were moved into pages");
}

/** Every reminder stored in the bucket: the entries of every page, and those one per key (not moved yet). */
export async function readStored(kv: KV): Promise<Reminder[]> {
  const all: Reminder[] = [];
  await readAll(kv, ">", (e) => {
    const tokens = e.key.split(".");
    if (tokens.length === 3 && tokens[2]!.startsWith("p")) for (const r of decodePage(tokens[0]!, e.value).values()) all.push(r);
    else if (tokens.length === 5) all.push({ ...(decodeValue(e.value) as Reminder), ticket: LEGACY_TICKET });
  });
  return all;
}
