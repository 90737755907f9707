// What the `mesh` tool reads of a running cluster: every node's service info
// and metrics, through the NATS service API (service.ts). Imports: operations.
import { RequestStrategy } from "nats";
import type { NatsConnection, ServiceInfo, ServiceStats } from "nats";
import type { MetricsSnapshot } from "./metrics.js";
import { SERVICE_NAME } from "./service.js";

/** The nodes of cluster `prefix` that answered within `waitMs`: their service info, and their metrics by node id. */
export async function clusterStats(
  nc: NatsConnection,
  prefix: string,
  waitMs: number,
): Promise<{ infos: ServiceInfo[]; stats: Map<string, MetricsSnapshot> }> {
  const client = nc.services.client({ strategy: RequestStrategy.Timer, maxWait: waitMs });
  const infos: ServiceInfo[] = [];
  for await (const i of await client.info(SERVICE_NAME)) if ((i as ServiceInfo).metadata?.prefix === prefix) infos.push(i as ServiceInfo);
  const stats = new Map<string, MetricsSnapshot>();
  for await (const s of await client.stats(SERVICE_NAME)) {
    const data = (s as ServiceStats).endpoints?.[0]?.data as MetricsSnapshot | undefined;
    if (data && (s as ServiceStats).metadata?.prefix === prefix) stats.set(data.node, data);
  }
  return { infos, stats };
}

/** `mesh events`: every subscription of the cluster, where its dispatchers run, their lag, and what was handled, retried and dead-lettered. */
export async function eventsReport(nc: NatsConnection, prefix: string, asJson: boolean, waitMs: number): Promise<number> {
  const { stats } = await clusterStats(nc, prefix, waitMs);
  const subs = new Map<
    string,
    {
      subscription: string;
      stream: string;
      handled: number;
      duplicates: number;
      redeliveries: number;
      deadLetters: number;
      dispatchers: { node: string; partition: number; floor: number; lag: number; inFlight: number; error?: string }[];
    }
  >();
  for (const [node, m] of [...stats].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const r of m.events ?? []) {
      const s = subs.get(r.subscription) ?? {
        subscription: r.subscription,
        stream: r.stream,
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
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ prefix, subscriptions: all }, null, 2)}\n`);
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
  const cols = ["LAG", "HANDLED", "REPEATED", "RETRIED", "DEAD"];
  process.stdout.write(
    `${"SUBSCRIPTION".padEnd(width)}  ${"STREAM".padEnd(12)}  ${cols.map((c) => c.padStart(8)).join("  ")}  DISPATCHERS\n`,
  );
  for (const s of all) {
    const lag = s.dispatchers.reduce((a, d) => a + d.lag, 0);
    const cells = [lag, s.handled, s.duplicates, s.redeliveries, s.deadLetters].map((v) => String(v).padStart(8));
    const where =
      s.dispatchers.map((d) => `${d.node}#${d.partition} at ${d.floor}${d.error ? ` (${d.error})` : ""}`).join(", ") || "none running";
    process.stdout.write(`${s.subscription.padEnd(width)}  ${s.stream.padEnd(12)}  ${cells.join("  ")}  ${where}\n`);
  }
  return 0;
}
