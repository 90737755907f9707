// `mesh reminders list`: the durable reminders stored in the reminders bucket,
// after one line that counts them: due, late, being retried, and the oldest late one.
import type { NatsConnection } from "nats";
import { DEFAULT_STORAGE_TIMEOUT_MS } from "../options.js";
import { Reminders } from "../timers/reminders.js";
import type { Reminder } from "../timers/reminders.js";

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
  process.stdout.write(`${summary(shown, Date.now())}\n`);
  process.stdout.write(`${"DUE".padEnd(24)}  ${"EVERY".padStart(9)}  ${"FAILED".padStart(6)}  ACTOR / NAME\n`);
  for (const r of shown) {
    const every = r.every > 0 ? `${r.every} ms` : "once";
    process.stdout.write(
      `${new Date(r.runAt).toISOString().padEnd(24)}  ${every.padStart(9)}  ${String(r.failures).padStart(6)}  ${r.actorType} ${JSON.stringify(r.id)} / ${r.name}\n`,
    );
  }
  return 0;
}

/** How late a reminder may start and still count as on time in the summary. */
const LATE_MS = 1000;

/** One line: how many are stored, due now, late (due over LATE_MS ago and not run: none of their nodes runs them), retried, and the oldest late one. */
export function summary(reminders: readonly Reminder[], now: number): string {
  const due = reminders.filter((r) => r.runAt <= now);
  const late = due.filter((r) => now - r.runAt > LATE_MS).sort((a, b) => a.runAt - b.runAt);
  const retried = reminders.filter((r) => r.failures > 0).length;
  const oldest = late[0];
  const oldestText =
    oldest === undefined
      ? ""
      : `; the oldest late: ${oldest.actorType} ${JSON.stringify(oldest.id)} / ${oldest.name}, ${((now - oldest.runAt) / 1000).toFixed(1)} s late`;
  return `${reminders.length} stored, ${due.length} due, ${late.length} late by over ${LATE_MS / 1000} s, ${retried} being retried${oldestText}`;
}
