// What `mesh top` and `mesh console` read of a running cluster: every node
// that hosts a capability (from the NATS service API's INFO), and
// each one's answers to the admin API (admin.ts): its metrics, the node, its
// activations per type, its hottest actors. One view per refresh.
import { RequestStrategy } from "nats";
import type { NatsConnection, ServiceInfo } from "nats";
import type { HotActor } from "./hot-actors.js";
import type { MetricsSnapshot } from "./metrics.js";
import { SERVICE_NAME } from "./service.js";

/** One node in a cluster view. */
export interface NodeView {
  node: string;
  version: string;
  appVersion: string;
  capabilities: string[];
  leaseHeld: boolean;
  uptimeMs: number;
  rssBytes: number;
  eventLoopP99Ms: number;
  actors: number;
  callsServed: number;
  queued: number;
  errors: number;
  types: Record<string, number>;
  top: HotActor[];
  /** The counts of its handler latency histogram (metrics `handlerLatency`, buckets LATENCY_BUCKETS_MS and +Inf). */
  latency: number[];
}

/** A cluster at one moment: its nodes, live activations per type over all of them, and the hottest actors over all. */
export interface ClusterView {
  prefix: string;
  /** When it was read (epoch ms). */
  at: number;
  nodes: NodeView[];
  /** Nodes that did not answer the admin API in time (an older Mesh, or one under load). */
  silent: string[];
  types: Record<string, number>;
  hot: (HotActor & { node: string })[];
}

/** The answer to one admin question to `node`; throws when the node does not answer in time or refuses it. */
export async function askNode<T>(nc: NatsConnection, prefix: string, node: string, q: object, timeoutMs: number): Promise<T> {
  const reply = await nc.request(`${prefix}.status.${node}`, JSON.stringify(q), { timeout: timeoutMs });
  const body = JSON.parse(new TextDecoder().decode(reply.data)) as { ok: boolean; answer?: T; error?: { message: string } };
  if (!body.ok) throw new Error(body.error?.message ?? "refused");
  return body.answer as T;
}

/** Reads the cluster under `prefix`: nodes that answer within `waitMs`, and the top `hotN` actors. */
export async function readCluster(nc: NatsConnection, prefix: string, waitMs: number, hotN: number): Promise<ClusterView> {
  // The nodes, from the NATS service API: one wait for every node to answer INFO (not STATS too: the metrics come below).
  const infos: ServiceInfo[] = [];
  const client = nc.services.client({ strategy: RequestStrategy.Timer, maxWait: waitMs });
  for await (const i of await client.info(SERVICE_NAME)) if ((i as ServiceInfo).metadata?.prefix === prefix) infos.push(i as ServiceInfo);
  const hosting = infos.filter((i) => (i.metadata?.capabilities ?? "") !== "");
  const silent: string[] = [];
  const nodes = (
    await Promise.all(
      hosting.map(async (i): Promise<NodeView | undefined> => {
        const node = i.metadata!.node!;
        try {
          // The metrics from the node itself (an empty request on its status subject): a STATS answer that missed
          // the wait would read as counters at 0, and the next calls/s as the node's whole life.
          const metrics = nc.request(`${prefix}.status.${node}`, undefined, { timeout: waitMs });
          const [m, about, types, top] = await Promise.all([
            metrics.then((r) => JSON.parse(new TextDecoder().decode(r.data)) as MetricsSnapshot),
            askNode<{ lease: { held: boolean }; uptimeMs: number; memory: { rss: number }; eventLoopDelayMs: { p99: number } }>(
              nc,
              prefix,
              node,
              { q: "node" },
              waitMs,
            ),
            askNode<Record<string, number>>(nc, prefix, node, { q: "types" }, waitMs),
            askNode<HotActor[]>(nc, prefix, node, { q: "top", n: hotN }, waitMs),
          ]);
          return {
            node,
            version: i.version,
            appVersion: i.metadata?.app_version ?? "unknown",
            capabilities: (i.metadata?.capabilities ?? "").split(",").filter(Boolean),
            leaseHeld: about.lease.held,
            uptimeMs: about.uptimeMs,
            rssBytes: about.memory.rss,
            eventLoopP99Ms: about.eventLoopDelayMs.p99,
            actors: m.actors,
            callsServed: m.callsServed,
            queued: m.queuedLetters,
            errors: Object.values(m.errors).reduce((a, b) => a + (b ?? 0), 0),
            types,
            top,
            latency: m.handlerLatency.counts,
          };
        } catch {
          silent.push(node);
          return undefined;
        }
      }),
    )
  )
    .filter((n) => n !== undefined)
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  const types: Record<string, number> = {};
  for (const n of nodes) for (const [t, k] of Object.entries(n.types)) types[t] = (types[t] ?? 0) + k;
  const hot = nodes
    .flatMap((n) => n.top.map((a) => ({ ...a, node: n.node })))
    .sort((a, b) => b.perSecond - a.perSecond)
    .slice(0, hotN);
  return { prefix, at: Date.now(), nodes, silent: silent.sort(), types, hot };
}
