// `mesh reminders list`: the durable reminders stored in the reminders bucket.
import type { NatsConnection } from "nats";
import { DEFAULT_STORAGE_TIMEOUT_MS } from "../options.js";
import { Reminders } from "../timers/reminders.js";

export async function listReminders(
  nc: NatsConnection,
  bucket: string,
  actorType: string | undefined,
  id: string | undefined,
  asJson: boolean,
): Promise<number> {
  const reminders = await Reminders.read(nc, bucket, DEFAULT_STORAGE_TIMEOUT_MS);
  const shown = reminders
    .filter((r) => (actorType === undefined || r.actorType === actorType) && (id === undefined || r.id === id))
    .sort((a, b) => a.runAt - b.runAt);
  if (asJson) {
    for (const r of shown) process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  if (shown.length === 0) {
    process.stdout.write("no reminders\n");
    return 0;
  }
  process.stdout.write(`${"DUE".padEnd(24)}  ${"EVERY".padStart(9)}  ${"FAILED".padStart(6)}  ACTOR / NAME\n`);
  for (const r of shown) {
    const every = r.every > 0 ? `${r.every} ms` : "once";
    process.stdout.write(
      `${new Date(r.runAt).toISOString().padEnd(24)}  ${every.padStart(9)}  ${String(r.failures).padStart(6)}  ${r.actorType} ${JSON.stringify(r.id)} / ${r.name}\n`,
    );
  }
  return 0;
}
