// `mesh events`: every subscription of the cluster's classes. Two kinds of
// figures, told apart in the output: what is stored (each partition's record
// in the progress bucket: its floor, and the events the floor passed, applied
// and dead-lettered, whichever node ran them), which survives any node; and
// what the live nodes counted since they started (handled, repeated, retried),
// which a node that stops or dies takes with it. The lag is the live
// dispatchers'.
import { bucketName, readLatest } from "@mesh/transport";
import type { NatsConnection } from "nats";
import { decodeFloor } from "../events/floor-record.js";
import { ofLayout, readLayout } from "../events/layout-record.js";
import { clusterStats } from "./cluster-stats.js";

interface Row {
  subscription: string;
  stream: string;
  partitions: number;
  /** The live nodes' counts, since each started. */
  handled: number;
  duplicates: number;
  redeliveries: number;
  deadLetters: number;
  dispatchers: { node: string; partition: number; floor: number; lag: number; inFlight: number; error?: string }[];
  /** From the progress bucket: every node's, of the events each partition's floor passed. */
  stored?: { applied: number; deadLetters: number; floors: { partition: number; floor: number | null }[] };
}

export async function eventsReport(nc: NatsConnection, prefix: string, asJson: boolean, waitMs: number): Promise<number> {
  const { stats } = await clusterStats(nc, prefix, waitMs);
  const subs = new Map<string, Row>();
  for (const [node, m] of [...stats].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const r of m.events ?? []) {
      const s = subs.get(r.subscription) ?? {
        subscription: r.subscription,
        stream: r.stream,
        partitions: r.partitions ?? 1,
        handled: 0,
        duplicates: 0,
        redeliveries: 0,
        deadLetters: 0,
        dispatchers: [],
      };
      s.handled += r.handled;
      s.duplicates += r.duplicates;
      s.redeliveries += r.redeliveries;
      s.deadLetters += r.deadLetters;
      for (const d of r.dispatchers) s.dispatchers.push({ node, ...d });
      subs.set(r.subscription, s);
    }
  }
  const all = [...subs.values()].sort((a, b) => (a.subscription < b.subscription ? -1 : 1));
  const unread = await readStored(nc, prefix, all);
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ prefix, subscriptions: all, ...(unread ? { storedUnread: unread } : {}) }, null, 2)}\n`);
    return 0;
  }
  if (stats.size === 0) {
    process.stdout.write(`no Mesh node answered on prefix "${prefix}"\n`);
    return 1;
  }
  if (all.length === 0) {
    process.stdout.write(`${stats.size} node${stats.size === 1 ? "" : "s"} answered; no class subscribes to a stream\n`);
    return 0;
  }
  const width = Math.max(12, ...all.map((s) => s.subscription.length));
  const cols = ["LAG", "APPLIED", "DEAD", "HANDLED*", "REPEATED*", "RETRIED*"];
  process.stdout.write(
    `${"SUBSCRIPTION".padEnd(width)}  ${"STREAM".padEnd(12)}  ${cols.map((c) => c.padStart(9)).join("  ")}  DISPATCHERS\n`,
  );
  for (const s of all) {
    const lag = s.dispatchers.reduce((a, d) => a + d.lag, 0);
    const stored = [s.stored?.applied ?? "?", s.stored?.deadLetters ?? "?"];
    const cells = [lag, ...stored, s.handled, s.duplicates, s.redeliveries].map((v) => String(v).padStart(9));
    const where =
      s.dispatchers.map((d) => `${d.node}#${d.partition} at ${d.floor}${d.error ? ` (${d.error})` : ""}`).join(", ") || "none running";
    process.stdout.write(`${s.subscription.padEnd(width)}  ${s.stream.padEnd(12)}  ${cells.join("  ")}  ${where}\n`);
  }
  process.stdout.write(
    `\nAPPLIED, DEAD: stored with each partition's floor, the events it passed, whichever node ran them (they survive any node).\n` +
      `* since each live node started: a node that stops or dies takes its counts with it.\n` +
      (unread ? `The stored figures could not be read (?): ${unread}\n` : ""),
  );
  return 0;
}

/** Reads each partition's record from the progress bucket into `rows`; returns why it could not, if it could not. */
async function readStored(nc: NatsConnection, prefix: string, rows: Row[]): Promise<string | undefined> {
  if (rows.length === 0) return undefined;
  try {
    const jsm = await nc.jetstreamManager({ timeout: 3000 });
    const bucket = bucketName(prefix, "events");
    for (const row of rows) {
      // The generations before the layout's (a change of partitions), then each partition's record of it (others are stale).
      const layout = await readLayout(jsm, bucket, row.subscription);
      const stored: NonNullable<Row["stored"]> = {
        applied: layout?.passed.applied ?? 0,
        deadLetters: layout?.passed.dead ?? 0,
        floors: [],
      };
      // The layout's count: while a rolling deploy changes it, nodes report either.
      for (let partition = 0; partition < (layout?.partitions ?? row.partitions); partition++) {
        const entry = await readLatest(jsm, bucket, `${row.subscription}.${partition}`);
        const read = entry?.value === undefined ? undefined : decodeFloor(entry.value);
        const record = layout === undefined || ofLayout(read, layout) ? read : undefined;
        stored.applied += record?.passed.applied ?? 0;
        stored.deadLetters += record?.passed.dead ?? 0;
        stored.floors.push({ partition, floor: record?.floor ?? layout?.from ?? null });
      }
      row.stored = stored;
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
