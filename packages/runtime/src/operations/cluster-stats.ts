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
